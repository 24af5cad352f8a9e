/// Why a model's weights or descriptor could not be loaded, naming the file.
public struct ModelError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The kind of problem.
    public enum Code: Sendable, Equatable {
        case missingFile
        case malformed(String)
        case missingTensor(String)
        case wrongShape(name: String, expected: [Int], found: [Int])
        case wrongDataType(name: String, found: String)
        case unexpectedTensors([String])
        case unsupportedArchitecture(String)
        /// Labels asked for that the model does not have (the detail names the ones it has).
        case unknownLabels(String)
    }

    public var code: Code
    public var path: String

    public init(_ code: Code, path: String) {
        self.code = code
        self.path = path
    }

    public var description: String {
        let reason: String
        switch code {
        case .missingFile:
            reason = "the model file is missing; run tools/setup/setup.sh (or the package's install step) to fetch the model weights"
        case .malformed(let detail):
            reason = "the model file is damaged or not in the expected format: \(detail)"
        case .missingTensor(let name):
            reason = "the weights lack the tensor \(name): they belong to another network"
        case .wrongShape(let name, let expected, let found):
            reason = "tensor \(name) has shape \(found), the network needs \(expected): the weights belong to another network"
        case .wrongDataType(let name, let found):
            reason = "tensor \(name) is stored as \(found), only F32 is supported"
        case .unexpectedTensors(let names):
            reason = "the weights hold tensors this network does not use (\(names.prefix(5).joined(separator: ", "))): they belong to another network"
        case .unsupportedArchitecture(let name):
            reason = "the model's architecture \(name) is not one defacer can run"
        case .unknownLabels(let detail):
            reason = "the labels to remove are not all the model's: \(detail)"
        }
        return "\(path): \(reason)"
    }
}
