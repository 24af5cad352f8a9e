#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine, builds defacer in release mode and runs it on the
# default configuration's sample: a real head scan (Colin27 from Debian's mricron-data).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
swift build -c release
.build/release/defacer --version
.build/release/defacer info data/real/ch2.nii.gz
