import ArgumentParser
import Engine
import Foundation

/// `defacer review OUTBOX... [--output review.html] [--since DATE]`: one self-contained page
/// for a person to check a batch of defaced scans.
struct ReviewCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "review",
        abstract: "Write one self-contained HTML page for checking the defaced scans of outboxes.",
        discussion: """
        A card per defaced scan (every NAME_deface.json in the outboxes and their subfolders): \
        its QC picture, removed volume, distance to the brain, features found and removed, \
        warnings. Scans with warnings, a removed volume far from the batch's typical (beyond 3 \
        median absolute deviations) or ears not found come first; then the failed scans with \
        their reasons (NAME.reason.json). The pictures are embedded: the page can be copied and \
        opened anywhere, and it fetches nothing.
        """
    )

    @Argument(help: "Outbox folders of the service, or folders of `defacer deface` outputs.")
    var outboxes: [String]

    @Option(help: "The page to write.")
    var output = "review.html"

    @Option(help: "Only scans taken or failed on or after this date (YYYY-MM-DD, local time, or an ISO 8601 time).")
    var since: String?

    @Option(help: "A failed folder to list (repeatable; default: the folder 'failed' beside each outbox, when there is one).")
    var failed: [String] = []

    func run() throws {
        var sinceDate: Date?
        if let since {
            guard let d = ReviewDate.parse(since) else {
                throw ValidationError("--since \(since): not a date (write it as 2026-11-29 or 2026-11-29T08:00:00Z)")
            }
            sinceDate = d
        }
        for folder in outboxes {
            var isFolder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder), isFolder.boolValue else {
                throw CommandFailure(message: "\(folder): not a folder")
            }
        }
        let failedFolders = failed.isEmpty ? outboxes.map(Self.siblingFailed).filter {
            var isFolder: ObjCBool = false
            return FileManager.default.fileExists(atPath: $0, isDirectory: &isFolder) && isFolder.boolValue
        } : failed
        let batch = ReviewBatch(outboxes: outboxes, failedFolders: failedFolders, since: sinceDate)
        let html = ReviewPage.html(batch, title: outboxes.joined(separator: ", "))
        do {
            try DurableFile.write(Array(html.utf8), to: output, replacing: true)
        } catch {
            throw CommandFailure(message: "\(output): the page could not be written: \(error)")
        }
        let unusual = batch.entries.filter { !$0.concerns.isEmpty }.count
        print("\(output): \(batch.entries.count) defaced (\(unusual) to look at first), \(batch.failures.count) failed")
    }

    /// `OUTBOX/../failed`.
    static func siblingFailed(_ outbox: String) -> String {
        let trimmed = outbox.hasSuffix("/") && outbox.count > 1 ? String(outbox.dropLast()) : outbox
        return ((trimmed as NSString).deletingLastPathComponent as NSString).appendingPathComponent("failed")
    }
}
