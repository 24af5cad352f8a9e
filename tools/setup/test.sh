#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine and runs defacer's test suite (the README's and CI's
# `bash tools/test.sh` calls this).
set -euo pipefail
cd "$(dirname "$0")/../.."
bash tools/setup/setup.sh
# a one-node Slurm cluster for the batch tests (as root), stopped however the tests end
trap 'bash tools/setup/slurm.sh stop' EXIT
bash tools/setup/slurm.sh start
# one release build: the whole-network tests need it, and the rest run there too
swift build -c release --build-tests -Xswiftc -enable-testing
swift test -c release -Xswiftc -enable-testing --skip-build
FUZZ_SEED=1 bash tools/setup/fuzz.sh    # libFuzzer on the NIfTI and DICOM readers, about a minute each
