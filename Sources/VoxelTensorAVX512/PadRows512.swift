import CStream

// The padded copy's row split for the AVX-512 kernels (called from VoxelTensor's
// `padVolumeInterleaved` when the CPU has AVX-512): rows split into 2 or 4 phases by column, 32
// input columns at a time with two-source shuffles. Tested against index arithmetic (PadTests).

/// Copies `rows` input rows of `width` floats (`srcRowStride` apart) into rows of the padded layout
/// with `phases` (2 or 4) W phases (`dstRowStride` apart, each `phases * phaseLength` floats): zeros,
/// then input column c at phase `(c + begin) % phases`, index `(c + begin) / phases`, 32 columns at a
/// time with two shuffles (`vx_split2x16`, `vx_split4x8`). Also prefetches the same rows
/// `prefetchOffset` floats further (0: none), as the padded copy does two channels ahead. Two phases
/// are the stride-1 Winograd kernel's source (and the direct engine's for stride 2), four the
/// stride-2 Winograd kernel's. Per row the generic copy took about 60 cycles for four phases, mostly a
/// memset call and AVX2 shuffles.
public func splitRows(_ src: UnsafePointer<Float>, srcRowStride: Int, rows: Int, width: Int, begin: Int,
                      phases: Int, into dst: UnsafeMutablePointer<Float>, dstRowStride: Int, phaseLength: Int,
                      prefetchOffset: Int) {
    precondition(phases == 2 || phases == 4, "splitRows: 2 or 4 phases")
    let rowLen = phases * phaseLength, shift = phases == 4 ? 2 : 1
    for r in 0..<rows {
        let s = src + r * srcRowStride, d = dst + r * dstRowStride
        if prefetchOffset != 0 {
            var l = 0
            while l < width { vx_prefetch(s + prefetchOffset + l); l += 16 }
            vx_prefetch(s + prefetchOffset + width - 1)
        }
        var z = 0
        while z + 16 <= rowLen { UnsafeMutableRawPointer(d + z).storeBytes(of: SIMD16<Float>(), as: SIMD16<Float>.self); z += 16 }
        while z < rowLen { d[z] = 0; z += 1 }
        @inline(__always) func at(_ c: Int) -> UnsafeMutablePointer<Float> {
            d + ((c + begin) & (phases - 1)) * phaseLength + (c + begin) >> shift
        }
        var c = 0
        while c + 32 <= width {
            if phases == 4 {
                vx_split4x8(s + c, at(c), at(c + 1), at(c + 2), at(c + 3))
            } else {
                vx_split2x16(s + c, at(c), at(c + 1))
            }
            c += 32
        }
        while c < width { at(c).pointee = s[c]; c += 1 }
    }
}
