import Testing
@testable import VoxelNN

@Suite struct HalfFloatTests {
    #if !(os(macOS) && arch(x86_64))
    /// Every one of the 65536 half-precision bit patterns converts exactly as the standard library's
    /// `Float16` does (NaNs compared by being NaN, since payload handling is not part of the contract).
    @Test func allHalfBitPatternsMatchFloat16() {
        var mismatches = 0
        for bits in 0...UInt16.max {
            let ours = floatFromHalfBits(bits), reference = Float(Float16(bitPattern: bits))
            let same = ours.isNaN ? reference.isNaN : ours.bitPattern == reference.bitPattern
            if !same { mismatches += 1 }
        }
        #expect(mismatches == 0)
    }
    #endif

    @Test(arguments: [
        (UInt16(0x0000), Float(0)), (0x8000, -0.0), (0x3C00, 1), (0xC000, -2), (0x7BFF, 65504),
        (0x0001, 0x1p-24), (0x03FF, 1023 * 0x1p-24), (0x0400, 0x1p-14), (0x7C00, .infinity), (0xFC00, -.infinity),
    ])
    func knownHalfValues(bits: UInt16, value: Float) {
        #expect(floatFromHalfBits(bits).bitPattern == value.bitPattern)
    }

    @Test func bfloat16IsTheTopHalfOfFloat32() {
        for v: Float in [1.5, -3, 0.15625, .infinity, -0.0] {
            #expect(floatFromBFloat16Bits(UInt16(v.bitPattern >> 16)).bitPattern == v.bitPattern)
        }
        #expect(floatFromBFloat16Bits(0x7FC0).isNaN)
    }
}
