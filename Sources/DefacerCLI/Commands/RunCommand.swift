import ArgumentParser
import CLinux
import DICOM
import DropFolders
import Engine
import Foundation

/// `defacer run --config FILE`: the drop-folder service in the foreground (systemd runs it as
/// Type=notify; see systemd/defacer.service).
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Watch drop folders and deface every scan that arrives (the systemd service).",
        discussion: """
        Runs in the foreground until SIGTERM or SIGINT (a first signal lets the running scans \
        finish; a second stops at once, and they resume at the next start). SIGHUP reloads the \
        configuration; an invalid one is reported and the running one kept. Under systemd it \
        reports READY, STATUS, WATCHDOG, RELOADING and STOPPING, and logs to the journal with a \
        MESSAGE_ID per event; otherwise it logs one line per event on stderr.
        """
    )

    @Option(help: "The TOML configuration (see etc/defacer.toml for every key and its default).")
    var config = "/etc/defacer/defacer.toml"

    @Option(help: "Where log entries go: auto (the journal when stderr is connected to it), journal or stderr.")
    var log: LogTarget = .auto

    enum LogTarget: String, ExpressibleByArgument { case auto, journal, stderr }

    func run() throws {
        // a core file or a debugger attached by another process of this user would show the scans
        // being defaced: never dumpable (systemd/defacer.service also sets LimitCORE=0)
        guard dfc_set_not_dumpable() == 0 else {
            throw CommandFailure(message: "not starting: core dumps could not be switched off (prctl: \(String(cString: strerror(errno))))")
        }
        let eventLog = EventLog(target: log == .auto ? nil : EventLog.Target(rawValue: log.rawValue))
        let settings: DaemonConfig
        do { settings = try ConfigLoader.load(config) } catch {
            throw CommandFailure(message: "not starting: \(error)")
        }
        var fields = [("CONFIG", settings.sourcePath), ("VERSION", DefacerVersion.string)]
        var dicom = ""
        if settings.inboxes.contains(where: \.acceptsDicom), let converter = settings.dicom.dcm2niix {
            let version = converter.version() ?? "(version unknown)"
            dicom = "; DICOM folders are converted by dcm2niix \(version) (\(converter.executable))"
            fields += [("DCM2NIIX", converter.executable), ("DCM2NIIX_VERSION", version)]
        }
        eventLog.log(.started, "defacer \(DefacerVersion.string) starting with \(settings.sourcePath)\(dicom)", fields)
        let engines: Set<String>
        do { engines = try DropFolderService.verifyEngines(for: settings, models: settings.models) } catch {
            throw CommandFailure(message: "not starting: the models cannot be loaded: \(error)")
        }
        let hasher: NameHasher
        do { hasher = try NameHasher.load(configuredFile: settings.nameHashKeyFile) } catch {
            throw CommandFailure(message: "not starting: \(error)")
        }
        let service: DropFolderService
        do { service = try DropFolderService(config: settings, verifiedEngines: engines, nameHasher: hasher, log: eventLog) } catch {
            throw CommandFailure(message: "not starting: \(error)")
        }
        service.run()  // returns once stopped by SIGTERM or SIGINT
    }
}
