import Testing
import TestSupport

/// The service suites that run a daemon on the real engine (`DropFolderServiceTests`,
/// `FailedScansTests`, `RestartRecoveryTests`, `ServiceLifecycleTests`, `JobThreadsTests` and
/// the others declared in an `extension ServiceTests`, one file each), nested here so that they
/// run one test at a time: each daemon uses both cores. In CI they run even
/// without models, and fail (`requireDaemonTestData`).
@Suite(.serialized, .enabled(if: daemonTestsCanRun, "needs models/ and data/ from tools/setup/setup.sh"))
struct ServiceTests {}
