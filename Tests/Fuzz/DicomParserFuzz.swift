import Glibc

// libFuzzer target for the DICOM header reader (Sources/Daemon/DicomParser.swift with the
// header and identifier types it fills). Compiled by tools/setup/fuzz.sh with swiftc over
// those files (not through SwiftPM). Each input is written to a file and read; a trap, an
// address-sanitizer report or a run over the time or RSS limit is a finding. A header that
// reads must hold only finite, bounded slice positions and orientations.

private let path: String = "/dev/shm/defacer-fuzz-dicom-\(getpid()).dcm"

@_cdecl("LLVMFuzzerTestOneInput")
public func dicomParserFuzz(_ data: UnsafeRawPointer, _ size: Int) -> CInt {
    guard let file = fopen(path, "wb") else { return 0 }
    if size > 0 { fwrite(data, 1, size, file) }
    fclose(file)
    defer { unlink(path) }
    guard let header = try? DicomParser.read(path) else { return 0 }
    for value in (header.position ?? []) + (header.orientation ?? []) where !value.isFinite || abs(value) > 1e5 {
        fatalError("the parser let through a position or orientation value out of range")
    }
    precondition(header.frames >= 1)
    return 0
}
