#!/usr/bin/env bash
# Create .venv (once) and install appkit with its test tools into it. Sourced by demo.sh and
# test.sh; safe to run again (it only installs what is missing).
#
# torch is installed first and pinned, because a bare `pip install torch` on Linux pulls a
# multi-GB CUDA build. Have a GPU? Install your CUDA build of torch (any 2.x >= 2.4) into the
# venv first, or set APPKIT_TORCH to the version you want; appkit's own range accepts it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
if ! python -c "import torch" 2>/dev/null; then
  python -m pip install --quiet "torch==${APPKIT_TORCH:-2.13.0}"
fi
python -m pip install --quiet -e ".[dev]"
