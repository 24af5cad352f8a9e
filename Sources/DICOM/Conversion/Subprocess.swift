import Engine
import Foundation
import Glibc

/// A child program run with `posix_spawn`, in its own process group, with standard input from
/// /dev/null, standard output and error into a file, the signals the service ignores set back
/// to their defaults, and a time limit after which the whole group is killed.
package enum Subprocess {
    /// How the child ended.
    package enum Ending: Sendable, Equatable {
        case exited(Int32)
        case signalled(Int32)
        /// Killed after the time limit.
        case timedOut
        /// It could not be started (errno: ENOENT when the program is missing).
        case notStarted(Int32)
    }

    /// Runs `executable` (an absolute path) with `arguments`; blocks the calling thread.
    package static func run(_ executable: String, _ arguments: [String], outputFile: String, timeout: Double,
                    environment: [String] = ["PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8"]) -> Ending {
        switch start(executable, arguments, outputFile: outputFile, environment: environment) {
        case .failure(let failure): return .notStarted(failure.code)
        case .success(let pid): return wait(for: pid, timeout: timeout)
        }
    }

    /// The errno of a child that could not be started.
    package struct SpawnFailure: Error { package var code: Int32 }

    /// Starts `executable` in its own process group (its id is the child's pid) without waiting.
    package static func start(_ executable: String, _ arguments: [String], outputFile: String,
                      environment: [String]) -> Result<pid_t, SpawnFailure> {
        var actions = posix_spawn_file_actions_t()
        var attributes = posix_spawnattr_t()
        posix_spawn_file_actions_init(&actions)
        posix_spawnattr_init(&attributes)
        defer {
            posix_spawn_file_actions_destroy(&actions)
            posix_spawnattr_destroy(&attributes)
        }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputFile, O_WRONLY | O_CREAT | O_TRUNC, 0o640)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for sig in [SIGHUP, SIGINT, SIGTERM, SIGPIPE, SIGQUIT] { sigaddset(&defaults, sig) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup($0) } + [nil]
        defer {
            for p in argv { free(p) }
            for p in envp { free(p) }
        }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        guard rc == 0 else { return .failure(SpawnFailure(code: rc)) }
        return .success(pid)
    }

    /// Waits for a child started with `start`; kills its group after `timeout` seconds.
    package static func wait(for pid: pid_t, timeout: Double) -> Ending {
        let deadline = monotonicSeconds() + timeout
        var status: Int32 = 0
        while true {
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid { break }
            if r < 0 && errno != EINTR { return .exited(-1) }
            if monotonicSeconds() > deadline {
                kill(-pid, SIGKILL)
                kill(pid, SIGKILL)
                while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
                return .timedOut
            }
            usleep(20_000)
        }
        let signal = status & 0x7F
        return signal == 0 ? .exited((status >> 8) & 0xFF) : .signalled(signal)
    }

    /// The last `bytes` of a file, as text (for reason files, never for logs).
    package static func tail(of path: String, bytes: Int = 4096) -> String {
        guard let data = FileManager.default.contents(atPath: path) else { return "" }
        return String(decoding: data.suffix(bytes), as: UTF8.self)
    }
}
