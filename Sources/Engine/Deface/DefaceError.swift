/// Why a scan was not defaced. Nothing is written when this is thrown: the scan must go to
/// the failed folder (daemon) or the command exits non-zero (command line).
public struct DefaceError: Error, Sendable, CustomStringConvertible {
    /// The kind of failure.
    public enum Code: Sendable, Equatable {
        /// The file could not be read as a scan.
        case unreadable(NiftiError.Code)
        /// The model could not be loaded.
        case model(ModelError.Code)
        /// No brain, or a brain of implausible size, was found.
        case implausibleBrain
        /// The brain touches the edge of the field of view where the face would be.
        case brainCutByFieldOfView
        /// The anatomy contradicts the header's orientation, or the header has none and the
        /// anatomy cannot tell front from back or top from bottom.
        case orientationDisagrees
        /// The region to remove does not look like a face.
        case implausibleFace
        /// An output could not be written.
        case writeFailed
    }

    public var code: Code
    /// The input scan.
    public var path: String
    /// The reason in plain words.
    public var reason: String
    /// For an output that failed in a system call: its errno (ENOSPC...), for code that reacts to it.
    public var errno: Int32?

    public init(_ code: Code, path: String, reason: String) {
        self.code = code
        self.path = path
        self.reason = reason
    }

    init(_ error: NiftiError, input: String) {
        if case .writeFailed = error.code {
            self.init(.writeFailed, path: input, reason: "writing \(error.path) failed: \(error.reason)")
            errno = error.errno
        } else if case .outputExists = error.code {
            self.init(.writeFailed, path: input, reason: "\(error.path) already exists; defacer never overwrites files")
        } else {
            self.init(.unreadable(error.code), path: input, reason: error.reason)
        }
    }

    public var description: String { "\(path): not defaced: \(reason)" }
}
