internal import CNIfTI

/// Whether the linked niftilib was built with zlib (needed for `.nii.gz`).
public var niftilibHasZlib: Bool { nifti_compiled_with_zlib() != 0 }
