import VoxelTensor

// Decoding of TensorProto: dims, element type, and data from raw_data (one copy) or the typed fields.
//
// Where each element type keeps its values when not in raw_data (onnx.proto3):
//   FLOAT -> float_data; DOUBLE -> double_data; INT64 -> int64_data; UINT32 -> uint64_data;
//   INT32, INT16, INT8, UINT16, UINT8, BOOL, FLOAT16 and BFLOAT16 (as bit patterns) -> int32_data.

extension ONNXDecoder {
    /// The element count of `dims`, throwing on negative extents or an overflowing product.
    func elementCount(_ dims: [Int64], role: String, name: String) throws -> Int {
        var count = 1
        for d in dims {
            guard d >= 0, d <= Int64(Int.max) else {
                throw error(.invalid, "\(role) '\(name)' has a negative dimension in dims \(dims)")
            }
            let (p, overflow) = count.multipliedReportingOverflow(by: Int(d))
            guard !overflow else { throw error(.invalid, "\(role) '\(name)' has dims \(dims) whose product overflows") }
            count = p
        }
        return count
    }

    /// Decodes a TensorProto; `role` says where it sits (`initializer`, `tensor of node ... attribute ...`).
    func tensor(_ reader: ProtobufReader, role: String) throws -> ONNXTensor {
        var r = reader
        var dims: [Int64] = [], name = "", doc = ""
        var dataType: Int32 = 0
        var floatData: [UInt32] = [], doubleData: [UInt64] = [], uint64Data: [UInt64] = []
        var int32Data: [Int64] = [], int64Data: [Int64] = []
        var raw: Range<Int>?
        var external = false, hasStrings = false
        let m = "TensorProto"
        while let (field, wire) = try r.nextField() {
            switch field {
            case 1: try r.appendVarints(wire, field: field, to: &dims)
            case 2: try r.expect(wire, .varint, field: field, in: m); dataType = Int32(truncatingIfNeeded: try r.readVarint())
            case 4: try r.appendFixed32s(wire, field: field, to: &floatData)
            case 5: try r.appendVarints(wire, field: field, to: &int32Data)
            case 6: hasStrings = true; try r.skip(wire, field: field)
            case 7: try r.appendVarints(wire, field: field, to: &int64Data)
            case 8: try r.expect(wire, .lengthDelimited, field: field, in: m); name = try r.readString()
            case 9: try r.expect(wire, .lengthDelimited, field: field, in: m); raw = try r.readLengthDelimited()
            case 10: try r.appendFixed64s(wire, field: field, to: &doubleData)
            case 11:
                var values: [Int64] = []
                try r.appendVarints(wire, field: field, to: &values)
                uint64Data.append(contentsOf: values.map { UInt64(bitPattern: $0) })
            case 12: try r.expect(wire, .lengthDelimited, field: field, in: m); doc = try r.readString()
            case 13: external = true; try r.skip(wire, field: field)
            case 14:
                try r.expect(wire, .varint, field: field, in: m)
                if try r.readVarint() == 1 { external = true }
            default: try r.skip(wire, field: field)
            }
        }
        if external {
            throw error(.externalData, "\(role) '\(name)' stores its data in an external file; re-export with all tensors"
                        + " inside the model (onnx.save(..., save_as_external_data=False))")
        }
        let type = ONNXDataType(rawValue: dataType)
        guard ONNXDataType.supported.contains(type), let size = type.byteSize else {
            throw error(.unsupportedDataType, "\(role) '\(name)' has element type \(type), which Voxplain does not read"
                        + " (supported: \(ONNXDataType.supported.map(\.description).joined(separator: ", ")))")
        }
        _ = hasStrings  // string_data only matters for STRING tensors, which are rejected above.
        let count = try elementCount(dims, role: role, name: name)
        let shape = dims.map { Int($0) }

        if let raw {
            let (bytes, overflow) = count.multipliedReportingOverflow(by: size)
            guard !overflow, raw.count == bytes else {
                throw error(.invalid, "\(role) '\(name)' has \(raw.count) bytes of raw_data, but dims \(shape) of \(type)"
                            + " need \(overflow ? "more than Int.max" : "\(bytes)")")
            }
            let src = UnsafeRawBufferPointer(rebasing: buffer[raw])
            return try fromRaw(src, type: type, shape: shape, count: count, name: name, doc: doc)
        }

        // Typed fields.
        func mismatch(_ n: Int, _ field: String) -> ModelError {
            error(.invalid, "\(role) '\(name)' has \(n) values in \(field), but dims \(shape) need \(count)")
        }
        switch type {
        case .float:
            guard floatData.count == count else { throw mismatch(floatData.count, "float_data") }
            return ONNXTensor(name: name, dataType: type,
                              value: try Tensor(shape: shape, scalars: floatData.map { Float(bitPattern: $0) }),
                              integers: nil, docString: doc)
        case .double:
            guard doubleData.count == count else { throw mismatch(doubleData.count, "double_data") }
            return ONNXTensor(name: name, dataType: type,
                              value: try Tensor(shape: shape, scalars: doubleData.map { Float(Double(bitPattern: $0)) }),
                              integers: nil, docString: doc)
        case .float16, .bfloat16:
            guard int32Data.count == count else { throw mismatch(int32Data.count, "int32_data") }
            let half = type == .float16
            let values = int32Data.map { v -> Float in
                let bits = UInt16(truncatingIfNeeded: v)
                return half ? floatFromHalfBits(bits) : floatFromBFloat16Bits(bits)
            }
            return ONNXTensor(name: name, dataType: type, value: try Tensor(shape: shape, scalars: values),
                              integers: nil, docString: doc)
        case .int64:
            guard int64Data.count == count else { throw mismatch(int64Data.count, "int64_data") }
            return try integerTensor(int64Data, type: type, shape: shape, name: name, doc: doc)
        case .uint32:
            guard uint64Data.count == count else { throw mismatch(uint64Data.count, "uint64_data") }
            return try integerTensor(uint64Data.map { Int64(UInt32(truncatingIfNeeded: $0)) },
                                     type: type, shape: shape, name: name, doc: doc)
        default:  // INT32, INT16, INT8, UINT16, UINT8, BOOL in int32_data.
            guard int32Data.count == count else { throw mismatch(int32Data.count, "int32_data") }
            let values: [Int64] = int32Data.map { v in
                switch type {
                case .int16: Int64(Int16(truncatingIfNeeded: v))
                case .int8: Int64(Int8(truncatingIfNeeded: v))
                case .uint16: Int64(UInt16(truncatingIfNeeded: v))
                case .uint8: Int64(UInt8(truncatingIfNeeded: v))
                case .bool: v != 0 ? 1 : 0
                default: Int64(Int32(truncatingIfNeeded: v))
                }
            }
            return try integerTensor(values, type: type, shape: shape, name: name, doc: doc)
        }
    }

    private func integerTensor(_ values: [Int64], type: ONNXDataType, shape: [Int], name: String,
                               doc: String) throws -> ONNXTensor {
        ONNXTensor(name: name, dataType: type, value: try Tensor(shape: shape, scalars: values.map { Float($0) }),
                   integers: values, docString: doc)
    }

    /// Converts `count` little-endian elements of `type` in `src` (exactly `count * byteSize` bytes).
    private func fromRaw(_ src: UnsafeRawBufferPointer, type: ONNXDataType, shape: [Int], count: Int,
                         name: String, doc: String) throws -> ONNXTensor {
        func floats(_ convert: (Int) -> Float) -> Tensor {
            Tensor(shape: shape) { dst in for i in 0..<count { dst[i] = convert(i) } }
        }
        func load<T: FixedWidthInteger>(_ i: Int, _: T.Type) -> T {
            T(littleEndian: src.loadUnaligned(fromByteOffset: i * MemoryLayout<T>.size, as: T.self))
        }
        switch type {
        case .float:
            // The hot path for large weights: one copy from the file's bytes into the tensor.
            let value = Tensor(shape: shape) { dst in
                copyLittleEndian(from: src, to: UnsafeMutableRawBufferPointer(dst), as: UInt32.self)
            }
            return ONNXTensor(name: name, dataType: type, value: value, integers: nil, docString: doc)
        case .double:
            return ONNXTensor(name: name, dataType: type, value: floats { Float(Double(bitPattern: load($0, UInt64.self))) },
                              integers: nil, docString: doc)
        case .float16:
            return ONNXTensor(name: name, dataType: type, value: floats { floatFromHalfBits(load($0, UInt16.self)) },
                              integers: nil, docString: doc)
        case .bfloat16:
            return ONNXTensor(name: name, dataType: type, value: floats { floatFromBFloat16Bits(load($0, UInt16.self)) },
                              integers: nil, docString: doc)
        default:
            let values: [Int64] = (0..<count).map { i in
                switch type {
                case .int64: load(i, Int64.self)
                case .int32: Int64(load(i, Int32.self))
                case .uint32: Int64(load(i, UInt32.self))
                case .int16: Int64(load(i, Int16.self))
                case .uint16: Int64(load(i, UInt16.self))
                case .int8: Int64(load(i, Int8.self))
                case .bool: load(i, UInt8.self) != 0 ? 1 : 0
                default: Int64(load(i, UInt8.self))  // UINT8
                }
            }
            return try integerTensor(values, type: type, shape: shape, name: name, doc: doc)
        }
    }
}
