import Glibc

// libFuzzer target for the NIfTI read path (defacer's header checks, libnifti's header
// parser, the gzip reader) and the writer's verification. Compiled by tools/setup/fuzz.sh
// together with Sources/Engine/NIfTI, Geometry and Files (not through SwiftPM).
// Each input is written to a file named .nii.gz when it starts with the gzip magic, else
// .nii, and read; whatever reads is written back to .nii.gz and read again. A trap, an
// address-sanitizer report, a leak or a run over the RSS limit is a finding.

private let folder: String = {
    let path = "/dev/shm/defacer-fuzz-nifti-\(getpid())"
    mkdir(path, 0o700)
    return path
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func niftiReaderFuzz(_ data: UnsafeRawPointer, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    let gzipped = size >= 2 && bytes[0] == 0x1F && bytes[1] == 0x8B
    let input = folder + (gzipped ? "/input.nii.gz" : "/input.nii")
    guard let file = fopen(input, "wb") else { return 0 }
    if size > 0 { fwrite(data, 1, size, file) }
    fclose(file)
    defer { unlink(input) }
    // small limits keep each run's allocations small; the checks are the same at any size
    guard let volume = try? NiftiReader(maxVoxels: 1 << 18).read(input) else { return 0 }
    let output = folder + "/output.nii.gz"
    unlink(output)
    defer { unlink(output) }
    guard (try? NiftiWriter(descrip: "fuzz").write(volume, to: output)) != nil else {
        fatalError("a scan that reads could not be written back")
    }
    let again: NiftiVolume
    do { again = try NiftiReader(maxVoxels: 1 << 18).read(output) } catch {
        fatalError("a written scan does not read back: \(error.reason)")
    }
    guard again.storage == volume.storage else { fatalError("a written scan reads back with other voxel values") }
    return 0
}
