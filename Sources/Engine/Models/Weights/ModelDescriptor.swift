import Foundation

/// A model's `model.json`: architecture and hyperparameters, preprocessing, weight files,
/// source and licence.
public struct ModelDescriptor: Sendable {
    public var name: String
    public var architecture: String
    public var folds: [String]
    public var targetSpacing: [Double]
    public var padMultiple: Int
    public var minimumSize: Int
    public var source: String
    public var licence: String
    public var hdbetHyperparameters: HDBETNetwork.Hyperparameters

    public init(path: String) throws(ModelError) {
        guard let data = FileManager.default.contents(atPath: path) else { throw ModelError(.missingFile, path: path) }
        let any: Any
        do { any = try JSONSerialization.jsonObject(with: data) } catch {
            throw ModelError(.malformed("model.json is not valid JSON"), path: path)
        }
        guard let json = any as? [String: Any], let architecture = json["architecture"] as? String,
              let folds = json["folds"] as? [String], !folds.isEmpty
        else { throw ModelError(.malformed("model.json lacks architecture or folds"), path: path) }
        let relu = json["leaky_relu"] as? [String: Any] ?? [:]
        let pre = json["preprocessing"] as? [String: Any] ?? [:]
        name = json["name"] as? String ?? architecture
        self.architecture = architecture
        self.folds = folds
        targetSpacing = pre["target_spacing"] as? [Double] ?? [1.5, 1.5, 1.5]
        padMultiple = pre["pad_multiple"] as? Int ?? 16
        minimumSize = (pre["min_size"] as? [Int])?.max() ?? 128
        source = json["source"] as? String ?? ""
        licence = json["licence"] as? String ?? ""
        var h = HDBETNetwork.Hyperparameters()
        if let v = json["input_channels"] as? Int { h.inputChannels = v }
        if let v = json["num_classes"] as? Int { h.classes = v }
        if let v = json["base_features"] as? Int { h.baseFilters = v }
        if let v = json["num_pool"] as? Int { h.levels = v + 1 }
        if let v = relu["module_slope"] as? Double { h.moduleLeakiness = Float(v) }
        if let v = relu["network_slope"] as? Double { h.networkLeakiness = Float(v) }
        hdbetHyperparameters = h
    }
}
