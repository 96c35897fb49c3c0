"""Writes a ~50 MB ONNX model (not committed) to time the Swift reader against the issue's target
(a 50 MB model read in under 1 s):

    python3 Scripts/make_large_onnx.py /tmp/voxplain_large.onnx
    VOXPLAIN_ONNX_BENCH=/tmp/voxplain_large.onnx swift test -c release --filter largeModelReadTime

The model is a 3D ResNet-like stack: 52 Conv + BatchNormalization + Relu blocks with 96-channel
3x3x3 kernels (raw_data, as exporters write them) and a final Gemm, so it has both large and many
small initializers.
"""
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def main(path):
    rng = np.random.default_rng(0)
    nodes, inits = [], []
    x = "input"
    c = 96
    for i in range(52):
        w = rng.standard_normal((c, c, 3, 3, 3), dtype=np.float32)
        inits.append(numpy_helper.from_array(w, f"block{i}.conv.weight"))
        for p in ("scale", "bias", "mean", "var"):
            inits.append(numpy_helper.from_array(rng.random(c, dtype=np.float32) + 0.5, f"block{i}.bn.{p}"))
        nodes.append(helper.make_node("Conv", [x, f"block{i}.conv.weight"], [f"c{i}"], name=f"block{i}.conv",
                                      kernel_shape=[3, 3, 3], pads=[1] * 6))
        nodes.append(helper.make_node("BatchNormalization", [f"c{i}"] + [f"block{i}.bn.{p}" for p in
                                      ("scale", "bias", "mean", "var")], [f"b{i}"], name=f"block{i}.bn"))
        nodes.append(helper.make_node("Relu", [f"b{i}"], [f"r{i}"], name=f"block{i}.relu"))
        x = f"r{i}"
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["pooled"], name="pool"))
    nodes.append(helper.make_node("Flatten", ["pooled"], ["flat"], name="flatten"))
    inits.append(numpy_helper.from_array(rng.standard_normal((2, c), dtype=np.float32), "fc.weight"))
    inits.append(numpy_helper.from_array(np.zeros(2, np.float32), "fc.bias"))
    nodes.append(helper.make_node("Gemm", ["flat", "fc.weight", "fc.bias"], ["logits"], name="fc", transB=1))
    graph = helper.make_graph(nodes, "large", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, c, 16, 16, 16])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 2])], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, path)
    import os
    print(f"wrote {path}: {os.path.getsize(path) / 1e6:.1f} MB, {len(inits)} initializers, {len(nodes)} nodes")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/voxplain_large.onnx")
