#!/usr/bin/env bash
# Throughput of the drop-folder service (`defacer run`) on this machine: the same COPIES copies
# of a real head dropped at once into one inbox, timed from the drop to the last defaced scan in
# the outbox, once per max_jobs value (a batch runs max_jobs jobs of cores / max_jobs engine
# threads: on a 2-core machine max_jobs 1 is one job of 2 threads, max_jobs 2 two jobs of 1
# thread; a scan dropped alone gets every core either way: COPIES 1 shows it). It is a
# benchmark, not a test: it prints one line per setting (wall, scans per hour, CPU time of the
# service and its workers) and checks nothing but that every copy was defaced.
#
#   bash tools/bench/service-throughput.sh [BINARY] [SCAN] [COPIES] [MAX_JOBS...]
#   defaults: .build/release/defacer data/real/ch2.nii.gz 4 1 2
#
# Run it on a quiet machine (or `nice`, and read the CPU time beside the wall time): the
# service, its workers and whatever else runs share the cores.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
bin=$(realpath "${1:-.build/release/defacer}")
scan=$(realpath "${2:-data/real/ch2.nii.gz}")
copies=${3:-4}
shift $(( $# < 3 ? $# : 3 ))
settings=("$@")
[ ${#settings[@]} -gt 0 ] || settings=(1 2)
work=$(mktemp -d "${TMPDIR:-/tmp}/defacer-throughput.XXXXXX")
service=
# a run that stops early stops its service too
trap '[ -n "$service" ] && kill -TERM $(pgrep -P "$service") 2>/dev/null; rm -rf "$work"' EXIT
echo "service throughput: $copies copies of $scan, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
for jobs in "${settings[@]}"; do
    dir="$work/jobs$jobs"
    mkdir -p "$dir/inbox" "$dir/work" "$dir/outbox" "$dir/failed" "$dir/staging"
    (umask 077; od -An -tx1 -N32 /dev/urandom | tr -d ' \n' > "$dir/name-hash.key")
    sed -e "s|^root = .*|root = \"$dir\"|" \
        -e "s|^# models = .*|models = \"$root/models\"|" \
        -e "s|^max_jobs = .*|max_jobs = $jobs|" \
        -e "s|^settle_seconds = .*|settle_seconds = 1|" \
        -e "s|^name_hash_key_file = .*|name_hash_key_file = \"$dir/name-hash.key\"|" etc/defacer.toml > "$dir/defacer.toml"
    for i in $(seq 1 "$copies"); do cp "$scan" "$dir/staging/head$i.nii.gz"; done
    # the service's own CPU time and its reaped workers', from GNU time's wait4
    /usr/bin/time -f "%U %S" -o "$dir/cpu" "$bin" run --config "$dir/defacer.toml" > "$dir/service.log" 2>&1 &
    service=$!
    sleep 2
    start=$(date +%s.%N)
    for i in $(seq 1 "$copies"); do mv "$dir/staging/head$i.nii.gz" "$dir/inbox/"; done
    until [ "$(find "$dir/outbox" -name '*_defaced.nii.gz' | wc -l)" -ge "$copies" ] ||
          [ -n "$(find "$dir/failed" -name '*.reason.json' -print -quit)" ]; do
        kill -0 "$service" 2>/dev/null || { echo "max_jobs $jobs: the service stopped" >&2; cat "$dir/service.log" >&2; exit 1; }
        sleep 0.2
    done
    end=$(date +%s.%N)
    # stop the service itself (GNU time would die of the signal without writing its figures)
    kill -TERM "$(pgrep -P "$service")"; wait "$service" || true
    service=
    done_count=$(find "$dir/outbox" -name '*_defaced.nii.gz' | wc -l)
    [ "$done_count" -ge "$copies" ] || { echo "max_jobs $jobs: only $done_count of $copies defaced" >&2; cat "$dir"/failed/*.reason.json >&2; exit 1; }
    read -r user sys < <(tail -n 1 "$dir/cpu")
    awk -v j="$jobs" -v n="$copies" -v s="$start" -v e="$end" -v u="$user" -v y="$sys" -v c="$(nproc)" 'BEGIN {
        w = e - s
        printf "max_jobs %d (%d engine thread(s) each when max_jobs run at once): %d scans in %.1f s wall, %.1f scans/hour; CPU %.1f s user + %.1f s sys (%.1f s per scan)\n",
               j, (c / j < 1 ? 1 : int(c / j)), n, w, n / w * 3600, u, y, (u + y) / n }'
done
