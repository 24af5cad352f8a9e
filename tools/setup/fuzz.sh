#!/usr/bin/env bash
# Builds defacer's libFuzzer targets (the NIfTI read path, the DICOM header reader) with
# swiftc -sanitize=fuzzer,address over the sources they need (SwiftPM cannot link libFuzzer's
# main), runs each for SECONDS (default 60) from the seeds in Tests/Fuzz/corpus, and fails
# on any crash, sanitizer report, leak, timeout or run over the memory limit.
#
#   tools/setup/fuzz.sh            # about a minute per target (tools/test.sh runs this)
#   tools/setup/fuzz.sh 3600       # an hour per target; findings are left in .build-fuzz/
#   FUZZ_SEED=7 tools/setup/fuzz.sh  # a fixed seed (the test command uses 1: the same run on every
#                                  # machine); unset, each run starts from a random seed
#
# A finding is written as .build-fuzz/<target>-crash-<sha1> (or -leak-, -timeout-, -oom-);
# replay it with `.build-fuzz/<target> FILE`. Inputs that reached new code are kept in
# .build-fuzz/<target>-corpus/ (not committed; copy small, interesting ones to Tests/Fuzz/corpus).
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_EACH=${1:-60}
SEED=${FUZZ_SEED:-0}   # 0: libFuzzer picks one
# Swift's own crash backtracer reads memory ASan does not map and dies with the finding's message
# unprinted: let libFuzzer and ASan report alone.
export SWIFT_BACKTRACE=enable=no
BUILD=.build-fuzz
mkdir -p "$BUILD/modules"
ROOT=$PWD

cat > "$BUILD/modules/module.modulemap" <<MAP
module CNifti { header "$ROOT/Sources/CNifti/include/cnifti.h" export * }
module CLinux { header "$ROOT/Sources/CLinux/include/clinux.h" export * }
MAP

SAN=(-fsanitize=fuzzer-no-link,address -O1 -g)
clang "${SAN[@]}" -I/usr/include/nifti -ISources/CNifti/include -c Sources/CNifti/cnifti.c -o "$BUILD/cnifti.o"
clang "${SAN[@]}" -ISources/CLinux/include -c Sources/CLinux/clinux.c -o "$BUILD/clinux.o"

# swift-system (the durable-file layer's typed POSIX calls) and swift-crypto (the SHA-256 a move
# across mounts is checked with) as SwiftPM builds them, uninstrumented
for target in SystemPackage Crypto; do
    swift build -c release --scratch-path "$BUILD/spm" --target "$target" > "$BUILD/spm-build.log" 2>&1 \
        || { cat "$BUILD/spm-build.log"; exit 1; }
done
SPM="$BUILD/spm/release"
SYSTEM=("-I" "$SPM/Modules" "-Xcc" "-fmodule-map-file=$ROOT/.build-fuzz/spm/checkouts/swift-system/Sources/CSystem/include/module.modulemap" "$SPM"/SystemPackage.build/*.o "$SPM/CSystem.build/shims.c.o"
        $(find "$SPM/Crypto.build" "$SPM/CryptoBoringWrapper.build" "$SPM/CCryptoBoringSSL.build" "$SPM/CCryptoBoringSSLShims.build" -name '*.o'))

SWIFT=(swiftc -O -sanitize=fuzzer,address -parse-as-library -swift-version 6 -package-name defacer -I "$BUILD/modules")
# the files each target needs, found by name (they may move between folders)
src() { find Sources -name "$1" | head -1; }
build() {  # build NAME SOURCES...: a failed compile fails the script (no stale binary is run)
    local name=$1; shift
    echo "building $BUILD/$name"
    rm -f "$BUILD/$name"
    if ! "${SWIFT[@]}" "$@" -o "$BUILD/$name" > "$BUILD/$name-build.log" 2>&1; then
        grep -v "Cannot export local symbol" "$BUILD/$name-build.log"; exit 1
    fi
}
build nifti-fuzz -module-name NiftiFuzz Tests/Fuzz/NiftiReaderFuzz.swift \
    Sources/Engine/NIfTI/*.swift Sources/Engine/Geometry/*.swift Sources/Engine/Files/*.swift \
    "$(src ParallelSlices.swift)" "$(src UnsafeShared.swift)" \
    "${SYSTEM[@]}" \
    "$BUILD/cnifti.o" "$BUILD/clinux.o" -lnifti2 -lznz -lz -lm
# the DICOM header reader lives in the DICOM module, which imports Engine for nothing these
# three files use: compile copies without that import
for f in DicomParser DicomHeader DicomIdentifiers; do sed '/^import Engine$/d' "$(src $f.swift)" > "$BUILD/$f.swift"; done
build dicom-fuzz -module-name DicomFuzz Tests/Fuzz/DicomParserFuzz.swift \
    "$BUILD/DicomParser.swift" "$BUILD/DicomHeader.swift" "$BUILD/DicomIdentifiers.swift"

status=0
for target in nifti dicom; do
    work="$BUILD/$target-fuzz-corpus"
    mkdir -p "$work"
    echo "fuzzing $target for ${SECONDS_EACH}s"
    if ! "$BUILD/$target-fuzz" -max_total_time="$SECONDS_EACH" -seed="$SEED" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -print_final_stats=1 -artifact_prefix="$BUILD/$target-fuzz-" "$work" "Tests/Fuzz/corpus/$target" \
        > "$BUILD/$target-fuzz.log" 2>&1; then
        echo "FINDING in the $target target:"
        grep -E "Fatal error|ERROR: (AddressSanitizer|libFuzzer)|^artifact_prefix|Test unit written" "$BUILD/$target-fuzz.log" || true
        tail -40 "$BUILD/$target-fuzz.log"; status=1
    else
        grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$BUILD/$target-fuzz.log" | sed "s/^/  $target: /"
    fi
done
exit $status
