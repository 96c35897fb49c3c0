@_exported import VoxelTensor
@_exported import NIfTI
@_exported import VoxelNN
@_exported import VoxelCAM
@_exported import VoxelRender
@_exported import VoxelEval

/// Voxplain's version, recorded in every report.
public enum VoxplainInfo {
    public static let version = "0.1.0"
}
