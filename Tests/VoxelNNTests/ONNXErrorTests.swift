import Foundation
import Testing
import VoxelNN
import _TestSupport

/// The ModelError thrown by `body`, or nil (recorded as an issue) when it succeeds or throws another type.
func modelError(_ body: () throws -> Void) -> ModelError? {
    do {
        try body()
        Issue.record("expected a ModelError, but no error was thrown")
    } catch let e as ModelError {
        return e
    } catch {
        Issue.record("expected a ModelError, got \(type(of: error)): \(error)")
    }
    return nil
}

@Suite struct ONNXErrorTests {
    static let errorFiles: [String] = {
        (try? FactsFile.load().errors.keys.sorted()) ?? []
    }()

    /// Each rejected fixture raises its kind of error, on one line starting with the file name.
    @Test(arguments: errorFiles)
    func fixtureIsRejected(file: String) throws {
        let kind = try #require(try FactsFile.load().errors[file])
        let url = fixturesDirectory.appendingPathComponent("onnx/\(file)")
        let e = modelError {
            let model = try ONNXModel(contentsOf: url)
            try model.validateOperators()
        }
        #expect(e?.kind.rawValue == kind, "\(file): \(String(describing: e))")
        #expect(e?.description.hasPrefix("\(file): ") == true)
        #expect(e?.description.contains("\n") == false)
    }

    @Test func errorMessagesNameTheProblem() throws {
        // Guards the parameterised test above, which would run no cases if facts.json lost its list.
        #expect(ONNXErrorTests.errorFiles.count == 8)
        func message(_ file: String) -> String {
            modelError {
                try ONNXModel(contentsOf: fixturesDirectory.appendingPathComponent("onnx/\(file)")).validateOperators()
            }?.description ?? ""
        }
        #expect(message("error_external_data.onnx") == "error_external_data.onnx: initializer 'w' stores its data in an"
                + " external file; re-export with all tensors inside the model (onnx.save(..., save_as_external_data=False))")
        #expect(message("error_opset9.onnx").contains("opset 9 is not supported (supported: 11...21)"))
        #expect(message("error_opset22.onnx").contains("opset 22"))
        #expect(message("error_custom_domain.onnx").contains("'fused0' (FusedConv)")
                && message("error_custom_domain.onnx").contains("'com.microsoft'"))
        #expect(message("error_string_tensor.onnx").contains("'labels' has element type STRING"))
        #expect(message("error_complex_tensor.onnx").contains("COMPLEX64"))
        #expect(message("error_if_subgraph.onnx").contains("'if0' (If)"))
        let lstm = message("unsupported_lstm.onnx")
        #expect(lstm.contains("node 'lstm0' uses operator LSTM"))
        #expect(lstm.contains("Conv, BatchNormalization") && lstm.contains("ConstantOfShape, Range"))
    }

    @Test func unsupportedOperatorDecodesButFailsValidation() throws {
        let model = try ONNXModel(contentsOf: fixturesDirectory.appendingPathComponent("onnx/unsupported_lstm.onnx"))
        #expect(model.graph.nodes.map(\.opType) == ["LSTM"])
        let e = modelError { try model.validateOperators() }
        #expect(e?.kind == .unsupportedOperator)
    }

    @Test func missingFileAndNonONNXBytesAreClearErrors() {
        let missing = modelError { _ = try ONNXModel(contentsOf: URL(fileURLWithPath: "/nonexistent/model.onnx")) }
        #expect(missing?.kind == .io && missing?.description == "model.onnx: cannot read the file (no such file)")
        let text = Array("just some text, not a model\n".utf8)
        let e = modelError { _ = try ONNXModel(bytes: text, fileName: "notes.txt") }
        #expect(e?.kind == .corrupt && e?.description.hasPrefix("notes.txt: ") == true)
        let zip = modelError { _ = try ONNXModel(bytes: [0x50, 0x4B, 3, 4, 20, 0, 0, 0], fileName: "model.pt") }
        #expect(zip?.description.contains("zip archive (a PyTorch .pt/.pth checkpoint?)") == true)
        let empty = modelError { _ = try ONNXModel(bytes: [], fileName: "empty.onnx") }
        #expect(empty?.description == "empty.onnx: not an ONNX model: no graph found (is this an ONNX file?)")
    }

    /// A file cut short says so; a corrupt embedded length inside an intact file does not.
    @Test func truncatedFilesAreToldApartFromCorruptOnes() throws {
        let original = [UInt8](try Data(contentsOf: fixturesDirectory.appendingPathComponent("onnx/cnn3d_opset17.onnx")))
        for cut in [1, 100, original.count / 2, original.count - 1] {
            let e = modelError { _ = try ONNXModel(bytes: Array(original.prefix(cut)), fileName: "cut.onnx") }
            #expect(e?.kind == .corrupt)
            #expect(e?.description.hasPrefix("cut.onnx: the file is truncated (\(cut) bytes;") == true,
                    "\(String(describing: e))")
        }
        // A node whose inner attribute length overruns the node but not the file.
        var node = ProtobufWriter()
        node.string(4, "Relu")
        node.tag(5, 2); node.varint(50)  // attribute claims 50 bytes; the node has 2 left
        node.bytes += [0, 0]
        var graph = ProtobufWriter()
        graph.data(1, node.bytes)
        graph.string(2, "g")
        var model = ProtobufWriter()
        model.data(7, graph.bytes)
        model.string(2, "a producer name, so the graph does not end where the file ends")
        let e = modelError { _ = try ONNXModel(bytes: model.bytes, fileName: "bad.onnx") }
        #expect(e?.description.hasPrefix("bad.onnx: not an ONNX model, or a corrupt one: malformed protobuf") == true,
                "\(String(describing: e))")
    }

    // MARK: Hand-built encodings the Python package does not write

    /// Unpacked dims and float_data, and an attribute without its `type` field (older exporters)
    /// decode like their packed, typed equivalents.
    @Test func unpackedFieldsAndUntypedAttributes() throws {
        let bytes = ONNXBuilder.model { g in
            ONNXBuilder.node(&g, op: "MaxPool", name: "pool", inputs: ["x"], outputs: ["y"]) { n in
                n.message(5) { a in  // kernel_shape as unpacked ints, no type field
                    a.string(1, "kernel_shape")
                    a.int(8, 2); a.int(8, 2); a.int(8, 2)
                }
                n.message(5) { a in  // a float without type field
                    a.string(1, "alpha")
                    a.float(2, 0.5)
                }
            }
            g.message(5) { t in  // initializer with unpacked dims and float_data
                t.int(1, 2); t.int(1, 1)
                t.int(2, 1)
                t.float(4, 1.5); t.float(4, -2)
                t.string(8, "w")
            }
            g.string(2, "g")
        }
        let model = try ONNXModel(bytes: bytes, fileName: "built.onnx")
        let node = try #require(model.graph.nodes.first)
        guard case .ints(let k)? = node.attribute("kernel_shape")?.value, case .float(let alpha)? = node.attribute("alpha")?.value
        else { Issue.record("attributes decoded as \(node.attributes.map(\.value.kindName))"); return }
        #expect(k == [2, 2, 2] && alpha == 0.5)
        let w = try #require(model.graph.initializer(named: "w"))
        #expect(w.dims == [2, 1] && w.value.scalars == [1.5, -2])
        #expect(model.graph.name == "g")
    }

    /// TensorProto fields after the name: a table of malformed initializers.
    static func tensor(_ build: (inout ProtobufWriter) -> Void) -> [UInt8] {
        var t = ProtobufWriter()
        build(&t)
        return t.bytes
    }

    @Test(arguments: [
        ("raw_data too short", tensor { t in t.int(1, 3); t.int(2, 1); t.data(9, [0, 0, 128, 63]) }, "FLOAT need 12"),
        ("float_data count", tensor { t in t.int(1, 3); t.int(2, 1); t.packedFloats(4, [1, 2]) }, "2 values in float_data"),
        ("negative dim", tensor { t in t.int(1, -3); t.int(2, 1) }, "negative dimension"),
        ("overflowing dims", tensor { t in t.int(1, 1 << 40); t.int(1, 1 << 40); t.int(2, 1); t.data(9, []) }, "overflows"),
        ("huge dims without data", tensor { t in t.int(1, 1 << 40); t.int(2, 1) }, "0 values in float_data"),
        ("undefined type", tensor { t in t.int(1, 1) }, "element type UNDEFINED"),
        ("unknown type code", tensor { t in t.int(1, 1); t.int(2, 99) }, "type code 99"),
        ("external via data_location", tensor { t in t.int(1, 1); t.int(2, 1); t.int(14, 1) }, "external file"),
    ])
    func badInitializersAreRejected(name: String, fields: [UInt8], expected: String) {
        let bytes = ONNXBuilder.model { g in
            g.message(5) { t in
                t.string(8, "w")
                t.bytes += fields
            }
        }
        let e = modelError { _ = try ONNXModel(bytes: bytes, fileName: "bad.onnx") }
        #expect(e?.description.contains(expected) == true, "\(name): \(String(describing: e))")
        #expect(e?.description.hasPrefix("bad.onnx: initializer 'w' ") == true, "\(name)")
    }

    @Test func badAttributeTensorNamesTheNodeAndAttribute() {
        let bytes = ONNXBuilder.model { g in
            ONNXBuilder.node(&g, op: "Constant", name: "c0", inputs: [], outputs: ["c"]) { n in
                n.message(5) { a in
                    a.string(1, "value")
                    a.int(20, 4)  // TENSOR
                    a.message(5) { t in t.string(8, "v"); t.int(1, 1); t.int(2, 8); t.data(6, Array("x".utf8)) }
                }
            }
        }
        let e = modelError { _ = try ONNXModel(bytes: bytes, fileName: "m.onnx") }
        #expect(e?.description.hasPrefix("m.onnx: node 'c0' (Constant) attribute 'value': tensor 'v' has element type STRING")
                == true, "\(String(describing: e))")
    }

    @Test func wrongWireTypeForAKnownFieldIsCorrupt() {
        var m = ProtobufWriter()
        m.string(1, "ir_version should be a varint")
        let e = modelError { _ = try ONNXModel(bytes: m.bytes, fileName: "m.onnx") }
        #expect(e?.kind == .corrupt)
    }

    @Test func missingDefaultOpsetIsRejected() {
        let bytes = ONNXBuilder.model(opsets: [("ai.onnx.ml", 3)]) { g in g.string(2, "g") }
        let e = modelError { _ = try ONNXModel(bytes: bytes, fileName: "m.onnx") }
        #expect(e?.kind == .unsupportedOpset)
        // "ai.onnx" is the default domain too.
        #expect((try? ONNXModel(bytes: ONNXBuilder.model(opsets: [("ai.onnx", 13)]) { g in g.string(2, "g") },
                                fileName: "m.onnx").opsetVersion) == 13)
    }

    // MARK: Fuzz

    /// Thousands of truncations and byte flips of a valid model: each must decode or throw a
    /// ModelError, never crash or hang. Bounded: ~10k decodes of a 5 KB file take well under a second.
    /// typed_fields.onnx exercises the typed data fields and every attribute kind.
    @Test(arguments: ["cnn3d_opset17.onnx", "typed_fields.onnx"])
    func truncationsAndByteFlipsNeverCrash(file: String) throws {
        let url = fixturesDirectory.appendingPathComponent("onnx/\(file)")
        let original = [UInt8](try Data(contentsOf: url))
        let start = Date()
        var decoded = 0, rejected = 0
        func attempt(_ bytes: [UInt8]) {
            do {
                let m = try ONNXModel(bytes: bytes, fileName: "fuzz.onnx")
                _ = try? m.validateOperators()
                decoded += 1
            } catch is ModelError {
                rejected += 1
            } catch {
                Issue.record("non-ModelError thrown: \(error)")
            }
        }
        // Every truncation.
        for n in 0..<original.count { attempt(Array(original.prefix(n))) }
        // Random flips: one to four bytes set to random values, or single bits flipped.
        var rng = SeededGenerator(seed: 42)
        for trial in 0..<6000 {
            var bytes = original
            for _ in 0..<(1 + trial % 4) {
                let i = Int.random(in: 0..<bytes.count, using: &rng)
                if trial % 2 == 0 { bytes[i] = UInt8.random(in: 0...255, using: &rng) } else { bytes[i] ^= 1 << (trial % 8) }
            }
            attempt(bytes)
        }
        // Varint-hostile bytes spliced in: runs of 0xFF (endless continuation bits).
        for trial in 0..<500 {
            var bytes = original
            let i = Int.random(in: 0..<bytes.count, using: &rng)
            bytes.replaceSubrange(i..<min(bytes.count, i + 1 + trial % 12),
                                  with: repeatElement(UInt8(0xFF), count: 1 + trial % 12))
            attempt(bytes)
        }
        #expect(rejected > 1000, "\(file): most mutations should be rejected (decoded \(decoded), rejected \(rejected))")
        #expect(Date().timeIntervalSince(start) < 5, "fuzzing took too long")
    }
}

@Suite struct ModelErrorTests {
    @Test func namesWithLineBreaksStayOnOneLine() throws {
        let bytes = ONNXBuilder.model { g in
            ONNXBuilder.node(&g, op: "LSTM", name: "evil\nname\r\n", inputs: ["x"], outputs: ["y"])
        }
        let model = try ONNXModel(bytes: bytes, fileName: "m\n.onnx")
        let e = modelError { try model.validateOperators() }
        #expect(e?.description.contains(where: \.isNewline) == false, "\(String(describing: e))")
        #expect(e?.description.hasPrefix(#"m\n.onnx: node 'evil\nname\r\n' uses operator LSTM"#) == true,
                "\(String(describing: e))")
    }

    /// The error names the first unsupported node and lists the other unsupported op types once.
    @Test func otherUnsupportedOperatorsAreListed() throws {
        let bytes = ONNXBuilder.model { g in
            ONNXBuilder.node(&g, op: "Relu", name: "ok", inputs: ["x"], outputs: ["a"])
            ONNXBuilder.node(&g, op: "GRU", name: "gru0", inputs: ["a"], outputs: ["b"])
            ONNXBuilder.node(&g, op: "TopK", name: "", inputs: ["b"], outputs: ["c"])
            ONNXBuilder.node(&g, op: "GRU", name: "gru1", inputs: ["c"], outputs: ["d"])
            ONNXBuilder.node(&g, op: "NonZero", name: "nz", inputs: ["d"], outputs: ["e"])
        }
        let e = modelError { try ONNXModel(bytes: bytes, fileName: "m.onnx").validateOperators() }
        #expect(e?.description.hasPrefix("m.onnx: node 'gru0' uses operator GRU, which is not supported"
                                         + " (nor are TopK, NonZero, also in this model); supported operators: Conv, ") == true,
                "\(String(describing: e))")
    }
}
