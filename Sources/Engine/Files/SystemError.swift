import Glibc
import SystemPackage

/// A failed system call: which call, on what path, and the system's reason
/// ("rename /srv/outbox/scan.nii.gz: No space left on device"). Deliberately shaped like
/// `DefaceError` and `NiftiError` (what failed, on which path, why).
public struct SystemError: Error, Sendable, CustomStringConvertible {
    public var call: String
    public var path: String
    /// The system's reason.
    public var code: Errno

    public init(_ call: String, path: String, errno: Errno) {
        self.call = call
        self.path = path
        self.code = errno
    }

    /// The reason as C's `errno` value (to compare with `EEXIST`, `ENOSPC`...).
    public var errno: Int32 { code.rawValue }

    /// From a C call's `errno` value.
    public init(_ call: String, path: String, errno: Int32) {
        self.init(call, path: path, errno: Errno(rawValue: errno))
    }

    /// From what swift-system threw (always an `Errno`).
    init(_ call: String, path: String, thrown: any Error) {
        self.init(call, path: path, errno: (thrown as? Errno) ?? .ioError)
    }

    public var description: String { "\(call) \(path): \(String(cString: strerror(code.rawValue)))" }
}
