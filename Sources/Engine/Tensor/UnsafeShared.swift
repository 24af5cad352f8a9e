/// A raw pointer handed to `DispatchQueue.concurrentPerform` workers that touch disjoint
/// parts of one buffer (Swift cannot prove that, so the wrapper vouches for it).
struct UnsafeShared<Pointee>: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Pointee>
    init(_ pointer: UnsafeMutablePointer<Pointee>) { self.pointer = pointer }
    init(_ pointer: UnsafePointer<Pointee>) { self.pointer = UnsafeMutablePointer(mutating: pointer) }
}
