@_exported import VoxelTensor
@_exported import NIfTI
@_exported import VoxelNN

/// Voxplain's version, recorded in every report.
public enum VoxplainInfo {
    public static let version = "0.1.0"
}
