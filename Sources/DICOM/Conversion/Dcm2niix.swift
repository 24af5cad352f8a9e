import Engine
import Foundation
import Glibc

/// dcm2niix (Debian package `dcm2niix`), the DICOM to NIfTI converter, run as a subprocess:
/// one series folder at a time, anonymised BIDS sidecar (`-ba y`), gzipped NIfTI (`-z y`).
package struct Dcm2niix: Sendable {
    /// Absolute path of the program.
    package let executable: String

    /// Why a conversion gave no images.
    package struct Failure: Error, Sendable {
        package enum Code: String, Sendable {
            /// The program could not be started (missing, not executable).
            case notStarted
            /// It ran past the time limit and was killed.
            case timedOut
            /// It ended with an error or a signal.
            case failed
            /// It ended normally but wrote no image.
            case noImage
        }
        package var code: Code
        package var reason: String
    }

    /// The name the converter's outputs start with (`series.nii.gz`, `seriesa.nii.gz`, `series_e2.nii.gz`...).
    package static let outputBase = "series"

    /// The absolute path of `program`: itself when it contains a slash, else the first
    /// executable of that name on PATH (or the usual system folders); nil when there is none.
    package static func locate(_ program: String) -> String? {
        if program.contains("/") {
            return access(program, X_OK) == 0 && DropEntry(path: program).map({ $0.kind != .directory }) ?? false
                ? DurableFile.resolve(program, against: FileManager.default.currentDirectoryPath) : nil
        }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let folders = path.split(separator: ":").map(String.init) + ["/usr/local/bin", "/usr/bin", "/bin"]
        for folder in folders where folder.hasPrefix("/") {
            let candidate = folder + "/" + program
            var st = stat()
            if stat(candidate, &st) == 0, st.st_mode & S_IFMT == S_IFREG, access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }

    /// `v1.0.20220720`, from `dcm2niix --version`; nil when it does not answer like dcm2niix.
    package func version() -> String? {
        let log = NSTemporaryDirectory() + "/defacer-dcm2niix-version-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { unlink(log) }
        let ending = Subprocess.run(executable, ["--version"], outputFile: log, timeout: 20)
        guard case .exited = ending else { return nil }
        let text = Subprocess.tail(of: log)
        return text.split(whereSeparator: { $0 == " " || $0 == "\n" }).last { $0.hasPrefix("v1.") || $0.hasPrefix("v2.") }.map(String.init)
    }

    /// Converts the DICOM files in `input` into `output` (both existing folders); the
    /// converter's own messages go to `log`. Returns the NIfTI images written, sorted.
    package func convert(input: String, output: String, log: String, timeout: Double) throws(Failure) -> [String] {
        let arguments = ["-b", "y", "-ba", "y", "-z", "y", "-f", Self.outputBase, "-o", output, input]
        switch Subprocess.run(executable, arguments, outputFile: log, timeout: timeout) {
        case .notStarted(let e):
            throw Failure(code: .notStarted, reason: "dcm2niix (\(executable)) cannot be started: \(String(cString: strerror(e)))")
        case .timedOut:
            throw Failure(code: .timedOut, reason: "dcm2niix did not finish within \(Int(timeout)) s (dicom_timeout_seconds) and was stopped")
        case .signalled(let sig):
            throw Failure(code: .failed, reason: "dcm2niix crashed (signal \(sig)) while converting")
        case .exited(let status) where status != 0:
            throw Failure(code: .failed, reason: "dcm2niix could not convert the series: \(Self.meaning(of: status))")
        case .exited:
            break
        }
        let images = (DurableFile.list(output) ?? []).filter { $0.hasPrefix(Self.outputBase) && $0.hasSuffix(".nii.gz") }.sorted()
        guard !images.isEmpty else { throw Failure(code: .noImage, reason: "dcm2niix wrote no image for the series") }
        return images.map { output + "/" + $0 }
    }

    /// dcm2niix's exit statuses in plain words.
    package static func meaning(of status: Int32) -> String {
        switch status {
        case 1: "it reported an error (exit status 1: unreadable or unsupported images)"
        case 2: "it found no DICOM images (exit status 2)"
        case 4: "the DICOM images are corrupt (exit status 4)"
        case 5: "the input folder is not valid (exit status 5)"
        case 6: "the output folder is not valid (exit status 6)"
        case 7: "it could not write its output (exit status 7; disk full?)"
        case 8: "it converted some images but not all (exit status 8)"
        case 9: "it could not rename its output (exit status 9)"
        default: "exit status \(status)"
        }
    }
}
