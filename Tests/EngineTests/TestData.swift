import Foundation
import Testing

/// Where the tests find the real scans and variants that `tools/setup/setup.sh` fetched and made.
enum TestData {
    static let repositoryRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    static func real(_ name: String) -> String { "\(repositoryRoot)/data/real/\(name)" }
    static func variant(_ name: String) -> String { "\(repositoryRoot)/data/variants/\(name)" }

    /// nibabel's view of the real scans (committed fixture).
    static let nibabelReference: [String: NibabelSummary] = loadJSON(
        Bundle.module.url(forResource: "Fixtures/nibabel_reference", withExtension: "json")!.path)

    /// nibabel's view of the variants (written by the setup beside them).
    static let variantManifest: VariantManifest = loadJSON(variant("manifest.json"))

    static func loadJSON<T: Decodable>(_ path: String) -> T {
        guard let data = FileManager.default.contents(atPath: path) else {
            fatalError("missing \(path): run tools/setup/setup.sh first")
        }
        return try! JSONDecoder().decode(T.self, from: data)
    }

    /// A fresh empty folder for one test, under this test process's own folder, which is
    /// removed when the process exits (kept with `DEFACER_KEEP_TEST_FILES=1`, to look into a failure).
    static func temporaryFolder() -> String {
        let path = testFilesRoot + "/" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// `defacer-test-PID` in the temporary folder, set up (with its removal at exit) on first use.
    private static let testFilesRoot: String = {
        if ProcessInfo.processInfo.environment["DEFACER_KEEP_TEST_FILES"] != "1" {
            atexit { try? FileManager.default.removeItem(atPath: NSTemporaryDirectory() + "defacer-test-\(getpid())") }
        }
        return NSTemporaryDirectory() + "defacer-test-\(getpid())"
    }()
}

/// One file as tools/fixtures/nibabel_summary.py describes it.
struct NibabelSummary: Decodable {
    struct Sample: Decodable {
        var index: [Int]
        var stored: Double
    }
    var shape: [Int]
    var zooms: [Double]
    var dtype: String
    var affine: [[Double]]
    var sform_code: Int
    var qform_code: Int
    var axcodes: String
    var scl_slope: Double?
    var scl_inter: Double?
    var samples: [Sample]
    var data_sha256: String
    var stored_sum: Double
    var file_sha256: String?
    var form: String?
}

struct VariantManifest: Decodable {
    var identifying: [String: String]
    var files: [String: NibabelSummary]
}
