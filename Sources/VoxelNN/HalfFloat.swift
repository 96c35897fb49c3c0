// Conversions from 16-bit float formats to Float32, used by the ONNX and safetensors readers.
// Written by hand because `Float16` is unavailable on macOS x86_64; both conversions are exact.

/// The Float32 value of IEEE 754 binary16 bits (half precision), exactly, including subnormals,
/// infinities and NaNs (NaN payloads are kept in the top mantissa bits).
@inlinable func floatFromHalfBits(_ h: UInt16) -> Float {
    let sign = UInt32(h & 0x8000) << 16
    let exponent = UInt32(h >> 10) & 0x1F
    let mantissa = UInt32(h & 0x3FF)
    switch exponent {
    case 0:
        // Zero or subnormal: mantissa * 2^-24, exact in Float32.
        let magnitude = Float(mantissa) * 0x1p-24
        return sign == 0 ? magnitude : -magnitude
    case 0x1F:
        return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
    default:
        return Float(bitPattern: sign | ((exponent + 112) << 23) | (mantissa << 13))
    }
}

/// The Float32 value of bfloat16 bits (the top half of a Float32), exactly.
@inlinable func floatFromBFloat16Bits(_ b: UInt16) -> Float {
    Float(bitPattern: UInt32(b) << 16)
}
