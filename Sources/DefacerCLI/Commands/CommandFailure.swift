import ArgumentParser

/// An error whose message is shown to the user as is, with exit code 1.
struct CommandFailure: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
