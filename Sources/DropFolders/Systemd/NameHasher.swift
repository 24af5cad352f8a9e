import Engine
import Foundation
import Glibc

/// Why the name-hash key could not be used; the service does not start without one (it never
/// logs unkeyed hashes, which a list of names would reverse).
package struct NameHashKeyError: Error, Sendable, CustomStringConvertible {
    package var description: String
}

/// Keyed hashes of file and folder names for the log (`NAME_HASH`): the first 16 hex digits of
/// HMAC-SHA256(key, name). The key is a secret made at install time (tools/setup/install.sh,
/// the package's postinst: `/etc/defacer/name-hash.key`, mode 0640 root:defacer), named by
/// `name_hash_key_file`; without that key, `name-hash.key` in the service's state folder
/// (systemd's StateDirectory, /var/lib/defacer), made on first start and kept from then on.
/// The same key gives the same hash across restarts, so entries of one scan can be followed;
/// whoever holds the key can check a name: `printf %s NAME | openssl dgst -sha256 -hmac "$(cat KEY)"`.
package struct NameHasher: Sendable {
    /// Digits of the HMAC kept in the log.
    package static let digits = 16
    /// The key file's name in the state folder.
    package static let stateFileName = "name-hash.key"
    /// Shortest accepted key (a made key has 64 hex digits, 256 bits).
    static let minimumKeyLength = 32

    package let key: [UInt8]
    /// Where the key was read from (for the log of the start).
    package let keyFile: String

    package init(key: [UInt8], keyFile: String) {
        self.key = key
        self.keyFile = keyFile
    }

    package func hash(_ name: String) -> String {
        String(FileHash.hmacSHA256(Array(name.utf8), key: key).prefix(Self.digits))
    }

    /// The key of `configuredFile`, which has to be there; without one, the state folder's key,
    /// made when missing.
    package static func load(configuredFile: String?,
                             environment: [String: String] = ProcessInfo.processInfo.environment) throws(NameHashKeyError) -> NameHasher {
        if let configuredFile { return try read(configuredFile) }
        let folder = try stateFolder(environment)
        let file = folder + "/" + stateFileName
        if access(file, F_OK) != 0 {
            do {
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true,
                                                        attributes: [.posixPermissions: 0o700])
            } catch {
                throw NameHashKeyError(description: "the folder \(folder) for the name-hash key cannot be made: \(error.localizedDescription)")
            }
            do { try DurableFile.write(Array(makeKey().utf8), to: file, replacing: false, mode: 0o600) } catch {
                // another start may have made it at the same moment: use that one
                if error.errno != EEXIST {
                    throw NameHashKeyError(description: "the name-hash key \(file) cannot be made: \(error)")
                }
            }
        }
        return try read(file)
    }

    /// 64 random hex digits (`od -An -tx1 -N32 /dev/urandom`'s bytes).
    static func makeKey() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined() + "\n"
    }

    /// systemd's STATE_DIRECTORY (the first one), else `$XDG_STATE_HOME/defacer` or
    /// `~/.local/state/defacer` for a run outside systemd.
    static func stateFolder(_ environment: [String: String]) throws(NameHashKeyError) -> String {
        if let state = environment["STATE_DIRECTORY"]?.split(separator: ":").first { return String(state) }
        if let xdg = environment["XDG_STATE_HOME"], xdg.hasPrefix("/") { return xdg + "/defacer" }
        if let home = environment["HOME"], home.hasPrefix("/") { return home + "/.local/state/defacer" }
        throw NameHashKeyError(description: "no folder for the name-hash key: set name_hash_key_file in the configuration, "
                               + "or run under systemd (StateDirectory=defacer)")
    }

    /// Reads a key file: a regular file, not readable by other users, whose text (without
    /// surrounding white space) is at least 32 bytes long.
    static func read(_ file: String) throws(NameHashKeyError) -> NameHasher {
        var st = stat()
        guard stat(file, &st) == 0 else {
            throw NameHashKeyError(description: "the name-hash key \(file) cannot be read (\(String(cString: strerror(errno)))); "
                                   + "make one with: umask 027; od -An -tx1 -N32 /dev/urandom | tr -d ' \\n' > \(file); chgrp defacer \(file)")
        }
        guard st.st_mode & S_IFMT == S_IFREG else {
            throw NameHashKeyError(description: "the name-hash key \(file) is not a regular file")
        }
        guard st.st_mode & 0o007 == 0 else {
            throw NameHashKeyError(description: "the name-hash key \(file) is readable by every user (mode "
                                   + String(st.st_mode & 0o777, radix: 8) + "): chmod o-rwx \(file)")
        }
        guard let data = FileManager.default.contents(atPath: file) else {
            throw NameHashKeyError(description: "the name-hash key \(file) cannot be read (\(String(cString: strerror(errno))))")
        }
        let key = Array(String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines).utf8)
        guard key.count >= minimumKeyLength else {
            throw NameHashKeyError(description: "the name-hash key \(file) is too short (\(key.count) bytes; at least "
                                   + "\(minimumKeyLength), e.g. 64 random hex digits)")
        }
        return NameHasher(key: key, keyFile: file)
    }
}
