#!/usr/bin/env bash
# Set up, train the support bot on the sample history shipped with appkit, and open the chat.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck disable=SC1091
. scripts/setup.sh
appkit support demo "$@"
