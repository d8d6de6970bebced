#!/usr/bin/env bash
# Set up and run the test suite: bash scripts/test.sh [pytest args]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck disable=SC1091
. scripts/setup.sh
python -m pytest -q "$@"
