import Glibc

extension DurableFile {
    /// The process that made a temporary name (`temporaryName(for:)`), or nil when `name` is
    /// not one of defacer's temporaries.
    public static func temporaryOwner(_ name: String) -> pid_t? {
        guard name.hasPrefix(temporaryPrefix) else { return nil }
        let rest = name.dropFirst(temporaryPrefix.count)
        guard let dash = rest.firstIndex(of: "-"), let pid = pid_t(rest[..<dash]), pid > 0 else { return nil }
        return pid
    }

    /// Removes the temporaries (files, or folders of a copied DICOM folder) that defacer
    /// processes no longer running left in `folder` and, `depth` levels further down, in its
    /// subfolders: what a kill in the middle of a write or of a cross-mount copy leaves. A
    /// temporary of a process still running (this one included) is left alone, and nothing
    /// that is not named as defacer's temporaries is touched. Returns how many were removed.
    @discardableResult
    public static func removeLeftoverTemporaries(in folder: String, depth: Int) -> Int {
        guard let names = list(folder) else { return 0 }
        var removed = 0
        for name in names {
            let path = folder + "/" + name
            if let pid = temporaryOwner(name) {
                guard !processIsRunning(pid) else { continue }
                if DropEntry(path: path)?.kind == .directory { removeTree(path) } else { unlink(path) }
                removed += DropEntry(path: path) == nil ? 1 : 0
            } else if depth > 0, !name.hasPrefix("."), DropEntry(path: path)?.kind == .directory {
                removed += removeLeftoverTemporaries(in: path, depth: depth - 1)
            }
        }
        if removed > 0 { try? fsyncDirectory(folder) }
        return removed
    }

    /// Whether a process with this id exists (one of another user counts as running).
    static func processIsRunning(_ pid: pid_t) -> Bool {
        kill(pid, 0) == 0 || Glibc.errno == EPERM
    }
}
