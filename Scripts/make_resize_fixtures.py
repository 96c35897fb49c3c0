"""Writes Tests/Fixtures/onnxruntime/resize.json: onnxruntime Resize outputs for the ONNX coordinate
conventions that resize3d(_:size:mode:coordinates:nearestRounding:scales:) implements.

Each case: input x [N, C, D, H, W] (multiples of 1/32), the Resize attributes, either `sizes` or
`scales` (D, H, W), and onnxruntime's output y. Run: python3 Scripts/make_resize_fixtures.py
"""
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

sys.path.insert(0, os.path.dirname(__file__))
import golden  # noqa: E402

rng = np.random.default_rng(7)
cases = []


def run(name, shape, mode, transform, nearest_mode, sizes=None, scales=None):
    x = (rng.integers(-64, 65, size=shape) / 32).astype(np.float32)
    inputs = ["x", "", "", ""]
    inits = []
    if scales is not None:
        inputs[2] = "scales"
        inits.append(helper.make_tensor("scales", TensorProto.FLOAT, [5], [1.0, 1.0] + list(scales)))
    else:
        inputs[3] = "sizes"
        inits.append(helper.make_tensor("sizes", TensorProto.INT64, [5], list(shape[:2]) + list(sizes)))
    while inputs[-1] == "":
        inputs.pop()
    node = helper.make_node("Resize", inputs, ["y"], mode=mode, coordinate_transformation_mode=transform,
                            nearest_mode=nearest_mode)
    graph = helper.make_graph([node], "resize", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None] * 5)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    y = sess.run(None, {"x": x})[0]
    ints = {"sizes": list(y.shape[2:])}
    floats = {"scales": list(scales)} if scales is not None else {}
    cases.append(golden.case(name, "resize_onnx", {"x": x, "y": y}, ints=ints, floats=floats,
                             strings={"mode": mode, "coordinate_transformation_mode": transform, "nearest_mode": nearest_mode}))


shape = (1, 1, 3, 4, 5)
for transform in ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric"]:
    run(f"linear {transform} up", shape, "linear", transform, "round_prefer_floor", sizes=(5, 7, 9))
    run(f"linear {transform} down", (1, 1, 4, 5, 6), "linear", transform, "round_prefer_floor", sizes=(1, 3, 4))
    for nearest in ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]:
        run(f"nearest {transform} {nearest} up", shape, "nearest", transform, nearest, sizes=(5, 6, 9))
        run(f"nearest {transform} {nearest} down", (1, 1, 4, 5, 6), "nearest", transform, nearest, sizes=(2, 3, 4))
for transform in ["half_pixel", "asymmetric"]:
    run(f"linear {transform} scales", (1, 1, 3, 4, 6), "linear", transform, "round_prefer_floor", scales=(2.0, 1.5, 0.5))
    run(f"nearest {transform} scales", (1, 1, 3, 4, 6), "nearest", transform, "round_prefer_floor", scales=(2.0, 1.5, 0.5))

golden.write(os.path.join(os.path.dirname(__file__), "..", "Tests", "Fixtures", "onnxruntime", "resize.json"),
             "Scripts/make_resize_fixtures.py", {"onnxruntime": ort.__version__, "onnx": onnx.__version__}, cases)
