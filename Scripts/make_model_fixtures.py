"""Writes the whole-model parity fixtures read by Tests/VoxelNNTests/ModelParityTests.swift.

Run from the repository root:  python3 Scripts/make_model_fixtures.py
For each small model (a VGG-style CNN, MONAI's 3D ResNet and DenseNet at reduced width, and a model
with asymmetric padding, dilation, groups, ceil-mode pooling and a Resize) it writes
Tests/Fixtures/models/<name>.onnx, exported with torch.onnx's legacy exporter (opset 17) and, where it
works, the dynamo exporter (<name>_dynamo.onnx), and <name>.json with:
  - the input, ONNX Runtime's logits on it, and ONNX Runtime's values of some intermediate tensors;
  - for one layer (a PyTorch module path), PyTorch's activation and the gradient of the class-1 logit
    with respect to it (what Grad-CAM reads), for the tape's backward.
Each file is a few KB to a few hundred KB. CI reads them; it runs no Python.
"""
import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden  # noqa: E402
from models3d import VGG3D, randomize_batchnorm  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "Fixtures", "models")


class OddOps(nn.Module):
    """Operators and attributes the common models do not exercise."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv3d(1, 4, 2)                                  # even kernel after asymmetric F.pad
        self.dilated = nn.Conv3d(4, 4, 3, padding=2, dilation=2)
        self.grouped = nn.Conv3d(4, 8, 3, padding=1, groups=2)
        self.depthwise = nn.Conv3d(8, 8, 3, padding=1, groups=8, bias=False)
        self.prelu = nn.PReLU(8)
        self.pool = nn.MaxPool3d(3, stride=2, ceil_mode=True)
        self.avg = nn.AvgPool3d(3, stride=1, padding=1, count_include_pad=False)
        self.strided = nn.Conv3d(8, 8, 3, stride=(1, 2, 2), padding=1)
        self.head = nn.Linear(16, 3)

    def forward(self, x):
        x = F.leaky_relu(self.stem(F.pad(x, (0, 1, 0, 1, 0, 1))), 0.1)
        x = torch.sigmoid(self.dilated(x)) * x
        x = self.prelu(self.depthwise(self.grouped(x)))
        x = self.avg(self.pool(x))
        up = F.interpolate(self.strided(x), size=x.shape[2:], mode="trilinear", align_corners=False)
        x = torch.cat([x, torch.tanh(up)], dim=1)
        x = torch.clamp(x, -0.5, 2.0)
        x = x.mean(dim=(2, 3, 4))
        return self.head(x.view(x.size(0), -1))


def models():
    from monai.networks.nets import DenseNet, ResNet

    torch.manual_seed(0)
    return [
        ("vgg", VGG3D(widths=(4, 8, 16)), 12, "features.12"),
        ("resnet", ResNet(block="basic", layers=[1, 1, 1, 1], block_inplanes=[4, 8, 16, 32], spatial_dims=3,
                          n_input_channels=1, num_classes=2, conv1_t_size=3, conv1_t_stride=1), 12, "layer3"),
        ("densenet", DenseNet(spatial_dims=3, in_channels=1, out_channels=2, init_features=8, growth_rate=4,
                              block_config=(2, 2), bn_size=2), 12, "features.denseblock2"),
        ("oddops", OddOps(), 11, "avg"),
    ]


def layer_gradient(model, x, path, cls=1):
    module = dict(model.named_modules())[path]
    store = {}

    def hook(m, i, o):
        o.retain_grad()
        store["a"] = o

    h = module.register_forward_hook(hook)
    logits = model(x)
    logits[0, cls].backward()
    h.remove()
    return store["a"].detach().numpy(), store["a"].grad.numpy()


def ort_values(path, x, names):
    m = onnx.load(path)
    have = {o.name for o in m.graph.output}
    for n in names:
        if n not in have:
            m.graph.output.append(onnx.ValueInfoProto(name=n))
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    outs = sess.run(None, {sess.get_inputs()[0].name: x})
    return dict(zip([o.name for o in m.graph.output], outs))


def intermediate_values(path, x, count=3, max_elements=1024):
    """A few activations spread through the graph (outputs of Relu/Concat/Add/... nodes), each small
    enough to keep the fixture in kilobytes, with ONNX Runtime's values."""
    g = onnx.load(path).graph
    live = {i.name for i in g.input}  # values computed from the image (not folded shape arithmetic)
    for n in g.node:
        if n.op_type != "Shape" and any(i in live for i in n.input):
            live.update(n.output)
    cands = [n.output[0] for n in g.node
             if n.op_type in ("Relu", "Concat", "Add", "MaxPool", "PRelu", "Mul", "Tanh") and n.output[0] in live]
    vals = ort_values(path, x, cands)
    small = [n for n in cands if vals[n].size <= max_elements]
    step = max(1, len(small) // count)
    picked = small[::step][:count]
    return picked, vals


def main():
    os.makedirs(OUT, exist_ok=True)
    versions = {"torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": ort.__version__}
    for name, model, size, layer in models():
        model = randomize_batchnorm(model.eval())
        g = torch.Generator().manual_seed(1)
        x = torch.randn(1, 1, size, size, size, generator=g)
        path = os.path.join(OUT, f"{name}.onnx")
        torch.onnx.export(model, (x,), path, dynamo=False, opset_version=17, input_names=["image"],
                          output_names=["logits"], dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}})
        exports = [("legacy", path)]
        if name in ("oddops", "resnet"):  # the oldest opset Voxplain reads: attribute forms of Clip/Squeeze/Reduce*
            p11 = os.path.join(OUT, f"{name}_opset11.onnx")
            torch.onnx.export(model, (x,), p11, dynamo=False, opset_version=11, input_names=["image"],
                              output_names=["logits"], dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}})
            exports.append(("legacy11", p11))
        try:
            dpath = os.path.join(OUT, f"{name}_dynamo.onnx")
            prog = torch.onnx.export(model, (x,), dynamo=True, input_names=["image"], output_names=["logits"],
                                     external_data=False)
            prog.save(dpath)
            onnx.checker.check_model(onnx.load(dpath))
            exports.append(("dynamo", dpath))
        except Exception as e:  # the dynamo exporter does not handle every model
            print(f"{name}: dynamo export failed: {type(e).__name__}: {str(e).splitlines()[0][:160]}")
        activation, gradient = layer_gradient(model, x.clone(), layer)
        with torch.no_grad():
            torch_logits = model(x).numpy()
        cases = []
        for exporter, p in exports:
            names, vals = intermediate_values(p, x.numpy())
            tensors = {"input": x.numpy(), "logits": vals[onnx.load(p).graph.output[0].name]}
            for i, n in enumerate(names):
                tensors[f"value{i}"] = vals[n]
            err = float(np.abs(tensors["logits"] - torch_logits).max())
            print(f"{name} ({exporter}): {os.path.getsize(p) / 1024:.1f} KiB, ORT vs torch logits max diff {err:.2e}")
            cases.append(golden.case(f"{name}-{exporter}", "model", tensors,
                                     strings={"file": os.path.basename(p), "values": "\n".join(names)}))
        cases.append(golden.case(f"{name}-gradient", "layer-gradient",
                                 {"input": x.numpy(), "activation": activation, "gradient": gradient,
                                  "logits": torch_logits},
                                 ints={"class": 1}, strings={"file": f"{name}.onnx", "layer": layer}))
        golden.write(os.path.join(OUT, f"{name}.json"), "Scripts/make_model_fixtures.py", versions, cases)




def write_conv2d_fixture():
    """A 2D model (4D input), which Voxplain must refuse with a clear error: Tests/Fixtures/models/conv2d.onnx."""
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 2)).eval()
    torch.onnx.export(m, (torch.zeros(1, 1, 8, 8),), os.path.join(OUT, "conv2d.onnx"), dynamo=False, opset_version=17,
                      input_names=["image"], output_names=["logits"])


def write_two_heads_fixture():
    """A model with two outputs (malignancy: 2 classes, texture: 3), for --output: twoheads.onnx."""
    torch.manual_seed(0)

    class TwoHeads(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.a, self.b = nn.Conv3d(1, 4, 3, padding=1), nn.Linear(4, 2), nn.Linear(4, 3)

        def forward(self, x):
            f = torch.relu(self.conv(x)).mean(dim=(2, 3, 4))
            return self.a(f), self.b(f)

    torch.onnx.export(TwoHeads().eval(), (torch.zeros(1, 1, 12, 12, 12),), os.path.join(OUT, "twoheads.onnx"), dynamo=False,
                      opset_version=17, input_names=["image"], output_names=["malignancy", "texture"])


if __name__ == "__main__":
    main()
    write_conv2d_fixture()
    write_two_heads_fixture()
