import CLinux
import Foundation
import TileTransforms
#if canImport(TileTransformsAVX2)
import TileTransformsAVX2
#endif

/// Which build of the Winograd tile transforms runs: the module `TileTransforms` built for any
/// processor, or the same source files built for AVX2 (256-bit vectors: one instruction where
/// the portable build needs two). Both give the same floats bit for bit: each lane is computed
/// with the same additions and multiplies in the same order (Swift fuses none of them).
enum TileTransformCode: Sendable {
    case portable, avx2

    /// AVX2 where this processor and system support it (`dfc_cpu_has_avx2`) and
    /// `DEFACER_PORTABLE_VECTORS` is not set to 1; the portable build otherwise.
    static let preferred: TileTransformCode = {
        #if canImport(TileTransformsAVX2)
        if ProcessInfo.processInfo.environment["DEFACER_PORTABLE_VECTORS"] != "1" && dfc_cpu_has_avx2() == 1 { return .avx2 }
        #endif
        return .portable
    }()

    /// The builds this process can run (the AVX2 one only where the processor has it).
    static var runnable: [TileTransformCode] {
        #if canImport(TileTransformsAVX2)
        return dfc_cpu_has_avx2() == 1 ? [.portable, .avx2] : [.portable]
        #else
        return [.portable]
        #endif
    }

    /// `Bᵀ d B` for tiles `first ..< first+tiles` of the `output`-sized result: `v[e * block + ci * stride + t]`.
    func transformInput(_ variant: Winograd3D.Variant, _ x: Winograd3D.Shape, _ src: UnsafePointer<Float>, pads: [Int],
                        output: (depth: Int, height: Int, width: Int), first: Int, tiles: Int, stride: Int, block: Int,
                        into v: UnsafeMutablePointer<Float>) {
        let (c, d, h, w) = (x.channels, x.depth, x.height, x.width)
        switch (self, variant) {
        #if canImport(TileTransformsAVX2)
        case (.avx2, .f2):
            TileTransformsAVX2.WinogradF23.transformInput(channels: c, depth: d, height: h, width: w, src, pads: pads, output: output,
                                                          first: first, tiles: tiles, stride: stride, block: block, into: v)
        case (.avx2, .f4):
            TileTransformsAVX2.WinogradF43.transformInput(channels: c, depth: d, height: h, width: w, src, pads: pads, output: output,
                                                          first: first, tiles: tiles, stride: stride, block: block, into: v)
        #endif
        case (_, .f2):
            TileTransforms.WinogradF23.transformInput(channels: c, depth: d, height: h, width: w, src, pads: pads, output: output,
                                                      first: first, tiles: tiles, stride: stride, block: block, into: v)
        case (_, .f4):
            TileTransforms.WinogradF43.transformInput(channels: c, depth: d, height: h, width: w, src, pads: pads, output: output,
                                                      first: first, tiles: tiles, stride: stride, block: block, into: v)
        }
    }

    /// `Aᵀ m A`: products `m[e][co][t]` to output blocks, plus bias and residual; output channels
    /// `channelStride` values apart.
    func transformOutput(_ variant: Winograd3D.Variant, _ m: UnsafePointer<Float>, stride: Int, block: Int, channels: Int,
                         bias: UnsafePointer<Float>?, residual: UnsafePointer<Float>?, first: Int, tiles: Int,
                         into out: UnsafeMutablePointer<Float>, od: Int, oh: Int, ow: Int, channelStride: Int) {
        switch (self, variant) {
        #if canImport(TileTransformsAVX2)
        case (.avx2, .f2):
            TileTransformsAVX2.WinogradF23.transformOutput(m, stride: stride, block: block, channels: channels, bias: bias, residual: residual,
                                                           first: first, tiles: tiles, into: out, od: od, oh: oh, ow: ow,
                                                           channelStride: channelStride)
        case (.avx2, .f4):
            TileTransformsAVX2.WinogradF43.transformOutput(m, stride: stride, block: block, channels: channels, bias: bias, residual: residual,
                                                           first: first, tiles: tiles, into: out, od: od, oh: oh, ow: ow,
                                                           channelStride: channelStride)
        #endif
        case (_, .f2):
            TileTransforms.WinogradF23.transformOutput(m, stride: stride, block: block, channels: channels, bias: bias, residual: residual,
                                                       first: first, tiles: tiles, into: out, od: od, oh: oh, ow: ow,
                                                       channelStride: channelStride)
        case (_, .f4):
            TileTransforms.WinogradF43.transformOutput(m, stride: stride, block: block, channels: channels, bias: bias, residual: residual,
                                                       first: first, tiles: tiles, into: out, od: od, oh: oh, ow: ow,
                                                       channelStride: channelStride)
        }
    }
}
