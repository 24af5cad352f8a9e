import Engine
import Foundation

/// Keeps `review.html` current in an outbox (`review_page = true`): rebuilt off the service
/// loop after each scan, written under a temporary name and renamed over the old page.
enum ReviewPageWriter {
    static let fileName = "review.html"
    private static let queue = DispatchQueue(label: "defacer.review-page", qos: .utility)

    /// Rebuilds the page of `outbox`, with the failed folders of every inbox that publishes there.
    static func refresh(outbox: String, config: DaemonConfig, log: EventLog) {
        let failed = config.inboxes.filter { $0.outbox == outbox }.map(\.failed)
        queue.async {
            let page = ReviewPage.html(ReviewBatch(outboxes: [outbox], failedFolders: failed), title: outbox)
            do {
                try DurableFile.write(Array(page.utf8), to: outbox + "/" + fileName, replacing: true)
            } catch {
                log.log(.folderProblem, "the review page in \(outbox) could not be written: \(error)", [("REASON", "\(error)")])
            }
        }
    }
}
