import Engine
import TOMLKit

extension ConfigLoader.Reader {
    /// `method`, `model` and `remove_labels` of a `[defacing]` table: the built-in face region or
    /// an nnU-Net model's labels. The model folder itself is checked by `FaceModelCheck`.
    package mutating func faceMethod(_ table: TOMLTable, prefix: String, base: DefaceMethod) -> DefaceMethod {
        var name = base.name, model: String?, labels: [Int] = []
        if case .nnunet(let folder, let removed) = base { (model, labels) = (folder, removed) }
        if let m = string(table, "method", prefix: prefix) {
            if m == "builtin" || m == "nnunet" { name = m } else {
                problem(prefix + "method", "must be \"builtin\" (defacer's own rules) or \"nnunet\" (a model's labels), not \"\(m)\"")
            }
        }
        if let folder = path(table, "model", prefix: prefix, root: root) { model = folder }
        if let raw = table["remove_labels"] {
            if let list = raw.array, list.allSatisfy({ ($0.int ?? 0) > 0 }) { labels = list.compactMap(\.int) } else {
                problem(prefix + "remove_labels", "must be a list of the model's label numbers, such as [1, 2]")
            }
        }
        guard name == "nnunet" else {
            if table["model"] != nil || table["remove_labels"] != nil {
                problem(prefix + "method", "model and remove_labels need method = \"nnunet\"")
            }
            return .builtin
        }
        guard let model else {
            problem(prefix + "model", "missing: method = \"nnunet\" needs the folder of a converted nnU-Net v1 model")
            return base
        }
        return .nnunet(model: model, removeLabels: labels)
    }
}

/// Checks every nnU-Net face model a config names: model.json readable and runnable, its fold
/// files present, every label in `remove_labels` one of the model's.
package enum FaceModelCheck {
    package static func check(_ config: DaemonConfig) -> [ConfigIssue] {
        var issues: [ConfigIssue] = [], seen = Set<DefaceMethod>()
        for (i, inbox) in config.inboxes.enumerated() {
            guard case .nnunet(let folder, let labels) = inbox.defacing.method, seen.insert(inbox.defacing.method).inserted else { continue }
            do throws(ModelError) { try NNUNetFaceModel.check(folder: folder, removeLabels: labels) } catch {
                issues.append(ConfigIssue(key: "inbox[\(i + 1)].defacing.model", message: error.description))
            }
        }
        return issues
    }
}
