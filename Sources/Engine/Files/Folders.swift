import Glibc

/// Listing and removing folders (job and conversion folders: links are never followed).
extension DurableFile {
    /// The names in a folder (without `.` and `..`), or nil when it cannot be listed.
    public static func list(_ path: String) -> [String]? {
        guard let dir = opendir(path) else { return nil }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Removes a folder and everything in it; symbolic links inside are removed, not followed.
    public static func removeTree(_ path: String) {
        for name in list(path) ?? [] {
            let child = path + "/" + name
            var st = stat()
            if lstat(child, &st) == 0, st.st_mode & S_IFMT == S_IFDIR { removeTree(child) } else { unlink(child) }
        }
        rmdir(path)
    }
}
