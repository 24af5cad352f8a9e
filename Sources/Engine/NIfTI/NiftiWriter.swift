import Foundation
import CNifti
import Glibc

/// Writes a ``NiftiVolume`` through libnifti2 with its dimensions, data type, scaling,
/// qform and sform unchanged, and clears every header field that can identify a person
/// (`descrip`, `aux_file`, `intent_name`, `db_name`, all extensions). Files are written
/// under a hidden temporary name, fsynced, renamed into place, and the folder is fsynced.
public struct NiftiWriter: Sendable {
    /// Text for `descrip`, e.g. "defaced by defacer 0.1.0" (at most 79 bytes are kept).
    public var descrip: String
    /// Replace an existing file of the same name instead of failing.
    public var replaceExisting: Bool
    /// Gzipped data larger than this is written as independent gzip members of this many
    /// bytes, compressed and re-read on `threads` workers (``GzipMembers``); `nil` writes one
    /// stream through libnifti and zlib on one thread. Either way the file inflates to the
    /// same header and voxel bytes, and the header has a gzip member of its own only here.
    public var gzipBlockBytes: Int?
    /// Workers for the gzip members.
    public var threads: Int
    /// zlib's level for `.gz` files (1-9).
    public var gzipLevel: Int32

    /// Level 1: measured 2-5x faster to write than zlib's default 6, files 1-11% larger.
    public static let defaultGzipLevel: Int32 = 1

    /// 2 MiB: blocks enough for two or more workers on a head's mask, and a fresh 32 kB
    /// dictionary every 2 MiB costs under 1% of the file.
    public static let defaultGzipBlockBytes = 2 << 20

    public init(descrip: String, replaceExisting: Bool = false, gzipBlockBytes: Int? = NiftiWriter.defaultGzipBlockBytes,
                threads: Int = 1, gzipLevel: Int32 = NiftiWriter.defaultGzipLevel) {
        self.descrip = descrip
        self.gzipLevel = min(9, max(1, gzipLevel))
        self.replaceExisting = replaceExisting
        self.gzipBlockBytes = gzipBlockBytes
        self.threads = threads
    }

    /// The header and image file names for an output path, and the form they take.
    /// `.nii(.gz)` gives one file; `.hdr(.gz)` or `.img(.gz)` a pair.
    static func layout(for path: String, version: NiftiFileForm.Version) throws(NiftiError)
        -> (header: String, image: String, form: NiftiFileForm)
    {
        let gz = path.hasSuffix(".gz")
        let plain = gz ? String(path.dropLast(3)) : path
        let suffix = gz ? ".gz" : ""
        let writeVersion: NiftiFileForm.Version = version == .nifti2 ? .nifti2 : .nifti1
        if plain.hasSuffix(".nii") {
            return (path, path, NiftiFileForm(version: writeVersion, isPair: false, isCompressed: gz))
        }
        if plain.hasSuffix(".hdr") || plain.hasSuffix(".img") {
            let stem = String(plain.dropLast(4))
            return (stem + ".hdr" + suffix, stem + ".img" + suffix,
                    NiftiFileForm(version: writeVersion, isPair: true, isCompressed: gz))
        }
        throw NiftiError(.unsupportedFileName, path: path)
    }

    /// Writes `volume` to `path`. Returns the files written (one, or two for a pair).
    @discardableResult
    public func write(_ volume: NiftiVolume, to path: String) throws(NiftiError) -> [String] {
        let (headerPath, imagePath, form) = try Self.layout(for: path, version: volume.header.fileForm.version)
        var header = volume.header
        header.descrip = descrip
        header.auxFile = ""
        header.intentName = ""
        header.raw.nifti_type = form.niftiType
        guard volume.storage.count == Int(header.voxelCount) * volume.dataType.byteSize else {
            throw NiftiError(.writeFailed("the voxel data does not match the header's size"), path: path)
        }
        if !replaceExisting {
            for target in Set([headerPath, imagePath]) where access(target, F_OK) == 0 {
                throw NiftiError(.outputExists, path: target)
            }
        }
        let tmpHeader = DurableFile.temporaryName(for: headerPath)
        let tmpImage = form.isPair
            ? DurableFile.directory(of: tmpHeader) + "/" + imageName(forHeader: DurableFile.fileName(of: tmpHeader), imagePath: imagePath)
            : tmpHeader
        let temporaries = Array(Set([tmpHeader, tmpImage]))
        defer { for t in temporaries { unlink(t) } }

        var dataOffset: Int64 = 0
        var rc: Int32 = 0, memberSizes: [Int64]? = nil
        if form.isCompressed, let block = gzipBlockBytes, volume.storage.count > block {
            var raw = header.raw
            rc = dfc_nifti_write_header(tmpHeader, &raw, &dataOffset)
            if rc == 0 {
                memberSizes = volume.storage.withUnsafeBytes { bytes in
                    GzipMembers.compress(bytes, blockBytes: block, level: gzipLevel, threads: threads) { member in
                        rc = dfc_append_file(tmpImage, member.baseAddress, Int64(member.count))
                        return rc == 0
                    }
                }
                if memberSizes == nil && rc == 0 { throw NiftiError(.writeFailed("the data could not be compressed"), path: path) }
            }
        } else {
            rc = volume.storage.withUnsafeBytes { bytes in
                var raw = header.raw
                return dfc_nifti_write(tmpHeader, &raw, bytes.baseAddress, Int64(bytes.count), gzipLevel, &dataOffset)
            }
        }
        guard rc == 0 else {
            guard rc != DFC_WRITE_REFUSED else { throw NiftiError(.writeFailed("libnifti refused the header"), path: path) }
            var error = NiftiError(.writeFailed(SystemError.explain(-rc, path: path)), path: path)
            error.errno = -rc
            throw error
        }
        try verify(header: header, tmpHeader: tmpHeader, tmpImage: tmpImage, isPair: form.isPair,
                   dataOffset: dataOffset, storage: volume.storage, members: memberSizes, path: path)
        var placed: [String] = []  // final names this write put in place: removed again if it fails
        do {
            for t in temporaries { try DurableFile.fsyncFile(t) }
            if form.isPair {
                // The image first: a header never points at a missing image.
                try DurableFile.rename(tmpImage, to: imagePath, replacing: replaceExisting)
                placed.append(imagePath)
                try DurableFile.rename(tmpHeader, to: headerPath, replacing: replaceExisting)
            } else {
                try DurableFile.rename(tmpHeader, to: headerPath, replacing: replaceExisting)
            }
            placed.append(headerPath)
            try DurableFile.fsyncDirectory(DurableFile.directory(of: headerPath))
        } catch {
            if !replaceExisting { for p in placed { unlink(p) } }
            if error.errno == EEXIST { throw NiftiError(.outputExists, path: error.path) }
            var failure = NiftiError(.writeFailed(error.description), path: path)
            failure.errno = error.errno
            throw failure
        }
        return form.isPair ? [headerPath, imagePath] : [headerPath]
    }

    /// Re-reads the finished temporary files before they are published: the header parses to
    /// the same sizes and type, the data decompresses (gzip CRC and length checked) to exactly
    /// the bytes written, and nothing follows them. Gzip members are re-read on the workers,
    /// each at its place in the file, after the header's own member.
    private func verify(header: NiftiHeader, tmpHeader: String, tmpImage: String, isPair: Bool,
                        dataOffset: Int64, storage: [UInt8], members: [Int64]?, path: String) throws(NiftiError) {
        var prefix = [UInt8](repeating: 0, count: NiftiRawHeader.maxHeaderSize)
        let got = dfc_read_prefix(tmpHeader, &prefix, Int64(prefix.count))
        let n = Int(header.raw.ndim)
        guard got > 0, let stored = NiftiRawHeader.parse(Array(prefix.prefix(Int(got)))),
              Array(stored.dim[0...n]) == Array(tupleArray(header.raw.dim, as: Int64.self)[0...n]),
              stored.datatype == header.raw.datatype,
              isPair || Int64(exactly: stored.voxOffset) == dataOffset,
              (try? NiftiLimits(maxVoxels: .max).check(stored, isPair: isPair)) != nil else {
            throw NiftiError(.writeFailed("the written header does not read back as written (is the disk full or failing?)"), path: path)
        }
        var checks = [(tmpImage, dataOffset, Int64(storage.count), Int64(0))]
        if members != nil { checks = [] }
        if isPair { checks.append((tmpHeader, stored.headerSize, 0, 4)) }  // header, then its 4-byte extender
        var statuses: [Int32] = []
        if let members, let block = gzipBlockBytes {
            // the image file: the header's member inflating to exactly the data offset (none
            // in a pair's image file), then the data's members, and nothing after them
            var st = stat()
            let size: Int64 = stat(tmpImage, &st) == 0 ? Int64(st.st_size) : -1
            let start = size - members.reduce(0, +)
            statuses.append(start < 0 || (isPair ? start != 0 : start == 0) ? Int32(DFC_READ_SHORT)
                            : isPair ? Int32(DFC_READ_OK) : dfc_verify_gzip_member(tmpImage, 0, start, nil, dataOffset))
            statuses.append(storage.withUnsafeBytes {
                GzipMembers.verify(file: tmpImage, start: start, sizes: members, blockBytes: block, against: $0, threads: threads)
            })
        }
        for (file, offset, count, trailing) in checks {
            statuses.append(storage.withUnsafeBytes { bytes in
                dfc_verify_file(file, offset, count > 0 ? bytes.baseAddress : nil, count, trailing)
            })
        }
        for status in statuses {
            guard status == DFC_READ_OK else {
                let why = switch status {
                case Int32(DFC_READ_MISMATCH): "its bytes differ from those written"
                case Int32(DFC_READ_CORRUPT): "its gzip stream is damaged"
                case Int32(DFC_READ_SHORT): "it is shorter than written"
                default: "it could not be read back"
                }
                throw NiftiError(.writeFailed("re-reading the written file failed: \(why) (is the disk full or failing?)"), path: path)
            }
        }
    }

    private func imageName(forHeader tmpHeaderName: String, imagePath: String) -> String {
        // ".defacer-tmp-...-scan.hdr.gz" -> ".defacer-tmp-...-scan.img.gz"
        var name = tmpHeaderName
        if let r = name.range(of: ".hdr", options: .backwards) { name.replaceSubrange(r, with: ".img") }
        return name
    }
}
