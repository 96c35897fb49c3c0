"""Reads a safetensors file written by Voxplain's Swift writer and checks it with the `safetensors`
package (the reference reader): same tensors, dtypes, shapes, exact values and metadata.

    VOXPLAIN_SAFETENSORS_OUT=/tmp/voxplain.safetensors swift test --filter writeThenReadRoundTripsExactly
    python3 Scripts/check_safetensors.py /tmp/voxplain.safetensors

The expected tensors are the formulas of crossCheckTensors() in Tests/VoxelNNTests/SafetensorsTests.swift.
"""
import sys

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file


def main(path):
    expected = {
        "ramp": (np.arange(24, dtype=np.float32) * np.float32(0.25) - np.float32(3)).reshape(2, 3, 4),
        "bias": (np.float32(1) / (np.arange(5, dtype=np.float32) + np.float32(1))),
        "scalar": np.array(3.5, dtype=np.float32),
        "empty": np.zeros((0, 2), dtype=np.float32),
    }
    metadata = {"format": "pt", "note": "written by Voxplain \"quoted\"\nsecond line", "unicode": "µm ✓"}
    tensors = load_file(path)
    assert sorted(tensors) == sorted(expected), f"tensor names {sorted(tensors)}"
    for name, want in expected.items():
        got = tensors[name]
        assert got.dtype == np.float32, f"{name}: dtype {got.dtype}"
        assert got.shape == want.shape, f"{name}: shape {got.shape} != {want.shape}"
        assert np.array_equal(got, want), f"{name}: values differ: {got} vs {want}"
    with safe_open(path, framework="numpy") as f:
        assert f.metadata() == metadata, f"metadata {f.metadata()}"
    print(f"{path}: OK ({len(tensors)} tensors, metadata matches; read with the safetensors package)")


if __name__ == "__main__":
    main(sys.argv[1])
