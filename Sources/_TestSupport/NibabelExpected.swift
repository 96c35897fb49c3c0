import Foundation
import NIfTI

/// The JSON of expected facts that `Scripts/make_nifti_fixtures.py --check DIR` compares a
/// Voxplain-written file against with nibabel: grid, spacing, affines and codes, datatype,
/// description, orientation and every voxel (NaN and infinities as strings).
public func nibabelExpectedJSON(file: String, _ v: Volume) throws -> Data {
    func num(_ x: Float) -> Any {
        if x.isNaN { return "NaN" }
        if x.isInfinite { return x > 0 ? "Infinity" : "-Infinity" }
        return Double(x)
    }
    var obj: [String: Any] = [:]
    obj["file"] = file
    obj["dims"] = v.dims.array
    obj["spacing"] = [v.spacing.x, v.spacing.y, v.spacing.z]
    obj["affine"] = v.affine.rows
    obj["sform"] = v.sform.rows
    obj["qform"] = v.qform.rows
    obj["sform_code"] = v.sformCode
    obj["qform_code"] = v.qformCode
    obj["datatype"] = v.datatype.description
    obj["description"] = v.description
    obj["orientation"] = v.affine.orientationCode
    obj["voxels"] = v.voxels.map(num)
    return try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])
}
