#!/usr/bin/env bash
# The project's test command: install, make sure services are up, lint, type-check, test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
scripts/services.sh
scripts/install-agents.sh || true  # Claude Code + Codex for tests/test_agents_e2e.py
scripts/install-browser.sh || true  # Debian's chromium for tests/test_ui_browser.py
.venv/bin/ruff check .
.venv/bin/mypy
.venv/bin/python -m pytest -q "$@"
