#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine and runs defacer's test suite (with a one-node Slurm cluster, as root).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
# a one-node Slurm cluster for the batch tests, stopped however the tests end
trap 'bash tools/setup/slurm.sh stop' EXIT
bash tools/setup/slurm.sh start
# one release build: the whole-network tests need it, and the rest run there too
swift build -c release --build-tests -Xswiftc -enable-testing
swift test -c release -Xswiftc -enable-testing --skip-build
