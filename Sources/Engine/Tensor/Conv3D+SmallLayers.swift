/// The two convolutions whose shapes make matrix products a poor fit: a 3x3x3 filter bank on
/// one input channel (HD-BET's first layer: 27 multiplies per output, as a stencil) and a
/// 1x1x1 layer to a few classes with the softmax over them (the last layer), both in one pass
/// over memory on every worker.
extension Conv3D {
    /// The convolution of a one-channel input as a direct 3x3x3 stencil (stride 1, padding 1),
    /// 16 output voxels at a time; nil for any other shape. The output's buffer has room for
    /// `reservingChannels` channels, so that channels appended later need not move it.
    func stencil(_ x: Tensor, threads: Int, reservingChannels: Int = 0) -> Tensor? {
        guard inChannels == 1, x.channels == 1, kernelSize == [3, 3, 3], strides == [1, 1, 1], paddings == [1, 1, 1] else { return nil }
        let (d, h, w) = (x.depth, x.height, x.width), plane = h * w, n = d * plane
        let outs = outChannels, lanes = 16
        // each row copied with one zero on the left and enough on the right for whole vectors
        let rowStride = (w + lanes - 1) / lanes * lanes + lanes
        var out = [Float](unsafeUninitializedCapacity: max(outs, reservingChannels) * n) { buffer, count in
            FreshMemory.populate(buffer.baseAddress!, bytes: outs * n * MemoryLayout<Float>.stride, threads: threads)
            count = outs * n
        }
        let bias = self.bias ?? [Float](repeating: 0, count: outs)
        x.data.withUnsafeBufferPointer { srcBuf in
            out.withUnsafeMutableBufferPointer { dstBuf in
                weight.withUnsafeBufferPointer { weightBuf in
                    let src = UnsafeShared(srcBuf.baseAddress!), dst = UnsafeShared(dstBuf.baseAddress!)
                    let weights = UnsafeShared(weightBuf.baseAddress!)
                    Self.perChannel(d, threads: threads) { z in
                        let rows = UnsafeMutablePointer<Float>.allocate(capacity: 9 * rowStride)
                        defer { rows.deallocate() }
                        rows.initialize(repeating: 0, count: 9 * rowStride)
                        for y in 0..<h {
                            for tap in 0..<9 {
                                let iz = z + tap / 3 - 1, iy = y + tap % 3 - 1, row = rows + tap * rowStride + 1
                                if iz < 0 || iz >= d || iy < 0 || iy >= h {
                                    row.update(repeating: 0, count: w)
                                } else {
                                    row.update(from: src.pointer + iz * plane + iy * w, count: w)
                                }
                            }
                            for x0 in Swift.stride(from: 0, to: w, by: lanes) {
                                let taps = UnsafeRawPointer(rows + x0), count = min(lanes, w - x0)
                                for o in 0..<outs {
                                    let filter = weights.pointer + o * 27
                                    var sum = SIMD16<Float>(repeating: bias[o])
                                    for row in 0..<9 {
                                        let r = taps + row * rowStride * 4, f = filter + row * 3
                                        sum += r.loadUnaligned(as: SIMD16<Float>.self) * f[0]
                                        sum += r.loadUnaligned(fromByteOffset: 4, as: SIMD16<Float>.self) * f[1]
                                        sum += r.loadUnaligned(fromByteOffset: 8, as: SIMD16<Float>.self) * f[2]
                                    }
                                    let target = dst.pointer + o * n + z * plane + y * w + x0
                                    if count == lanes {
                                        UnsafeMutableRawPointer(target).storeBytes(of: sum, as: SIMD16<Float>.self)
                                    } else {
                                        for i in 0..<count { target[i] = sum[i] }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return Tensor(channels: outs, depth: d, height: h, width: w, data: out)
    }

    /// The softmax over output channels of this 1x1x1 convolution (no bias) of `x`, or of `x`
    /// normalised by `normalizing` (applied block by block, so the normalised tensor is never
    /// written), in blocks of voxels that stay in cache between the product and the softmax.
    func softmaxOfProduct(_ x: Tensor, normalizing: ChannelAffine? = nil, threads: Int) -> Tensor {
        precondition(kernelSize == [1, 1, 1] && strides == [1, 1, 1] && x.channels == inChannels, "softmaxOfProduct needs a 1x1x1 layer")
        let n = x.spatialCount, classes = outChannels, channels = inChannels, block = 2048
        var out = FreshMemory.floats(classes * n, threads: threads)
        let weight = self.weight, bias = self.bias ?? [Float](repeating: 0, count: classes)
        x.data.withUnsafeBufferPointer { srcBuf in
            out.withUnsafeMutableBufferPointer { dstBuf in
                let src = UnsafeShared(srcBuf.baseAddress!), dst = UnsafeShared(dstBuf.baseAddress!)
                Self.perChannel((n + block - 1) / block, threads: threads) { b in
                    let i0 = b * block, count = min(block, n - i0)
                    let normalised = normalizing.map { _ in ScratchBuffers.shared.take(channels * block) }
                    defer { normalised.map { ScratchBuffers.shared.give($0) } }
                    if let normalizing, let normalised {
                        for c in 0..<channels {
                            normalizing.apply(channel: c, from: src.pointer + c * n + i0, to: normalised.pointer + c * block, count: count)
                        }
                    }
                    for k in 0..<classes {
                        let logits = dst.pointer + k * n + i0
                        logits.update(repeating: bias[k], count: count)
                        for c in 0..<channels {
                            let input = UnsafePointer(normalised.map { $0.pointer + c * block } ?? src.pointer + c * n + i0)
                            let wkc = weight[k * channels + c]
                            for i in 0..<count { logits[i] += wkc * input[i] }
                        }
                    }
                    TensorOps.softmax(dst.pointer, channels: classes, channelStride: n, voxels: i0..<(i0 + count))
                }
            }
        }
        return Tensor(channels: classes, depth: x.depth, height: x.height, width: x.width, data: out)
    }
}
