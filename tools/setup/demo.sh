#!/usr/bin/env bash
# The main job: sets up a fresh Debian 12 machine, builds defacer in release mode, and runs the
# drop-folder service in the foreground on a demo folder layout (demo/inbox, work, outbox,
# failed: the layout of /srv/defacer) with the default configuration (etc/defacer.toml, only
# its root and models folder pointed at this checkout). A real head scan (Colin27 from Debian's
# mricron-data) is dropped into the inbox; its defaced scan, face mask, QC picture and report
# appear in demo/outbox. Drop more .nii/.nii.gz files into demo/inbox while it runs; Ctrl-C
# stops it (a second Ctrl-C stops at once). When standard input is not a terminal (CI), the
# service is stopped with SIGTERM once the sample is done, and the script exits 0 when it was
# defaced. DEFACER_SCRATCH names another build folder (default .build). The README's
# `bash tools/demo.sh` calls this.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
bash tools/setup/setup.sh
scratch=${DEFACER_SCRATCH:-.build}
swift build -c release --scratch-path "$scratch"
bin="$root/$scratch/release/defacer"
"$bin" --version

demo="$root/demo"
rm -rf "$demo"
mkdir -p "$demo/inbox" "$demo/work" "$demo/outbox" "$demo/failed" "$demo/staging"
# the name-hash key an install makes in /etc/defacer: the demo makes its own
(umask 077; od -An -tx1 -N32 /dev/urandom | tr -d ' \n' > "$demo/name-hash.key")
sed -e "s|^root = .*|root = \"$demo\"|" \
    -e "s|^# models = .*|models = \"$root/models\"|" \
    -e "s|^name_hash_key_file = .*|name_hash_key_file = \"$demo/name-hash.key\"|" etc/defacer.toml > "$demo/defacer.toml"
echo "demo: configuration $demo/defacer.toml (etc/defacer.toml with these changes):"
diff etc/defacer.toml "$demo/defacer.toml" || true
"$bin" check-config --config "$demo/defacer.toml"

sample=data/real/ch2.nii.gz
drop_sample() {
    # dropped the way a transfer should: written beside the inbox, then renamed in (a file
    # written in place works too: the service waits until it has settled and parses). Dropped
    # before the service is up, it is found by the start-up scan.
    cp "$sample" "$demo/staging/colin27.nii.gz"
    mv "$demo/staging/colin27.nii.gz" "$demo/inbox/colin27.nii.gz"
    echo "demo: dropped $sample into $demo/inbox as colin27.nii.gz" >&2
}
wait_for_result() {
    for _ in $(seq 1 1800); do
        [ -e "$demo/outbox/colin27_defaced.nii.gz" ] || [ -e "$demo/failed/colin27.nii.gz.reason.json" ] && break
        # the service is gone (it could not start): stop waiting
        [ -n "${service:-}" ] && ! kill -0 "$service" 2>/dev/null && break
        sleep 0.5
    done
    echo "demo: outbox now holds:" >&2
    ls -l "$demo/outbox" >&2
    if [ -e "$demo/failed/colin27.nii.gz.reason.json" ]; then cat "$demo/failed/colin27.nii.gz.reason.json" >&2; fi
}

if [ -t 0 ]; then
    # interactive: the service runs in the foreground of this terminal (Ctrl-C stops it)
    (
        sleep 1
        drop_sample
        wait_for_result
        echo "demo: the service keeps watching $demo/inbox: drop more scans there, or press Ctrl-C to stop it" >&2
    ) &
    exec "$bin" run --config "$demo/defacer.toml"
fi

# not a terminal (CI): the same, then SIGTERM once the sample is done
"$bin" run --config "$demo/defacer.toml" &
service=$!
sleep 1
drop_sample
wait_for_result
kill -TERM "$service"
status=0
wait "$service" || status=$?
[ "$status" = 0 ] && [ -e "$demo/outbox/colin27_defaced.nii.gz" ] || { echo "demo: the sample was not defaced (service exit $status)" >&2; exit 1; }
echo "demo: done: $demo/outbox/colin27_defaced.nii.gz"
