#!/usr/bin/env bash
# Set up phaselab in ./.venv and run the demo or the tests:  bash scripts/bootstrap.sh demo|test [args...]
# `test` runs ruff, the import-layer contract (lint-imports) and then pytest.
# Without an NVIDIA GPU it installs the CPU build of PyTorch first (fast, no CUDA wheels).
set -euo pipefail
cd "$(dirname "$0")/.."

what="${1:-test}"; shift || true
python="${PYTHON:-python3}"
torch_version="${PHASELAB_TORCH_VERSION:-2.13.0}"

if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
. .venv/bin/activate
export PIP_DISABLE_PIP_VERSION_CHECK=1

if ! python -c "import torch" 2>/dev/null; then
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
        echo "phaselab: GPU found, installing CUDA PyTorch ${torch_version}"
        pip install -q "torch==${torch_version}"
    else
        echo "phaselab: no GPU found, installing the CPU build of PyTorch ${torch_version}"
        # Fail fast if the CPU index is unreachable (offline mirrors): then take what pip's own
        # configuration offers for that version (a local CPU wheel, on such machines).
        pip install -q --retries 0 --timeout 15 "torch==${torch_version}" \
            --index-url "${PHASELAB_TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}" 2>/dev/null \
            || pip install -q "torch==${torch_version}"
    fi
fi
pip install -q -e ".[test]"
# The fastMRI reference package is the test oracle; --no-deps keeps it from replacing torch.
pip install -q --no-deps fastmri==0.3.0 runstats

case "$what" in
    demo) exec python sweeps/recon_grid.py "$@" ;;
    test)
        # Lint and the import-layer contract first: a style slip or an upward import fails fast.
        ruff check --quiet . && ruff format --check --quiet . && lint-imports --no-cache >/dev/null \
            || { echo "phaselab: lint failed (ruff check / ruff format --check / lint-imports)" >&2; exit 1; }
        exec python -m pytest -q "$@" ;;
    install) echo "phaselab: installed in .venv (source .venv/bin/activate)" ;;
    *) echo "usage: bash scripts/bootstrap.sh demo|test|install [args...]" >&2; exit 2 ;;
esac
