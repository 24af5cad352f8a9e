/// Stride-1 3x3x3 Winograd convolutions (padding 1) computed a slab of output slices at a time,
/// so that a full-size input need not exist (an upsampling can fill each slab) and the output
/// may overwrite its own input: a slab's output is written only after the next slab's input
/// has been copied. Scratch memory is a few slices of input (two slabs' worth when the output
/// overwrites the input), whatever the volume.
/// Every output voxel comes from the same Winograd tile as in the whole-volume convolution.
extension Conv3D {
    /// Output slices per slab (a multiple of every Winograd tile side, so tiles line up with the whole-volume tiling).
    static let slabDepth = 8

    /// Whether ``slabwise(depth:height:width:threads:fill:into:channelStride:adding:fillingAhead:)`` can run this convolution.
    var runsBySlabs: Bool { usesWinograd && paddings == [1, 1, 1] }

    /// The convolution of an `inChannels x depth x height x width` input that `fill` provides,
    /// written straight into `target` (`outChannels` channels of `channelStride` values,
    /// `depth x height x width` each), or added to what is there. `fill(slices, to, channelStride)`
    /// writes input slices `slices` (along depth) of every channel `c` at
    /// `to + c * channelStride + (z - slices.lowerBound) * height * width`. With `fillingAhead`,
    /// each slab's input is filled before the previous slab's output is written, so `fill` may
    /// read what `target` holds (the output may overwrite its own input); otherwise `fill` must
    /// not read `target`.
    func slabwise(depth: Int, height: Int, width: Int, threads: Int,
                  fill: (Range<Int>, UnsafeMutablePointer<Float>, Int) -> Void,
                  into target: UnsafeMutablePointer<Float>, channelStride: Int, adding: Bool, fillingAhead: Bool = false) {
        precondition(runsBySlabs, "slab convolution needs a stride-1 3x3x3 Winograd layer with padding 1")
        EngineThreads.useSingleThreadedBLAS()
        let plane = height * width, slab = Self.slabDepth, size = inChannels * (slab + 2) * plane
        let buffers = (0..<(fillingAhead ? 2 : 1)).map { _ in ScratchBuffers.shared.take(size) }
        defer { buffers.forEach { ScratchBuffers.shared.give($0) } }
        let starts = Array(Swift.stride(from: 0, to: depth, by: slab))
        func slices(_ k: Int) -> Range<Int> { starts[k]..<min(depth, starts[k] + slab) }
        func input(_ k: Int) -> UnsafeMutablePointer<Float> { buffers[k % buffers.count].pointer }
        if fillingAhead, !starts.isEmpty { fillSlab(slices(0), depth: depth, plane: plane, fill: fill, into: input(0)) }
        for k in starts.indices {
            if fillingAhead {
                if k + 1 < starts.count { fillSlab(slices(k + 1), depth: depth, plane: plane, fill: fill, into: input(k + 1)) }
            } else {
                fillSlab(slices(k), depth: depth, plane: plane, fill: fill, into: input(k))
            }
            convolveSlab(input(k), slices: slices(k), height: height, width: width,
                         into: target + starts[k] * plane, channelStride: channelStride, adding: adding, threads: threads)
        }
    }

    /// Fills one slab's input: output slices `slices` with the slices either side, zero outside the volume.
    private func fillSlab(_ slices: Range<Int>, depth: Int, plane: Int, fill: (Range<Int>, UnsafeMutablePointer<Float>, Int) -> Void,
                          into input: UnsafeMutablePointer<Float>) {
        let z0 = slices.lowerBound, inStride = (slices.count + 2) * plane
        let lo = max(0, z0 - 1), hi = min(depth, slices.upperBound + 1)
        for c in 0..<inChannels {
            if lo == z0 { (input + c * inStride).update(repeating: 0, count: plane) }
            if hi == slices.upperBound { (input + c * inStride + (slices.count + 1) * plane).update(repeating: 0, count: plane) }
        }
        fill(lo..<hi, input + (lo - (z0 - 1)) * plane, inStride)
    }

    /// One slab's convolution from its filled input into `out` (bias added; `adding`: plus what `out` holds).
    private func convolveSlab(_ input: UnsafePointer<Float>, slices: Range<Int>, height: Int, width: Int,
                              into out: UnsafeMutablePointer<Float>, channelStride: Int, adding: Bool, threads: Int) {
        winogradWeight!.withUnsafeBufferPointer { u in
            (bias ?? []).withUnsafeBufferPointer { b in
                Winograd3D.convolve(Winograd3D.Shape(channels: inChannels, depth: slices.count + 2, height: height, width: width),
                                    src: input, transformedWeights: u.baseAddress!, variant: winogradVariant,
                                    bias: bias == nil ? nil : b.baseAddress, residual: adding ? UnsafePointer(out) : nil,
                                    outChannels: outChannels, pads: [0, 1, 1], out: out, od: slices.count, oh: height, ow: width,
                                    outChannelStride: channelStride, threads: threads)
            }
        }
    }

    /// The convolution of the `inChannels x depth x height x width` values at `source`, written
    /// over (or, `adding`, added to) the `outChannels` channels at `target`, straight into the
    /// target; when the two are the same buffer, each slab's input is copied before the slab
    /// below it is written.
    /// With `normalizing`, the source's values are normalised as they are copied into each slab
    /// (the convolution of the normalised tensor, which is never written). The copies are timed
    /// on `clock` when given.
    func slabwise(_ source: UnsafePointer<Float>, depth: Int, height: Int, width: Int,
                  into target: UnsafeMutablePointer<Float>, adding: Bool, normalizing: ChannelAffine? = nil,
                  threads: Int, clock: LayerClock? = nil) {
        let plane = height * width, n = depth * plane
        let from = UnsafeShared(source)
        func fill(_ slices: Range<Int>, _ scratch: UnsafeMutablePointer<Float>, _ channelStride: Int) {
            let s = UnsafeShared(scratch), count = slices.count * plane
            timed(clock, HDBETNetwork.LayerKind.slabCopies) {
                Self.perChannel(inChannels, threads: threads) { c in
                    let src = from.pointer + c * n + slices.lowerBound * plane
                    if let normalizing {
                        normalizing.apply(channel: c, from: src, to: s.pointer + c * channelStride, count: count)
                    } else {
                        (s.pointer + c * channelStride).update(from: src, count: count)
                    }
                }
            }
        }
        // over its own input (the same buffer): each slab's input is read before the slab above is written
        let sourceEnd = UnsafeRawPointer(source + inChannels * n), targetEnd = UnsafeRawPointer(target + outChannels * n)
        let overlapping = UnsafeRawPointer(source) < targetEnd && UnsafeRawPointer(target) < sourceEnd
        slabwise(depth: depth, height: height, width: width, threads: threads, fill: fill, into: target, channelStride: n,
                 adding: adding, fillingAhead: overlapping)
    }

    /// `body(c)` for every channel `c < channels`, spread over `threads` workers.
    static func perChannel(_ channels: Int, threads: Int, _ body: @Sendable (Int) -> Void) {
        ParallelSlices.forEach(channels, threads: threads, body)
    }

    /// Replaces `x` by the convolution of `x` (as many output as input channels), using no
    /// second full-size buffer; with `normalizing`, the convolution of `x` normalised (see
    /// ``slabwise(_:depth:height:width:into:adding:normalizing:threads:clock:)``).
    func applyInPlace(_ x: inout Tensor, normalizing: ChannelAffine? = nil, threads: Int, clock: LayerClock? = nil) {
        precondition(inChannels == outChannels && x.channels == inChannels, "in-place convolution needs \(inChannels) channels in and out")
        let (d, h, w) = (x.depth, x.height, x.width)
        x.data.withUnsafeMutableBufferPointer { p in
            slabwise(UnsafePointer(p.baseAddress!), depth: d, height: h, width: w, into: p.baseAddress!, adding: false,
                      normalizing: normalizing, threads: threads, clock: clock)
        }
    }
}
