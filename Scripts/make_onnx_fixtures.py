"""Writes the ONNX and safetensors fixtures read by Tests/VoxelNNTests, with the facts tests compare.

Run from the repository root:  python3 Scripts/make_onnx_fixtures.py
Writes Tests/Fixtures/onnx/*.onnx + facts.json and Tests/Fixtures/safetensors/golden.safetensors +
golden.json. Every file is a few KB. The dynamo exporter needs `onnxscript` (pip install onnxscript);
without it that one fixture is skipped and the script says so.

Facts are computed with the `onnx` package from the files as saved (not from the PyTorch modules), so
they describe exactly what the Swift reader must find. Checksums are the sum and the sum of squares,
in float64, of the values converted to float32 (the reader converts every type to Float32).
"""
import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ONNX_DIR = os.path.join(ROOT, "Tests", "Fixtures", "onnx")
ST_DIR = os.path.join(ROOT, "Tests", "Fixtures", "safetensors")

ATTR_TYPES = {v: k for k, v in onnx.AttributeProto.AttributeType.items()}


# ----------------------------------------------------------------------------------------- facts

def tensor_facts(t):
    a = numpy_helper.to_array(t)
    f32 = a.astype(np.float32).astype(np.float64)
    facts = {
        "name": t.name,
        "dims": [int(d) for d in t.dims],
        "data_type": TensorProto.DataType.Name(t.data_type),
        "sum": float(f32.sum()),
        "sumsq": float((f32 * f32).sum()),
        "first": [float(v) for v in f32.reshape(-1)[:4]],
    }
    if np.issubdtype(a.dtype, np.integer) or a.dtype == np.bool_:
        facts["ints"] = [int(v) for v in a.astype(np.int64).reshape(-1)]
    return facts


def attr_facts(a):
    kind = ATTR_TYPES[a.type]
    value = helper.get_attribute_value(a)
    if kind == "FLOAT":
        value = float(value)
    elif kind == "STRING":
        value = value.decode()
    elif kind == "STRINGS":
        value = [s.decode() for s in value]
    elif kind == "FLOATS":
        value = [float(v) for v in value]
    elif kind == "TENSOR":
        value = tensor_facts(value)
    elif kind == "TENSORS":
        value = [tensor_facts(t) for t in value]
    return {"name": a.name, "type": kind, "value": value}


def value_info_facts(v):
    tt = v.type.tensor_type
    shape = None
    if tt.HasField("shape"):
        shape = []
        for d in tt.shape.dim:
            which = d.WhichOneof("value")
            shape.append(int(d.dim_value) if which == "dim_value" else (d.dim_param if which == "dim_param" else None))
    return {"name": v.name, "elem_type": TensorProto.DataType.Name(tt.elem_type), "shape": shape}


def model_facts(path):
    m = onnx.load(path)
    g = m.graph
    default = [o.version for o in m.opset_import if o.domain in ("", "ai.onnx")]
    return {
        "ir_version": int(m.ir_version),
        "opset": int(default[0]) if default else None,
        "opset_imports": [[o.domain, int(o.version)] for o in m.opset_import],
        "producer_name": m.producer_name,
        "producer_version": m.producer_version,
        "doc_string": m.doc_string,
        "graph_name": g.name,
        "graph_doc_string": g.doc_string,
        "metadata": [[p.key, p.value] for p in m.metadata_props],
        "nodes": [{"name": n.name, "op_type": n.op_type, "domain": n.domain, "inputs": list(n.input),
                   "outputs": list(n.output), "attributes": [attr_facts(a) for a in n.attribute]} for n in g.node],
        "initializers": [tensor_facts(t) for t in g.initializer],
        "inputs": [value_info_facts(v) for v in g.input],
        "outputs": [value_info_facts(v) for v in g.output],
        "value_info": [value_info_facts(v) for v in g.value_info],
    }


# ------------------------------------------------------------------------------------ PyTorch CNN

def make_cnn():
    import torch
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv3d(1, 4, kernel_size=3, padding=1),
        nn.BatchNorm3d(4),
        nn.ReLU(),
        nn.MaxPool3d(2),
        nn.Conv3d(4, 6, kernel_size=3, stride=(1, 2, 2), padding=1, bias=False),
        nn.BatchNorm3d(6),
        nn.ReLU(),
        nn.AdaptiveAvgPool3d(1),
        nn.Flatten(),
        nn.Linear(6, 3),
    )
    # Non-trivial batch-norm statistics so the exported running mean/var are not 0 and 1.
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm3d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    model.eval()
    return torch, model, torch.randn(1, 1, 8, 8, 8)


def export_legacy(path):
    torch, model, x = make_cnn()
    torch.onnx.export(model, (x,), path, dynamo=False, opset_version=17, input_names=["scan"],
                      output_names=["logits"], dynamic_axes={"scan": {0: "batch"}, "logits": {0: "batch"}},
                      do_constant_folding=False)


def export_dynamo(path):
    torch, model, x = make_cnn()
    program = torch.onnx.export(model, (x,), dynamo=True, input_names=["scan"], output_names=["logits"])
    program.save(path, external_data=False)


# --------------------------------------------------------------------------- hand-built (helper)

def make_typed():
    """Typed data fields, a Constant with a tensor attribute, and every attribute kind.

    The "Identity" node carrying one attribute of each kind is for the reader only: the model is not
    meant to run (onnx.checker would reject the extra attributes).
    """
    f16 = np.array([[1.0, -2.5], [65504.0, 6.1035156e-05]], dtype=np.float16)
    inits = [
        helper.make_tensor("w_float_data", TensorProto.FLOAT, [2, 3], [0.5, -1.25, 3.0, 1e-3, -7.75, 2.0]),
        helper.make_tensor("d_double_data", TensorProto.DOUBLE, [4], [1.0 / 3.0, -2.0, 1e10, 0.1]),
        helper.make_tensor("shape_int64", TensorProto.INT64, [3], [1, -1, 6]),
        helper.make_tensor("h_f16_raw", TensorProto.FLOAT16, [2, 2], f16.tobytes(), raw=True),
        helper.make_tensor("h_f16_int32_data", TensorProto.FLOAT16, [4],
                           f16.reshape(-1).astype(np.float32).tolist()),  # helper stores the bits in int32_data
        helper.make_tensor("bf16_raw", TensorProto.BFLOAT16, [3],
                           (np.array([1.5, -3.0, 0.15625], dtype=np.float32).view(np.uint32) >> 16)
                           .astype(np.uint16).tobytes(), raw=True),
        helper.make_tensor("i32_data", TensorProto.INT32, [2, 2], [7, -8, 2147483647, -2147483648]),
        helper.make_tensor("i8_data", TensorProto.INT8, [3], [-128, 0, 127]),
        helper.make_tensor("u8_raw", TensorProto.UINT8, [4], np.array([0, 1, 200, 255], np.uint8).tobytes(),
                           raw=True),
        helper.make_tensor("b_bool", TensorProto.BOOL, [2], [True, False]),
        helper.make_tensor("i64_raw", TensorProto.INT64, [2], np.array([-(2**40), 2**53 + 1], np.int64).tobytes(),
                           raw=True),
        helper.make_tensor("scalar_float", TensorProto.FLOAT, [], [42.0]),
        helper.make_tensor("empty_float", TensorProto.FLOAT, [0, 3], []),
    ]
    const_value = helper.make_tensor("const_t", TensorProto.FLOAT, [2, 2], [1.0, 2.0, 3.0, 4.0])
    nodes = [
        helper.make_node("Constant", [], ["c"], name="const0", value=const_value),
        helper.make_node(
            "Identity", ["x"], ["y"], name="attr_carrier",
            a_float=0.25, a_int=-3, a_string="nearest",
            a_tensor=helper.make_tensor("at", TensorProto.INT64, [2], [5, 6]),
            a_floats=[1.5, -0.5], a_ints=[1, 2, 3, -4], a_strings=["a", "bc"],
            a_tensors=[helper.make_tensor("t0", TensorProto.FLOAT, [1], [9.0]),
                       helper.make_tensor("t1", TensorProto.DOUBLE, [2], [0.25, 0.5])],
            doc_string="carries one attribute of each kind"),
        helper.make_node("Reshape", ["y", "shape_int64"], ["z"], name="reshape0"),
    ]
    graph = helper.make_graph(
        nodes, "typed_fields",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 2, None, 3])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, "n", 6])],
        initializer=inits,
        value_info=[helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2, None, 3]),
                    helper.make_tensor_value_info("c", TensorProto.FLOAT, [2, 2])],
        doc_string="graph doc")
    model = helper.make_model(graph, producer_name="voxplain-fixtures", producer_version="1.0",
                              opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)],
                              doc_string="typed fields and attribute kinds")
    model.ir_version = 8
    helper.set_model_props(model, {"author": "Voxplain", "purpose": "reader test"})
    return model


def tiny_model(nodes, inits=(), opset=17, domain_opsets=()):
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], initializer=list(inits))
    ops = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, v) for d, v in domain_opsets]
    m = helper.make_model(graph, producer_name="voxplain-fixtures", opset_imports=ops)
    m.ir_version = 8
    return m


def error_models():
    """Small models that the reader must reject, each with the error kind it must raise."""
    relu = helper.make_node("Relu", ["x"], ["y"], name="relu0")
    ext = helper.make_tensor("w", TensorProto.FLOAT, [4], [1.0, 2.0, 3.0, 4.0])
    ext.data_location = TensorProto.EXTERNAL
    del ext.float_data[:]
    e = ext.external_data.add()
    e.key, e.value = "location", "weights.bin"
    lstm_w = helper.make_tensor("W", TensorProto.FLOAT, [1, 4, 4], np.zeros(16, np.float32).tolist())
    lstm_r = helper.make_tensor("R", TensorProto.FLOAT, [1, 4, 1], np.zeros(4, np.float32).tolist())
    then_g = helper.make_graph([helper.make_node("Identity", ["x"], ["t"])], "then", [],
                               [helper.make_tensor_value_info("t", TensorProto.FLOAT, [1, 4])])
    cond = helper.make_tensor("cond", TensorProto.BOOL, [], [True])
    return {
        "error_external_data.onnx": ("externalData", tiny_model([helper.make_node("Add", ["x", "w"], ["y"])], [ext])),
        "error_opset9.onnx": ("unsupportedOpset", tiny_model([relu], opset=9)),
        "error_opset22.onnx": ("unsupportedOpset", tiny_model([relu], opset=22)),
        "error_custom_domain.onnx": ("unsupportedDomain", tiny_model(
            [helper.make_node("FusedConv", ["x"], ["y"], name="fused0", domain="com.microsoft")],
            domain_opsets=[("com.microsoft", 1)])),
        "error_string_tensor.onnx": ("unsupportedDataType", tiny_model(
            [relu], [helper.make_tensor("labels", TensorProto.STRING, [2], [b"a", b"b"])])),
        "error_complex_tensor.onnx": ("unsupportedDataType", tiny_model(
            [relu], [helper.make_tensor("z", TensorProto.COMPLEX64, [1], [complex(1.0, 2.0)])])),
        "error_if_subgraph.onnx": ("unsupportedFeature", tiny_model(
            [helper.make_node("If", ["cond"], ["y"], name="if0", then_branch=then_g, else_branch=then_g)], [cond])),
        # Decodes fine; validateOperators() must reject the LSTM.
        "unsupported_lstm.onnx": ("unsupportedOperator", tiny_model(
            [helper.make_node("LSTM", ["x", "W", "R"], ["y"], name="lstm0", hidden_size=1)], [lstm_w, lstm_r])),
    }


# ----------------------------------------------------------------------------------- safetensors

def make_safetensors(path):
    import torch
    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(3)
    tensors = {
        "conv.weight": torch.randn(4, 1, 3, 3, 3, generator=g),
        "half": torch.tensor([[1.0, -2.5, 65504.0], [6.1035156e-05, 0.0, -0.0]], dtype=torch.float16),
        "double": torch.tensor([1.0 / 3.0, -1e10, 2.5], dtype=torch.float64),
        "bf16": torch.tensor([1.5, -3.0, 0.15625, 1e20], dtype=torch.bfloat16),
        "steps": torch.tensor([[-(2**40), 0, 2**53 + 1]], dtype=torch.int64),
        "counts": torch.tensor([7, -8, 2147483647], dtype=torch.int32),
        "scalar": torch.tensor(42.0),
        "empty": torch.zeros(0, 3),
    }
    metadata = {"format": "pt", "source": "voxplain fixtures", "quote\"key": "line\nbreak"}
    save_file(tensors, path, metadata=metadata)
    facts = {}
    for name, t in tensors.items():
        a = t.to(torch.float64) if t.dtype != torch.bfloat16 else t.to(torch.float32).to(torch.float64)
        f32 = t.to(torch.float32).to(torch.float64).reshape(-1)
        facts[name] = {"dtype": str(t.dtype).replace("torch.", ""), "shape": list(t.shape),
                       "sum": float(f32.sum()), "sumsq": float((f32 * f32).sum()),
                       "values": [float(v) for v in f32.tolist()] if f32.numel() <= 64 else None}
        if not t.dtype.is_floating_point:
            facts[name]["ints"] = [int(v) for v in t.reshape(-1).tolist()]
        del a
    return {"metadata": metadata, "tensors": facts}


# ------------------------------------------------------------------------------------------ main

def main():
    os.makedirs(ONNX_DIR, exist_ok=True)
    os.makedirs(ST_DIR, exist_ok=True)
    import torch
    versions = {"onnx": onnx.__version__, "torch": torch.__version__, "numpy": np.__version__}

    files = {}
    export_legacy(os.path.join(ONNX_DIR, "cnn3d_opset17.onnx"))
    files["cnn3d_opset17.onnx"] = None
    try:
        import onnxscript  # noqa: F401
        export_dynamo(os.path.join(ONNX_DIR, "cnn3d_dynamo.onnx"))
        files["cnn3d_dynamo.onnx"] = None
        versions["onnxscript"] = onnxscript.__version__
    except ImportError:
        print("onnxscript not installed: skipping the dynamo-exported fixture", file=sys.stderr)
    onnx.save(make_typed(), os.path.join(ONNX_DIR, "typed_fields.onnx"))
    files["typed_fields.onnx"] = None

    facts = {name: model_facts(os.path.join(ONNX_DIR, name)) for name in files}
    errors = {}
    for name, (kind, model) in error_models().items():
        onnx.save(model, os.path.join(ONNX_DIR, name))
        errors[name] = kind
    with open(os.path.join(ONNX_DIR, "facts.json"), "w") as f:
        json.dump({"generator": "Scripts/make_onnx_fixtures.py", "versions": versions, "models": facts,
                   "errors": errors}, f, indent=1)

    st = make_safetensors(os.path.join(ST_DIR, "golden.safetensors"))
    import safetensors
    versions["safetensors"] = safetensors.__version__
    with open(os.path.join(ST_DIR, "golden.json"), "w") as f:
        json.dump({"generator": "Scripts/make_onnx_fixtures.py", "versions": versions, **st}, f, indent=1)

    for d in (ONNX_DIR, ST_DIR):
        for name in sorted(os.listdir(d)):
            print(f"{os.path.join(os.path.relpath(d, ROOT), name)}: {os.path.getsize(os.path.join(d, name))} bytes")


if __name__ == "__main__":
    main()
