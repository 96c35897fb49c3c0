"""Golden conv3d cases from PyTorch: forward and all three gradients.

Writes Tests/Fixtures/torch/conv3d.json (read by Tests/VoxelTensorTests/Conv3DGoldenTests.swift).
Asymmetric padding goes through F.pad (zeros) then an unpadded conv, as ONNX importers do; the pads
are stored as six ints in ONNX order (begin d, h, w, end d, h, w). The loss is sum(output * grad_output),
so grad_input / grad_weight / grad_bias are the gradients for that grad_output.

Usage: python3 Scripts/make_conv_fixtures.py
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
import golden  # noqa: E402

# name, N, Cin, Cout, (D, H, W), kernel, stride, pads (6, ONNX order), dilation, groups, bias
CASES = [
    ("k3 s1 p1", 1, 2, 3, (3, 4, 5), (3, 3, 3), (1, 1, 1), (1, 1, 1, 1, 1, 1), (1, 1, 1), 1, True),
    ("k1", 2, 4, 3, (3, 3, 4), (1, 1, 1), (1, 1, 1), (0, 0, 0, 0, 0, 0), (1, 1, 1), 1, True),
    ("k2 s2", 1, 2, 5, (5, 6, 6), (2, 2, 2), (2, 2, 2), (0, 0, 0, 0, 0, 0), (1, 1, 1), 1, False),
    ("k3 s2 p1", 1, 2, 3, (5, 5, 6), (3, 3, 3), (2, 2, 2), (1, 1, 1, 1, 1, 1), (1, 1, 1), 1, True),
    ("stride 1,2,2", 1, 2, 3, (3, 5, 6), (3, 3, 3), (1, 2, 2), (1, 1, 1, 1, 1, 1), (1, 1, 1), 1, True),
    ("asymmetric pad", 1, 2, 3, (3, 4, 5), (3, 3, 3), (1, 1, 1), (0, 1, 2, 2, 0, 1), (1, 1, 1), 1, True),
    ("same_upper s2", 1, 2, 3, (5, 6, 6), (3, 3, 3), (2, 2, 2), (0, 0, 0, 1, 1, 1), (1, 1, 1), 1, True),
    ("dilation 2", 1, 2, 2, (5, 5, 6), (3, 3, 3), (1, 1, 1), (2, 2, 2, 2, 2, 2), (2, 2, 2), 1, True),
    ("dilation 1,2,1", 1, 2, 2, (5, 6, 5), (2, 3, 2), (1, 1, 1), (0, 1, 0, 0, 1, 0), (1, 2, 1), 1, True),
    ("groups 2", 1, 4, 4, (3, 4, 4), (3, 3, 3), (1, 1, 1), (1, 1, 1, 1, 1, 1), (1, 1, 1), 2, True),
    ("depthwise", 1, 3, 3, (4, 5, 5), (3, 3, 3), (1, 1, 1), (1, 1, 1, 1, 1, 1), (1, 1, 1), 3, True),
    ("k5 stem-like", 1, 1, 3, (5, 6, 6), (5, 5, 5), (2, 2, 2), (2, 2, 2, 2, 2, 2), (1, 1, 1), 1, True),
    ("k7 s2 p3", 1, 1, 1, (5, 6, 7), (7, 7, 7), (2, 2, 2), (3, 3, 3, 3, 3, 3), (1, 1, 1), 1, True),
]


def main():
    torch.manual_seed(0)
    cases = []
    for name, n, cin, cout, size, k, s, pads, dil, groups, has_bias in CASES:
        x = torch.randn(n, cin, *size, dtype=torch.float32, requires_grad=True)
        w = torch.randn(cout, cin // groups, *k, dtype=torch.float32, requires_grad=True)
        b = torch.randn(cout, dtype=torch.float32, requires_grad=True) if has_bias else None
        # F.pad takes pairs from the last axis: (w_begin, w_end, h_begin, h_end, d_begin, d_end).
        xp = F.pad(x, (pads[2], pads[5], pads[1], pads[4], pads[0], pads[3]))
        y = F.conv3d(xp, w, b, stride=s, dilation=dil, groups=groups)
        gy = torch.randn_like(y)
        (y * gy).sum().backward()
        tensors = {"input": x.detach(), "weight": w.detach(), "output": y.detach(), "grad_output": gy,
                   "grad_input": x.grad, "grad_weight": w.grad}
        if has_bias:
            tensors["bias"] = b.detach()
            tensors["grad_bias"] = b.grad
        cases.append(golden.case(name, "conv3d", {k_: v.numpy() for k_, v in tensors.items()},
                                 ints={"stride": list(s), "pads": list(pads), "dilation": list(dil), "groups": groups}))
    out = os.path.join(os.path.dirname(__file__), "..", "Tests", "Fixtures", "torch", "conv3d.json")
    golden.write(os.path.normpath(out), "Scripts/make_conv_fixtures.py", {"torch": torch.__version__}, cases)


if __name__ == "__main__":
    main()
