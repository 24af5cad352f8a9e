import Foundation
import Glibc
import Testing
import TestSupport

/// The man pages say what the binary and the configuration really take.
@Suite struct ManPageTests {
    static func page(_ name: String) throws -> String {
        try String(contentsOfFile: DefacerProcess.repositoryRoot + "/docs/man/" + name, encoding: .utf8)
    }

    @Test func defacer1NamesEveryCommandAndOption() throws {
        let man = try Self.page("defacer.1")
        let top = try DefacerProcess.run(["--help"])
        let commands = top.stdout.components(separatedBy: "SUBCOMMANDS:").last!.split(separator: "\n")
            .compactMap { line -> String? in
                let words = line.split(separator: " ")
                guard line.hasPrefix("  "), !line.hasPrefix("   "), let word = words.first,
                      word.allSatisfy({ $0.isLowercase || $0 == "-" }) else { return nil }
                return String(word)
            }
        #expect(commands.count >= 9, "\(commands)")
        for command in commands {
            #expect(man.contains(".B defacer " + command.replacingOccurrences(of: "-", with: "\\-")), "SYNOPSIS lacks \(command)")
            let help = try DefacerProcess.run(["help", command])
            let options = Set(help.stdout.split(whereSeparator: { " ,\n[]<>".contains($0) })
                .filter { $0.hasPrefix("--") }.map { String($0) })
            for option in options {
                #expect(man.contains(option.replacingOccurrences(of: "-", with: "\\-")), "defacer.1 lacks \(command) \(option)")
            }
        }
    }

    @Test func defacerToml5NamesEveryKeyOfTheDefaultConfiguration() throws {
        let man = try Self.page("defacer.toml.5")
        let config = try String(contentsOfFile: DefacerProcess.repositoryRoot + "/etc/defacer.toml", encoding: .utf8)
        let keys = Set(config.split(separator: "\n").compactMap { line -> String? in
            let text = line.hasPrefix("# ") ? line.dropFirst(2) : line[...]
            guard let eq = text.range(of: " = "), !text.hasPrefix(" ") else { return nil }
            let key = text[..<eq.lowerBound]
            return key.allSatisfy({ $0.isLowercase || $0.isNumber || $0 == "_" }) ? String(key) : nil
        })
        #expect(keys.count >= 25, "\(keys.sorted())")
        for key in keys {
            #expect(man.contains(".BR " + key.replacingOccurrences(of: "-", with: "\\-") + " "), "defacer.toml.5 lacks \(key)")
        }
    }
}

/// tools/package/build-deb.sh: the package built, checked with lintian, installed with apt-get
/// on this machine, used (version, check-config, a real deface with the installed models),
/// reinstalled over an edited configuration, removed and purged. Runs only as root on a
/// Debian machine where no other defacer package is installed. Leaves the user `defacer` and
/// the empty folders under /srv/defacer, as a purge does. DEFACER_DEB_BINARY=PATH packages a
/// static binary already built instead of building one.
@Suite(.serialized) struct DebianPackageTests {
    static let canRun: Bool = {
        getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/apt-get")
            && FileManager.default.isExecutableFile(atPath: "/usr/bin/dpkg-deb")
            && FileManager.default.fileExists(atPath: DefacerProcess.repositoryRoot + "/models/hdbet/model.json")
            && FileManager.default.fileExists(atPath: DefacerProcess.repositoryRoot + "/data/real/ch2.nii.gz")
    }()

    @discardableResult
    static func shell(_ command: String, expect status: Int32? = 0, cwd: String? = nil,
                      sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        var env = ProcessInfo.processInfo.environment
        env["DEFACER_MODELS"] = nil
        env["DEBIAN_FRONTEND"] = "noninteractive"
        let (terminationStatus, output) = try ToolProcess.run("/bin/bash", ["-c", command], environment: env, in: cwd)
        if let status { #expect(terminationStatus == status, "\(command):\n\(output)", sourceLocation: sourceLocation) }
        return output
    }

    static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    @Test(.enabled(if: canRun, "needs root, apt-get, dpkg-deb, models/ and data/"))
    func packageInstallsRunsAndPurges() throws {
        let status = try Self.shell("dpkg-query -W -f='${Status}' defacer 2>/dev/null || true")
        try #require(!status.contains("installed"), "a defacer package is already installed on this machine: \(status)")
        let out = "/tmp/defacer-daemon-tests/deb-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        defer {
            _ = try? Self.shell("apt-get -o DPkg::Lock::Timeout=600 purge -y defacer", expect: nil)
            try? FileManager.default.removeItem(atPath: out)
        }
        let root = DefacerProcess.repositoryRoot
        // the script builds the static binary itself (.build-static/), unless given one
        let binary = ProcessInfo.processInfo.environment["DEFACER_DEB_BINARY"].map { " --binary " + $0 } ?? ""
        let built = try Self.shell("bash \(root)/tools/package/build-deb.sh --fast --out \(out)\(binary)")
        let deb = try #require(built.split(separator: "\n").last.map(String.init))
        #expect(deb.hasSuffix("_amd64.deb") && Self.exists(deb), "\(built)")
        #expect(!built.contains("E: defacer"), "lintian errors:\n\(built)")

        let fields = try Self.shell("dpkg-deb --field \(deb) Package Version Depends Recommends")
        for needed in ["libnifti2-2", "libopenblas0", "libsystemd0", "libc6", "Recommends: dcm2niix"] {
            #expect(fields.contains(needed), "\(needed) in \(fields)")
        }
        #expect(!fields.contains("swift"), "no Swift runtime dependency: \(fields)")
        #expect(try Self.shell("dpkg-deb --ctrl-tarfile \(deb) | tar -xO ./conffiles") == "/etc/defacer/defacer.toml\n")

        try Self.shell("apt-get -o DPkg::Lock::Timeout=600 install -y \(deb)")
        let version = try Self.shell("/usr/bin/defacer --version")
        #expect(deb.contains("defacer_" + version.split(separator: " ").last!.trimmingCharacters(in: .whitespacesAndNewlines) + "_amd64"))
        // the Swift runtime is inside the binary: nothing from a toolchain is loaded
        #expect(!(try Self.shell("ldd /usr/bin/defacer")).contains("/opt/swift"))
        // the user and the folders; the unit installed but neither enabled nor started
        #expect(try Self.shell("id -un defacer") == "defacer\n")
        #expect(try Self.shell("stat -c '%a %U %G' /srv/defacer/inbox /srv/defacer/outbox") == "2770 defacer defacer\n2750 defacer defacer\n")
        // the secret of the logged name hashes, made by postinst, readable by the service's group only
        #expect(try Self.shell("stat -c '%a %U %G %s' /etc/defacer/name-hash.key") == "640 root defacer 64\n")
        #expect(Self.exists("/lib/systemd/system/defacer.service"))
        #expect(!Self.exists("/etc/systemd/system/multi-user.target.wants/defacer.service"))
        #expect(try Self.shell("grep '^ExecStart=' /lib/systemd/system/defacer.service") == "ExecStart=/usr/bin/defacer run --config /etc/defacer/defacer.toml\n")
        for path in ["/usr/share/defacer/models/hdbet/NOTICE", "/usr/share/defacer/models/hdbet/LICENSE",
                     "/usr/share/man/man1/defacer.1.gz", "/usr/share/man/man5/defacer.toml.5.gz",
                     "/usr/share/bash-completion/completions/defacer", "/usr/share/zsh/vendor-completions/_defacer",
                     "/usr/share/fish/vendor_completions.d/defacer.fish", "/usr/share/doc/defacer/copyright"] {
            #expect(Self.exists(path), "\(path)")
        }
        #expect(try Self.shell("head -c 400 /usr/share/defacer/models/hdbet/LICENSE").contains("Apache License"))
        #expect(try Self.shell("bash -c 'source /usr/share/bash-completion/completions/defacer && complete -p defacer'").contains("defacer"))

        let check = try Self.shell("runuser -u defacer -- /usr/bin/defacer check-config --config /etc/defacer/defacer.toml")
        #expect(check.contains("valid") && check.contains("models /usr/share/defacer/models"), "\(check)")

        // a real scan defaced by the installed binary with the installed models (from a
        // folder without models/ and without DEFACER_MODELS)
        let work = out + "/deface"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: root + "/data/real/ch2.nii.gz", toPath: work + "/ch2.nii.gz")
        try Self.shell("/usr/bin/defacer deface ch2.nii.gz", cwd: work)
        let report = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: work + "/ch2_deface.json"))) as? [String: Any])
        #expect(report["brainVoxelsTouched"] as? Int == 0)
        #expect((report["voxelsRemoved"] as? Int ?? 0) > 10_000)
        #expect(Self.exists(work + "/ch2_defaced.nii.gz") && Self.exists(work + "/ch2_qc.png"))
        let review = try Self.shell("/usr/bin/defacer review \(work) --output \(work)/review.html")
        #expect(review.contains("1 defaced"), "\(review)")

        // an edited configuration survives a reinstall (a conffile); removing keeps it and the data
        try Self.shell("sed -i 's/^max_jobs = 2$/max_jobs = 1/' /etc/defacer/defacer.toml")
        try Self.shell("apt-get -o DPkg::Lock::Timeout=600 install -y --reinstall \(deb)")
        #expect(try Self.shell("grep '^max_jobs' /etc/defacer/defacer.toml") == "max_jobs = 1\n")
        try Self.shell("runuser -u defacer -- touch /srv/defacer/outbox/kept_defaced.nii.gz")
        try Self.shell("apt-get -o DPkg::Lock::Timeout=600 remove -y defacer")
        #expect(!Self.exists("/usr/bin/defacer") && !Self.exists("/usr/share/defacer/models/hdbet/fold0.safetensors"))
        #expect(Self.exists("/etc/defacer/defacer.toml"))
        #expect(Self.exists("/srv/defacer/outbox/kept_defaced.nii.gz"))
        // purging removes the configuration, and still keeps the scans
        try Self.shell("apt-get -o DPkg::Lock::Timeout=600 purge -y defacer")
        #expect(!Self.exists("/etc/defacer"))
        #expect(Self.exists("/srv/defacer/outbox/kept_defaced.nii.gz"))
        #expect(try Self.shell("dpkg-query -W -f='${Status}' defacer 2>&1 || true").contains("not-installed")
                || (try Self.shell("dpkg-query -W -f='${Status}' defacer 2>&1 || true")).contains("no packages found"))
        try? FileManager.default.removeItem(atPath: "/srv/defacer/outbox/kept_defaced.nii.gz")
    }
}
