import Testing
@testable import VoxelNN

/// Runs `body` with a reader over `bytes`.
private func read<T>(_ bytes: [UInt8], _ body: (inout ProtobufReader) throws -> T) throws -> T {
    try bytes.withUnsafeBytes { raw in
        var r = ProtobufReader(raw)
        return try body(&r)
    }
}

@Suite struct ProtobufTests {
    @Test(arguments: [UInt64(0), 1, 127, 128, 300, 16_383, 16_384, UInt64(UInt32.max), UInt64(Int64.max), UInt64.max])
    func varintRoundTrip(value: UInt64) throws {
        var w = ProtobufWriter()
        w.varint(value)
        let decoded = try read(w.bytes) { r in try r.readVarint() }
        #expect(decoded == value)
        // Every strict prefix is a truncated varint.
        for n in 0..<w.bytes.count {
            #expect(throws: ProtobufError.self) { try read(Array(w.bytes.prefix(n))) { r in try r.readVarint() } }
        }
    }

    @Test func varintLongerThanTenBytesThrows() {
        let eleven: [UInt8] = Array(repeating: 0x80, count: 10) + [0x00]
        #expect(throws: ProtobufError.self) { try read(eleven) { r in try r.readVarint() } }
        // Ten bytes whose last carries bits above 2^64.
        let overflow: [UInt8] = Array(repeating: 0xFF, count: 9) + [0x02]
        #expect(throws: ProtobufError.self) { try read(overflow) { r in try r.readVarint() } }
    }

    @Test func lengthBeyondBufferAndNegativeLengthThrow() {
        var w = ProtobufWriter()
        w.varint(5)
        w.bytes += [1, 2, 3]  // 3 of 5 promised bytes
        #expect(throws: ProtobufError.self) { try read(w.bytes) { r in try r.readLengthDelimited() } }
        var neg = ProtobufWriter()
        neg.varint(UInt64(bitPattern: -1))  // a negative length as a 10-byte varint
        neg.bytes += [0, 0, 0]
        #expect(throws: ProtobufError.self) { try read(neg.bytes) { r in try r.readLengthDelimited() } }
        var huge = ProtobufWriter()
        huge.varint(UInt64(Int.max))
        #expect(throws: ProtobufError.self) { try read(huge.bytes) { r in try r.readLengthDelimited() } }
    }

    @Test func fixedWidthFieldsAreLittleEndianAndBoundsChecked() throws {
        let bytes: [UInt8] = [0x78, 0x56, 0x34, 0x12, 0xEF, 0xCD, 0xAB, 0x90, 0x01]
        #expect(try read(bytes) { r in try r.readFixed32() } == 0x1234_5678)
        #expect(try read(bytes) { r in try r.readFixed64() } == 0x90AB_CDEF_1234_5678)
        #expect(throws: ProtobufError.self) { try read(Array(bytes.prefix(3))) { r in try r.readFixed32() } }
        #expect(throws: ProtobufError.self) { try read(Array(bytes.prefix(7))) { r in try r.readFixed64() } }
    }

    @Test func tagsRejectFieldZeroAndUnknownWireTypes() {
        #expect(throws: ProtobufError.self) { try read([0x00]) { r in try r.nextField() } }  // field 0
        #expect(throws: ProtobufError.self) { try read([0x0E]) { r in try r.nextField() } }  // wire type 6
        #expect(throws: ProtobufError.self) { try read([0x0F]) { r in try r.nextField() } }  // wire type 7
        // A tag above 32 bits.
        var w = ProtobufWriter()
        w.varint(UInt64(1) << 40)
        #expect(throws: ProtobufError.self) { try read(w.bytes) { r in try r.nextField() } }
    }

    @Test func packedAndUnpackedRepeatedFieldsDecodeTheSame() throws {
        let values: [Int64] = [0, 1, -1, 300, Int64.max, Int64.min]
        var packed = ProtobufWriter()
        packed.packedVarints(3, values)
        var unpacked = ProtobufWriter()
        for v in values { unpacked.int(3, v) }
        // Mixed: a packed run then unpacked values, which a parser must concatenate.
        var mixed = ProtobufWriter()
        mixed.packedVarints(3, Array(values.prefix(2)))
        for v in values.dropFirst(2) { mixed.int(3, v) }
        for bytes in [packed.bytes, unpacked.bytes, mixed.bytes] {
            let decoded = try read(bytes) { r -> [Int64] in
                var out: [Int64] = []
                while let (field, wire) = try r.nextField() {
                    #expect(field == 3)
                    try r.appendVarints(wire, field: field, to: &out)
                }
                return out
            }
            #expect(decoded == values)
        }
        let floats: [Float] = [1.5, -0.0, .infinity, Float(bitPattern: 0x0020_0000)]  // the last is subnormal
        var pf = ProtobufWriter()
        pf.packedFloats(4, floats)
        var uf = ProtobufWriter()
        for f in floats { uf.float(4, f) }
        for bytes in [pf.bytes, uf.bytes] {
            let decoded = try read(bytes) { r -> [UInt32] in
                var out: [UInt32] = []
                while let (field, wire) = try r.nextField() { try r.appendFixed32s(wire, field: field, to: &out) }
                return out
            }
            #expect(decoded == floats.map(\.bitPattern))
        }
        // A packed 32-bit run whose length is not a multiple of 4.
        var bad = ProtobufWriter()
        bad.data(4, [1, 2, 3, 4, 5])
        #expect(throws: ProtobufError.self) {
            try read(bad.bytes) { r in
                var out: [UInt32] = []
                while let (field, wire) = try r.nextField() { try r.appendFixed32s(wire, field: field, to: &out) }
            }
        }
    }

    @Test func skipsEveryWireTypeIncludingNestedGroups() throws {
        var w = ProtobufWriter()
        w.int(100, 12_345)
        w.fixed64(101, 7)
        w.fixed32(102, 9)
        w.string(103, "unknown")
        w.tag(104, 3)  // start group 104
        w.int(1, 5)
        w.tag(105, 3)  // nested group 105
        w.string(2, "x")
        w.tag(105, 4)
        w.tag(104, 4)  // end group 104
        w.int(1, 42)  // the field we want
        let value = try read(w.bytes) { r -> Int64? in
            var found: Int64?
            while let (field, wire) = try r.nextField() {
                if field == 1 { found = Int64(bitPattern: try r.readVarint()) } else { try r.skip(wire, field: field) }
            }
            return found
        }
        #expect(value == 42)
    }

    @Test func malformedGroupsThrow() {
        var mismatched = ProtobufWriter()
        mismatched.tag(7, 3)
        mismatched.tag(8, 4)  // closes the wrong group
        var unclosed = ProtobufWriter()
        unclosed.tag(7, 3)
        unclosed.int(1, 1)
        var stray = ProtobufWriter()
        stray.tag(7, 4)
        var deep = ProtobufWriter()
        for _ in 0..<100 { deep.tag(7, 3) }
        for bytes in [mismatched.bytes, unclosed.bytes, stray.bytes, deep.bytes] {
            #expect(throws: ProtobufError.self) {
                try read(bytes) { r in
                    while let (field, wire) = try r.nextField() { try r.skip(wire, field: field) }
                }
            }
        }
    }
}
