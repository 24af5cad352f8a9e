import Glibc

/// A test hook, honoured only when the environment variable `DEFACER_TEST_PAUSE_AT` is set
/// (never in the shipped unit): at the named phase boundary of a scan ("claimed",
/// "processing", "publishing", "failing", "moved-N" after the Nth move, "finished") the
/// process stops itself with SIGSTOP, so that a test can kill it with SIGKILL exactly there
/// and check what a restart makes of it.
public enum TestPause {
    /// Stops the process when `DEFACER_TEST_PAUSE_AT` names `phase`; does nothing otherwise.
    public static func at(_ phase: String) {
        guard let wanted = getenv("DEFACER_TEST_PAUSE_AT"), String(cString: wanted) == phase else { return }
        raise(SIGSTOP)  // to this thread: it stops before it takes another step
    }
}
