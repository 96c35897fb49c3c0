import Foundation
import NIfTI

extension PhantomOptions {
    /// Options from command-line text: `size` "X,Y,Z" voxels and `spacing` "X,Y,Z" mm.
    /// - Throws: `PhantomError` naming the option when a list is malformed or out of range.
    public init(size: String, spacing: String, noduleCount: Int, seed: UInt64, noiseHU: Double) throws {
        let s = try PhantomOptions.triple(size, "--size")
        guard s.allSatisfy({ $0 == $0.rounded() && $0 >= 1 && $0 <= 4096 }) else {
            throw PhantomError("--size \(size): expected three whole numbers of voxels (1 to 4096), as 128,128,96")
        }
        let sp = try PhantomOptions.triple(spacing, "--spacing")
        guard noiseHU >= 0, noiseHU.isFinite else { throw PhantomError("--noise \(noiseHU): must be zero or positive") }
        self.init(size: VoxelDims(Int(s[0]), Int(s[1]), Int(s[2])), spacing: SIMD3(sp[0], sp[1], sp[2]),
                  noduleCount: noduleCount, seed: seed, noiseHU: noiseHU)
    }

    static func triple(_ text: String, _ option: String) throws -> [Double] {
        try parseNumbers(text, count: 3, option: option)
    }
}

extension Phantom {
    /// The info file path beside a scan path: `dir/name.nii.gz` gives `dir/name.json`.
    public static func defaultInfoPath(for scan: String) -> String {
        for ext in [".nii.gz", ".nii"] where scan.hasSuffix(ext) { return String(scan.dropLast(ext.count)) + ".json" }
        return scan + ".json"
    }

    /// Checks that the outputs are distinct, are NIfTI names, and can be created in existing folders,
    /// before any work is done.
    /// - Throws: `NIfTIError`/`PhantomError` naming the offending path.
    public static func checkOutputs(ct: String, mask: String?, info: String?) throws {
        let infoPath = info ?? Phantom.defaultInfoPath(for: ct)
        let outputs = [ct] + (mask.map { [$0] } ?? []) + [infoPath]
        for (n, a) in outputs.enumerated() {
            for b in outputs[(n + 1)...] where NIfTIFile.canonicalPathForComparison(a) == NIfTIFile.canonicalPathForComparison(b) {
                throw PhantomError("\(b): the same path is given for two outputs")
            }
        }
        for path in [ct] + (mask.map { [$0] } ?? []) where !(path.hasSuffix(".nii") || path.hasSuffix(".nii.gz")) {
            throw NIfTIError(path, "output name must end in .nii or .nii.gz")
        }
        for path in outputs { try NIfTIFile.checkOutputPath(path, protecting: []) }
    }

    /// Writes the CT to `ct`, the label mask to `mask` (when given) and the info JSON to `info`
    /// (default: beside `ct`), each to a temporary file renamed into place.
    /// - Parameters:
    ///   - ctDatatype: `.int16` (default) or `.float32`.
    /// - Returns: the paths written, in order.
    /// - Throws: `NIfTIError`/`PhantomError` naming the file when paths collide or cannot be written.
    @discardableResult
    public func write(ct: String, mask: String? = nil, info: String? = nil, ctDatatype: NIfTIDataType = .int16) throws -> [String] {
        let infoPath = info ?? Phantom.defaultInfoPath(for: ct)
        let outputs = [ct] + (mask.map { [$0] } ?? []) + [infoPath]
        guard ctDatatype == .int16 || ctDatatype == .float32 else {
            throw PhantomError("\(ct): phantom CT datatype must be int16 or float32, not \(ctDatatype)")
        }
        // Check every destination before writing any, so a bad path leaves nothing behind.
        try Phantom.checkOutputs(ct: ct, mask: mask, info: info)
        var scan = self.ct
        scan.datatype = ctDatatype
        try NIfTIFile.write(scan, to: ct)
        if let mask { try NIfTIFile.write(self.mask, to: mask) }
        do {
            try Data(try infoJSON().utf8).write(to: URL(fileURLWithPath: infoPath), options: .atomic)
        } catch {
            throw PhantomError("\(infoPath): cannot write: \(error.localizedDescription)")
        }
        return outputs
    }
}
