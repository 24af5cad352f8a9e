/// Stride-1 3x3x3 Winograd convolutions (padding 1) computed a slab of output slices at a time,
/// so that a full-size input need not exist (an upsampling can fill each slab) and the output
/// may overwrite its own input: a slab's output is written only after the next slab's input
/// has been read. Scratch memory is a few slices of input and output, whatever the volume.
/// Every output voxel comes from the same Winograd tile as in the whole-volume convolution.
extension Conv3D {
    /// Output slices per slab (a multiple of every Winograd tile side, so tiles line up with the whole-volume tiling).
    static let slabDepth = 8

    /// Whether ``slabwise(depth:height:width:threads:fill:write:)`` can run this convolution.
    var runsBySlabs: Bool { usesWinograd && paddings == [1, 1, 1] }

    /// The convolution of an `inChannels x depth x height x width` input that `fill` provides:
    /// `fill(slices, to, channelStride)` writes input slices `slices` (along depth) of every
    /// channel `c` at `to + c * channelStride + (z - slices.lowerBound) * height * width`.
    /// `write(slices, from, channelStride)` receives the output slices (bias added) in the same
    /// layout; a slab is written after the next slab has been filled, so the output may
    /// overwrite the values `fill` reads.
    func slabwise(depth: Int, height: Int, width: Int, threads: Int,
                  fill: (Range<Int>, UnsafeMutablePointer<Float>, Int) -> Void,
                  write: (Range<Int>, UnsafePointer<Float>, Int) -> Void) {
        let plane = height * width
        let outputBuffer = ScratchBuffers.shared.take(outChannels * Self.slabDepth * plane)
        defer { ScratchBuffers.shared.give(outputBuffer) }
        let output = outputBuffer.pointer
        var pending: (slices: Range<Int>, stride: Int)?
        eachSlab(depth: depth, height: height, width: width, fill: fill) { slices, input in
            if let p = pending { write(p.slices, output, p.stride) }
            convolveSlab(input, slices: slices, height: height, width: width, into: output, channelStride: slices.count * plane,
                         adding: false, threads: threads)
            pending = (slices, slices.count * plane)
        }
        if let p = pending { write(p.slices, output, p.stride) }
    }

    /// The same convolution written straight into `target` (`outChannels` channels of
    /// `channelStride` values, `depth x height x width` each), or added to what is there;
    /// `fill` must not read `target`.
    func slabwise(depth: Int, height: Int, width: Int, threads: Int,
                  fill: (Range<Int>, UnsafeMutablePointer<Float>, Int) -> Void,
                  into target: UnsafeMutablePointer<Float>, channelStride: Int, adding: Bool) {
        eachSlab(depth: depth, height: height, width: width, fill: fill) { slices, input in
            convolveSlab(input, slices: slices, height: height, width: width, into: target + slices.lowerBound * height * width,
                         channelStride: channelStride, adding: adding, threads: threads)
        }
    }

    /// Fills each slab's input (with the slices either side, zero outside the volume) and
    /// hands it to `body` with the slab's output slices.
    private func eachSlab(depth: Int, height: Int, width: Int, fill: (Range<Int>, UnsafeMutablePointer<Float>, Int) -> Void,
                          _ body: (Range<Int>, UnsafePointer<Float>) -> Void) {
        precondition(runsBySlabs, "slab convolution needs a stride-1 3x3x3 Winograd layer with padding 1")
        EngineThreads.useSingleThreadedBLAS()
        let plane = height * width, slab = Self.slabDepth
        let inputBuffer = ScratchBuffers.shared.take(inChannels * (slab + 2) * plane)
        defer { ScratchBuffers.shared.give(inputBuffer) }
        let input = inputBuffer.pointer
        for z0 in Swift.stride(from: 0, to: depth, by: slab) {
            let slices = z0..<min(depth, z0 + slab)
            // input slices z0-1 ..< end+1, zero outside the volume
            let inStride = (slices.count + 2) * plane
            let lo = max(0, z0 - 1), hi = min(depth, slices.upperBound + 1)
            for c in 0..<inChannels {
                if lo == z0 { (input + c * inStride).update(repeating: 0, count: plane) }
                if hi == slices.upperBound { (input + c * inStride + (slices.count + 1) * plane).update(repeating: 0, count: plane) }
            }
            fill(lo..<hi, input + (lo - (z0 - 1)) * plane, inStride)
            body(slices, UnsafePointer(input))
        }
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
    /// over (or, `adding`, added to) the `outChannels` channels at `target`: straight into the
    /// target when the two are separate, through an output slab when they are the same buffer.
    /// With `normalizing`, the source's values are normalised as they are copied into each slab
    /// (the convolution of the normalised tensor, which is never written). The copies are timed
    /// on `clock` when given.
    func slabwise(_ source: UnsafePointer<Float>, depth: Int, height: Int, width: Int,
                  into target: UnsafeMutablePointer<Float>, adding: Bool, normalizing: ChannelAffine? = nil,
                  threads: Int, clock: LayerClock? = nil) {
        let plane = height * width, n = depth * plane
        let from = UnsafeShared(source), to = UnsafeShared(target)
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
        let sourceEnd = UnsafeRawPointer(source + inChannels * n), targetEnd = UnsafeRawPointer(target + outChannels * n)
        guard UnsafeRawPointer(source) < targetEnd && UnsafeRawPointer(target) < sourceEnd else {
            slabwise(depth: depth, height: height, width: width, threads: threads, fill: fill, into: target, channelStride: n, adding: adding)
            return
        }
        slabwise(depth: depth, height: height, width: width, threads: threads, fill: fill,
                 write: { slices, output, channelStride in
                     let s = UnsafeShared(output), count = slices.count * plane
                     timed(clock, HDBETNetwork.LayerKind.slabCopies) {
                         Self.perChannel(outChannels, threads: threads) { c in
                             let dst = to.pointer + c * n + slices.lowerBound * plane, src = s.pointer + c * channelStride
                             if adding {
                                 for i in 0..<count { dst[i] += src[i] }
                             } else {
                                 dst.update(from: src, count: count)
                             }
                         }
                     }
                 })
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
