import DICOM
import Engine
import Foundation

/// What the service hands a scan's worker process, beside the job record: `worker.json` in the
/// job folder (the worker reads no config file, so a reload never changes a running scan), and
/// what the worker hands back: `result.json`, the job's outcome, written last.
package struct WorkerSpec: Codable, Sendable {
    package var inbox: InboxConfig
    package var models: String
    package var threads: Int
    package var crashLimit: Int
    package var writeRetries: Int
    package var dcm2niix: String?
    package var dicomTimeoutSeconds: Double
    package var dicomKeepAcquisitionTimes: Bool

    package static let fileName = "worker.json"
    package static let resultName = "result.json"
    package static let logName = "worker.log"

    package init(context: JobContext, models: String, threads: Int) {
        inbox = context.inbox
        self.models = models
        self.threads = threads
        crashLimit = context.crashLimit
        writeRetries = context.writeRetries
        dcm2niix = context.dicom.converterPath
        dicomTimeoutSeconds = context.dicom.timeoutSeconds
        dicomKeepAcquisitionTimes = context.dicom.keepAcquisitionTimes
    }

    /// The DICOM settings the service runs with.
    package var dicom: DicomSettings {
        var settings = DicomSettings()
        if let dcm2niix { settings.converter = dcm2niix }
        settings.converterPath = dcm2niix
        settings.timeoutSeconds = dicomTimeoutSeconds
        settings.keepAcquisitionTimes = dicomKeepAcquisitionTimes
        return settings
    }

    package static func read(folder: String) -> WorkerSpec? {
        readJSON(folder + "/" + fileName)
    }

    package func write(folder: String) throws(SystemError) {
        try DurableFile.write(Self.encoded(self), to: folder + "/" + Self.fileName, replacing: true)
    }

    /// The outcome a worker left in `folder`, or nil when it left none.
    package static func result(folder: String) -> JobOutcome? {
        readJSON(folder + "/" + resultName)
    }

    package static func writeResult(_ outcome: JobOutcome, folder: String) throws(SystemError) {
        try DurableFile.write(encoded(outcome), to: folder + "/" + resultName, replacing: true)
    }

    static func encoded(_ value: some Encodable) -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return (try? encoder.encode(value)) ?? Data()
    }

    static func readJSON<T: Decodable>(_ path: String) -> T? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return try? JSONDecoder().decode(T.self, from: data)
    }
}
