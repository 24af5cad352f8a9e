#!/usr/bin/env bash
# Builds defacer_VERSION_amd64.deb for Debian 12 (and Ubuntu of the same age).
#
#   bash tools/package/build-deb.sh [--binary PATH] [--models DIR] [--out DIR] [--fast]
#
#   --binary PATH  a release binary built with --static-swift-stdlib (default: build one in
#                  .build-static/, with -z relro -z now; the Swift runtime in /opt/swift is not
#                  on users' machines, so a binary that needs it is refused)
#   --models DIR   the converted models, with hdbet/ (default: models/, made by tools/setup/setup.sh
#                  or tools/setup/fetch_hdbet.sh; never committed)
#   --out DIR      where the .deb goes (default: dist/)
#   --fast         gzip level 1 instead of 6 (for tests). Not xz: the 313 MB of float32 weights
#                  barely compress, and xz takes minutes over them
#
# Needs dpkg-dev (dpkg-shlibdeps, dpkg-gencontrol) and binutils (strip). Checks the result
# with lintian when it is installed.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
binary=""
models=models
out=dist
compression=(-Zgzip -z6)
while [ $# -gt 0 ]; do
    case "$1" in
        --binary) binary=$2; shift 2 ;;
        --models) models=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --fast) compression=(-Zgzip -z1); shift ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) echo "build-deb: unknown argument $1" >&2; exit 2 ;;
    esac
done
die() { echo "build-deb: $*" >&2; exit 1; }

if [ -z "$binary" ]; then
    # the Swift runtime linked in; relocations read-only and bound at start (Debian's hardening)
    swift build -c release --static-swift-stdlib --scratch-path .build-static --product defacer \
        -Xlinker -z -Xlinker relro -Xlinker -z -Xlinker now >&2
    binary=.build-static/release/defacer
fi
[ -x "$binary" ] || die "$binary is not an executable"
[ -f "$models/hdbet/model.json" ] || die "$models/hdbet is missing: run tools/setup/setup.sh (or tools/setup/fetch_hdbet.sh) first"
for f in NOTICE fold0.safetensors; do [ -f "$models/hdbet/$f" ] || die "$models/hdbet/$f is missing"; done

# every library the binary loads must come from a Debian package, not from a toolchain
outside=$(ldd "$binary" | awk '/=>/ {print $3}' | grep -v -E '^/(usr/)?lib/' || true)
[ -z "$outside" ] || die "$binary needs libraries that Debian does not ship: $outside (build it with swift build -c release --static-swift-stdlib)"
ldd "$binary" | grep -q 'not found' && die "$binary needs libraries that are not installed: $(ldd "$binary" | grep 'not found')"

version=$("$binary" --version | awk '{print $NF}')
[[ "$version" =~ ^[0-9][0-9A-Za-z.+~-]*$ ]] || die "cannot read the version from $binary --version ($version)"

work=$(mktemp -d /tmp/defacer-deb.XXXXXX)
trap 'rm -rf "$work"' EXIT
root=$work/root
umask 022
mkdir -p "$root/DEBIAN" "$work/debian"

# the binary, stripped (its debugging symbols are not needed at run time)
install -D -m 0755 "$binary" "$root/usr/bin/defacer"
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$root/usr/bin/defacer"

# the weights with their NOTICE, and the licence the NOTICE names (Debian's own copy)
models_dest=$root/usr/share/defacer/models/hdbet
install -d "$models_dest"
install -m 0644 "$models/hdbet/model.json" "$models/hdbet/NOTICE" "$models/hdbet"/fold*.safetensors "$models_dest/"
ln -s ../../../common-licenses/Apache-2.0 "$models_dest/LICENSE"

# the service: unit (installed, not enabled), user and folders, configuration (a conffile)
sed 's|/usr/local/bin/defacer|/usr/bin/defacer|g; s|^Documentation=.*|Documentation=man:defacer(1) man:defacer.toml(5)|' \
    systemd/defacer.service > "$work/defacer.service"
install -D -m 0644 "$work/defacer.service" "$root/lib/systemd/system/defacer.service"
install -D -m 0644 systemd/sysusers.d/defacer.conf "$root/usr/lib/sysusers.d/defacer.conf"
install -D -m 0644 systemd/tmpfiles.d/defacer.conf "$root/usr/lib/tmpfiles.d/defacer.conf"
install -d "$root/etc/defacer"
sed 's|^# models = .*|models = "/usr/share/defacer/models"|' etc/defacer.toml > "$root/etc/defacer/defacer.toml"
chmod 0644 "$root/etc/defacer/defacer.toml"
grep -q '^models = "/usr/share/defacer/models"$' "$root/etc/defacer/defacer.toml" || die "etc/defacer.toml has no '# models = ' line to set"
echo /etc/defacer/defacer.toml > "$root/DEBIAN/conffiles"

# man pages and shell completions (ArgumentParser writes them from the options themselves)
for page in docs/man/defacer.1:man1 docs/man/defacer.toml.5:man5; do
    install -d "$root/usr/share/man/${page#*:}"
    gzip -9n < "${page%:*}" > "$root/usr/share/man/${page#*:}/$(basename "${page%:*}").gz"
done
install -d "$root/usr/share/bash-completion/completions" "$root/usr/share/zsh/vendor-completions" \
    "$root/usr/share/fish/vendor_completions.d"
# (bash-completion sources the file: no #! line)
"$binary" --generate-completion-script bash | sed '1{/^#!/d}' > "$root/usr/share/bash-completion/completions/defacer"
"$binary" --generate-completion-script zsh > "$root/usr/share/zsh/vendor-completions/_defacer"
"$binary" --generate-completion-script fish > "$root/usr/share/fish/vendor_completions.d/defacer.fish"

# documentation: copyright, changelog, README
doc=$root/usr/share/doc/defacer
install -d "$doc"
install -m 0644 tools/package/debian/copyright "$doc/copyright"
date=$(date -R -d "@${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}")
sed "s|@VERSION@|$version|; s|@DATE@|$date|" tools/package/debian/changelog > "$work/debian/changelog"
gzip -9n < "$work/debian/changelog" > "$doc/changelog.gz"
install -m 0644 README.md "$doc/README.md"
install -m 0644 docs/drop-folder-service.md "$doc/drop-folder-service.md"

# md5sums of the shipped files (conffiles excepted, as dh_md5sums does)
(cd "$root" && find . -type f ! -path './DEBIAN/*' ! -path './etc/*' -printf '%P\0' | LC_ALL=C sort -z \
    | xargs -0 md5sum) > "$root/DEBIAN/md5sums"
for script in postinst prerm postrm; do
    install -m 0755 "tools/package/debian/$script" "$root/DEBIAN/$script"
done

# control: the libraries' packages from dpkg-shlibdeps, the rest from debian/control
cp tools/package/debian/control "$work/debian/control"
(cd "$work" && dpkg-shlibdeps -Tdebian/substvars "$root/usr/bin/defacer")
(cd "$work" && dpkg-gencontrol -pdefacer -P"$root" -Tdebian/substvars -fdebian/files -v"$version")
find "$root" -type d -exec chmod 0755 {} +

mkdir -p "$out"
deb=$out/defacer_${version}_amd64.deb
dpkg-deb --root-owner-group "${compression[@]}" --build "$root" "$deb" >&2
if command -v lintian >/dev/null; then
    lintian --fail-on error "$deb" >&2 || die "lintian reports errors in $deb"
fi
echo "$deb"
