import Engine
import Foundation

/// Where the converted models live: `$DEFACER_MODELS`, else `models/` beside the working
/// folder (a source checkout), else the installed `/usr/share/defacer/models`.
package enum ModelLocation {
    package static var root: String {
        if let env = ProcessInfo.processInfo.environment["DEFACER_MODELS"], !env.isEmpty { return env }
        if FileManager.default.fileExists(atPath: "models/hdbet/model.json") { return "models" }
        return "/usr/share/defacer/models"
    }

    package static var defaultHDBET: String { root + "/hdbet" }
}
