import Engine

/// Defaces a scan (the `Defacer` in production; the protocol keeps the job's file handling
/// apart from the engine).
package protocol ScanProcessor: Sendable {
    func deface(input: String, outputs: DefaceOutputs) throws(DefaceError) -> DefaceReport
}

extension Defacer: ScanProcessor {}
