import Foundation
import Testing
import TestSupport

/// tools/setup/install.sh, staged into a DESTDIR as a package build would.
@Suite struct InstallScriptTests {
    @Test func installStagesBinaryUnitConfigAndModels() throws {
        let dest = "/tmp/defacer-daemon-tests/install-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: dest) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [DefacerProcess.repositoryRoot + "/tools/setup/install.sh", "--no-build"]
        var env = ProcessInfo.processInfo.environment
        env["DESTDIR"] = dest
        env["PREFIX"] = "/usr"
        env["BINARY"] = DefacerProcess.binary
        process.environment = env
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        let fm = FileManager.default
        #expect(fm.isExecutableFile(atPath: dest + "/usr/bin/defacer"))
        #expect(fm.fileExists(atPath: dest + "/usr/share/defacer/models/hdbet/model.json"))
        #expect(fm.fileExists(atPath: dest + "/usr/share/defacer/models/hdbet/fold0.safetensors"))
        #expect(fm.fileExists(atPath: dest + "/etc/sysusers.d/defacer.conf"))
        #expect(fm.fileExists(atPath: dest + "/etc/tmpfiles.d/defacer.conf"))
        let unit = try String(contentsOfFile: dest + "/etc/systemd/system/defacer.service", encoding: .utf8)
        #expect(unit.contains("ExecStart=/usr/bin/defacer run --config /etc/defacer/defacer.toml\n"))
        let config = try String(contentsOfFile: dest + "/etc/defacer/defacer.toml", encoding: .utf8)
        #expect(config.contains("\nmodels = \"/usr/share/defacer/models\"\n"))
        // a second install never replaces the administrator's configuration
        try "# edited\n".write(toFile: dest + "/etc/defacer/defacer.toml", atomically: true, encoding: .utf8)
        let again = Process()
        again.executableURL = process.executableURL
        again.arguments = process.arguments
        again.environment = env
        again.standardOutput = FileHandle.nullDevice
        try again.run()
        again.waitUntilExit()
        #expect(again.terminationStatus == 0)
        #expect(try String(contentsOfFile: dest + "/etc/defacer/defacer.toml", encoding: .utf8) == "# edited\n")
        #expect(fm.fileExists(atPath: dest + "/etc/defacer/defacer.toml.new"))
    }
}
