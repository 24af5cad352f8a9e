#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine and runs defacer's test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
swift build --build-tests
swift test
