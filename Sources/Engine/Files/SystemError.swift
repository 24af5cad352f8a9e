import Glibc
import SystemPackage

/// A failed system call: which call, on what path, and the system's reason, said as a
/// radiographer would need it ("writing /srv/outbox/scan.nii.gz failed: the disk holding
/// /srv/outbox is full (ENOSPC: No space left on device)"). Code that reacts to the reason (a
/// full disk waits) looks at `code`, never at the words.
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

    /// Whether the reason is a full disk or a used-up quota: a reason to wait, not a fault of the scan.
    public var isDiskFull: Bool { Self.isDiskFull(errno) }

    /// Whether `errno` says a full disk (ENOSPC) or a used-up quota (EDQUOT).
    public static func isDiskFull(_ errno: Int32) -> Bool { errno == ENOSPC || errno == EDQUOT }

    public var description: String {
        // a call on a folder is about that folder, not the one holding it
        "\(action) failed: \(Self.explain(errno, path: call.hasSuffix("folder") ? path + "/" : path))"
    }

    /// The operation in words: "writing /srv/outbox/x.nii.gz".
    public var action: String {
        switch call {
        case "write": "writing \(path)"
        case "read": "reading \(path)"
        case "open": "opening \(path)"
        case "close": "closing \(path) (the last of its data reaches the disk then)"
        case "fsync": "flushing \(path) to the disk"
        case "fsync folder": "flushing the folder \(path) to the disk"
        case "rename", "link": "moving a file to \(path)"
        case "unlink": "removing \(path)"
        case "mkdir": "creating the folder \(path)"
        case "copy": "copying \(path)"
        case "verify": "checking the copy \(path) against its source"
        default: "\(call) \(path)"
        }
    }

    /// The reason in words, for a call on `path`, with the errno's name and the system's words:
    /// "the disk holding /srv/outbox is full (ENOSPC: No space left on device)".
    public static func explain(_ errno: Int32, path: String) -> String {
        let folder = DurableFile.directory(of: path)
        let said = "\(name(of: errno)): \(String(cString: strerror(errno)))"
        return switch errno {
        case ENOSPC: "the disk holding \(folder) is full (\(said))"
        case EDQUOT: "the disk quota for \(folder) is used up (\(said))"
        case EIO: "the disk holding \(folder) reported a failure (\(said))"
        case EROFS: "\(folder) is on a read-only file system (\(said))"
        case EACCES, EPERM: "defacer may not do this in \(folder) (\(said))"
        case EEXIST: "a file of that name is already there (\(said))"
        case ENOENT: "it or its folder does not exist (\(said))"
        case EXDEV: "the two folders are on different mounts (\(said))"
        case ESTALE: "the network file system lost track of \(folder) (\(said))"
        default: said
        }
    }

    /// The errno's symbolic name ("ENOSPC"), or "errno N" for one not listed.
    public static func name(of errno: Int32) -> String {
        let names: [Int32: String] = [
            EPERM: "EPERM", ENOENT: "ENOENT", EINTR: "EINTR", EIO: "EIO", EBADF: "EBADF", EAGAIN: "EAGAIN",
            ENOMEM: "ENOMEM", EACCES: "EACCES", EBUSY: "EBUSY", EEXIST: "EEXIST", EXDEV: "EXDEV",
            ENOTDIR: "ENOTDIR", EISDIR: "EISDIR", EINVAL: "EINVAL", ENFILE: "ENFILE", EMFILE: "EMFILE",
            EFBIG: "EFBIG", ENOSPC: "ENOSPC", EROFS: "EROFS", EMLINK: "EMLINK", ENAMETOOLONG: "ENAMETOOLONG",
            ENOSYS: "ENOSYS", ENOTEMPTY: "ENOTEMPTY", ELOOP: "ELOOP", ENOTSUP: "ENOTSUP", ETIMEDOUT: "ETIMEDOUT",
            ESTALE: "ESTALE", EDQUOT: "EDQUOT",
        ]
        return names[errno] ?? "errno \(errno)"
    }
}
