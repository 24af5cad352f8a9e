import Crypto
import Foundation
import Glibc

/// SHA-256 digests and HMAC-SHA256 codes as lowercase hex (`sha256sum`'s), on swift-crypto.
public enum FileHash {
    /// The digest of a regular file, read in 1 MiB pieces; nil when the path is not a regular
    /// file or cannot be read. Pipes and devices are never read from; with `followLinks` off a
    /// symbolic link is refused too.
    public static func sha256(ofRegularFile path: String, followLinks: Bool = true) -> String? {
        var flags = O_RDONLY | O_NONBLOCK | O_CLOEXEC
        if !followLinks { flags |= O_NOFOLLOW }
        let fd = open(path, flags)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG else { return nil }
        var hash = SHA256()
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { return nil }
            if n == 0 { break }
            buffer.withUnsafeBytes { hash.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        }
        return hex(hash.finalize())
    }

    /// The digest of bytes in memory.
    public static func sha256(_ bytes: some DataProtocol) -> String {
        hex(SHA256.hash(data: bytes))
    }

    /// HMAC-SHA256 of `bytes` under `key`, as lowercase hex.
    public static func hmacSHA256(_ bytes: some DataProtocol, key: some ContiguousBytes) -> String {
        hex(HMAC<SHA256>.authenticationCode(for: bytes, using: SymmetricKey(data: key)))
    }

    private static func hex(_ digest: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(64)
        for byte in digest {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
