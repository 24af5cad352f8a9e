import Foundation
import Testing
import TestSupport

/// Every subcommand keeps its flags (the model options now come from one option group), and
/// errors reach the user as ArgumentParser prints them: `Error: <our message>`, exit code 1.
@Suite struct CommandOptionsTests {
    /// The long options each subcommand's help lists, as before the option groups.
    static let flags: [String: [String]] = [
        "deface": ["--output", "--mask", "--brain-mask", "--qc", "--report", "--mode", "--keep-ears", "--margin",
                   "--models", "--dcm2niix", "--keep-acquisition-times", "--brain-mask-outputs", "--method", "--model",
                   "--remove-labels"],
        "brain": ["--mask", "--probability", "--mode", "--models"],
        "bench": ["--models", "--scan", "--json", "--accurate"],
        "evaluate": ["--only", "--work", "--mode", "--models", "--json", "--accurate-check"],
        "segment": ["--model", "--output", "--folds", "--no-mirroring"],
        "run": ["--config", "--log"],
        "check-config": ["--config", "--slurm-check-seconds"],
        "info": ["--json"],
    ]

    @Test(arguments: flags.keys.sorted())
    func helpListsTheSameFlags(command: String) throws {
        let help = try DefacerProcess.run([command, "--help"])
        #expect(help.status == 0)
        for flag in Self.flags[command] ?? [] {
            #expect(help.stdout.contains(flag + " ") || help.stdout.contains(flag + "\n") || help.stdout.contains(flag + ","),
                    "\(command) --help lists \(flag)")
        }
        if command == "bench" { #expect(!help.stdout.contains("--mode ")) }  // "--models" aside
    }

    @Test func modelOptionsAreTakenByEveryCommandThatHasThem() throws {
        let missing = "/nonexistent/defacer-models"
        for command in [["deface", "in.nii.gz"], ["brain", "in.nii.gz"], ["evaluate", "manifest.json"]] {
            let result = try DefacerProcess.run(command + ["--models", missing, "--mode", "accurate"])
            #expect(result.status == 1, "\(command[0]) with a missing model folder")
            #expect(!result.stderr.contains("Unknown option"), "\(command[0]): \(result.stderr)")
        }
        let wrongMode = try DefacerProcess.run(["deface", "in.nii.gz", "--mode", "slow"])
        #expect(wrongMode.status == 64)  // ArgumentParser's usage error
        #expect(wrongMode.stderr.contains("--mode"))
    }

    @Test func errorsAreOneLineFromArgumentParserWithExitCode1() throws {
        let result = try DefacerProcess.run(["check-config", "--config", "/nonexistent/defacer.toml"])
        #expect(result.status == 1)
        #expect(result.stderr.hasPrefix("Error: "))
        #expect(result.stderr.contains("/nonexistent/defacer.toml"))
        #expect(result.stderr.components(separatedBy: "Error: ").count == 2, "the message is printed once")
    }
}
