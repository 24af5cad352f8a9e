import Foundation

extension DropFolderService {
    /// With `executor = "slurm"`: checks on a thread of its own (never the loop) that the Slurm
    /// nodes see the work folders (`SlurmFolderCheck`, as check-config does); a work folder they
    /// do not see, or a check that could not tell, is a `slurm-check` warning in the journal.
    /// The service runs on either way.
    func checkSlurmFolders() {
        guard config.executor == .slurm else { return }
        let check = SlurmFolderCheck(settings: config.slurm, timeoutSeconds: Self.slurmCheckSeconds)
        let folders = config.inboxes.map(\.work)
        let log = self.log
        Thread.detachNewThread {
            for finding in check.run(folders: folders) where finding.verdict != .visible {
                log.log(.slurmCheck, finding.message, [("WORK_FOLDER", finding.folder), ("SLURM_CHECK", "\(finding.verdict)")])
            }
        }
    }

    /// How long the start-up check's job may wait for a node and run, seconds.
    static let slurmCheckSeconds = 300.0
}
