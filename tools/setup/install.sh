#!/usr/bin/env bash
# Installs the defacer service (on Debian and Ubuntu, use the package instead:
# tools/package/build-deb.sh): the binary, the converted models, the man pages, the systemd
# unit, the sysusers.d and tmpfiles.d files and the configuration (an existing /etc/defacer/defacer.toml
# is never replaced: the new one is put beside it as defacer.toml.new).
#
#   sudo bash tools/setup/install.sh                 build (release) and install under /usr/local
#   sudo bash tools/setup/install.sh --no-build      install .build/release/defacer as built
#   PREFIX=/usr DESTDIR=/tmp/pkg bash tools/setup/install.sh --no-build    stage for a package
#
# Then: usermod -aG defacer SCANNER-USER; systemctl enable --now defacer; journalctl -u defacer
set -euo pipefail
cd "$(dirname "$0")/../.."
PREFIX=${PREFIX:-/usr/local}
DESTDIR=${DESTDIR:-}
BINARY=${BINARY:-.build/release/defacer}
build=1
for arg in "$@"; do
    case "$arg" in
        --no-build) build=0 ;;
        -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
        *) echo "install: unknown argument $arg" >&2; exit 2 ;;
    esac
done

# The secret key of the logged file-name hashes (NAME_HASH): 64 random hex digits, readable by
# the service's group only; an existing key is kept (a new key changes every hash).
make_name_hash_key() {
    [ -e "$1" ] && return 0
    getent group defacer >/dev/null || { echo "install: no group defacer: the service makes its own key in /var/lib/defacer" >&2; return 0; }
    (umask 077; od -An -tx1 -N32 /dev/urandom | tr -d ' \n' > "$1.tmp")
    chown root:defacer "$1.tmp"
    chmod 0640 "$1.tmp"
    mv -n "$1.tmp" "$1"
    rm -f "$1.tmp"
}

if [ "$build" = 1 ]; then
    swift build -c release
fi
[ -x "$BINARY" ] || { echo "install: $BINARY is missing: build first (swift build -c release)" >&2; exit 1; }
[ -f models/hdbet/model.json ] || { echo "install: models/hdbet is missing: run tools/setup/setup.sh first" >&2; exit 1; }

models="$PREFIX/share/defacer/models"
install -D -m 0755 "$BINARY" "$DESTDIR$PREFIX/bin/defacer"
install -d -m 0755 "$DESTDIR$models/hdbet"
for f in models/hdbet/*; do install -m 0644 "$f" "$DESTDIR$models/hdbet/"; done

install -D -m 0644 docs/man/defacer.1 "$DESTDIR$PREFIX/share/man/man1/defacer.1"
install -D -m 0644 docs/man/defacer.toml.5 "$DESTDIR$PREFIX/share/man/man5/defacer.toml.5"
install -d -m 0755 "$DESTDIR/etc/systemd/system" "$DESTDIR/etc/sysusers.d" "$DESTDIR/etc/tmpfiles.d" "$DESTDIR/etc/defacer"
sed "s|/usr/local/bin/defacer|$PREFIX/bin/defacer|g" systemd/defacer.service > "$DESTDIR/etc/systemd/system/defacer.service"
chmod 0644 "$DESTDIR/etc/systemd/system/defacer.service"
install -m 0644 systemd/sysusers.d/defacer.conf "$DESTDIR/etc/sysusers.d/defacer.conf"
install -m 0644 systemd/tmpfiles.d/defacer.conf "$DESTDIR/etc/tmpfiles.d/defacer.conf"
config="$DESTDIR/etc/defacer/defacer.toml"
[ -e "$config" ] && config="$config.new"
sed "s|^# models = .*|models = \"$models\"|" etc/defacer.toml > "$config"
chmod 0644 "$config"
command -v dcm2niix >/dev/null || echo "install: dcm2niix is not installed: apt-get install dcm2niix (inboxes that take DICOM folders need it; the service does not start without it unless every inbox has dicom = false)" >&2
echo "install: $PREFIX/bin/defacer, $models, /etc/systemd/system/defacer.service, /etc/sysusers.d and /etc/tmpfiles.d/defacer.conf, ${config#$DESTDIR}"

if [ -z "$DESTDIR" ]; then
    # the user, group and folders now, not only at the next boot
    if command -v systemd-sysusers >/dev/null; then systemd-sysusers /etc/sysusers.d/defacer.conf; fi
    if command -v systemd-tmpfiles >/dev/null; then systemd-tmpfiles --create /etc/tmpfiles.d/defacer.conf; fi
    make_name_hash_key /etc/defacer/name-hash.key
    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload
        echo "install: start it with: systemctl enable --now defacer"
    fi
    if id defacer >/dev/null 2>&1 && command -v runuser >/dev/null; then
        runuser -u defacer -- "$PREFIX/bin/defacer" check-config --config /etc/defacer/defacer.toml || true
    fi
fi
