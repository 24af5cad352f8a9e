@testable import Engine
import Testing

/// The network pass's memory helpers: scratch buffers are reused rather than allocated anew,
/// and large fresh arrays come back writable with the size asked for.
@Suite struct ScratchMemoryTests {
    @Test func scratchBufferIsReusedWhenLargeEnoughAndReleasedByTrim() {
        let pool = ScratchBuffers()
        let first = pool.take(1000)
        first.pointer.update(repeating: 3, count: 1000)
        pool.give(first)
        let again = pool.take(600)
        #expect(again.pointer == first.pointer && again.capacity == 1000, "a free buffer large enough was not reused")
        let other = pool.take(600)
        #expect(other.pointer != again.pointer, "one buffer was handed to two holders")
        pool.give(again)
        pool.give(other)
        let larger = pool.take(5000)
        #expect(larger.capacity == 5000, "no free buffer was large enough, so a new one is made")
        pool.give(larger)
        pool.trim()
        let fresh = pool.take(10)
        #expect(fresh.capacity == 10, "trim left free buffers behind")
        pool.give(fresh)
        pool.trim()
    }

    @Test(arguments: [0, 1, 1000, 3 << 20])
    func freshFloatsHaveTheirSizeAndHoldWhatIsWritten(count: Int) {
        var values = FreshMemory.floats(count, threads: 2)
        #expect(values.count == count)
        for i in Swift.stride(from: 0, to: count, by: 4097) { values[i] = Float(i) }
        #expect(Swift.stride(from: 0, to: count, by: 4097).allSatisfy { values[$0] == Float($0) })
    }
}
