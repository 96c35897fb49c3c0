"""Writes Tests/Fixtures/torch/ops.json: PyTorch golden cases for the non-convolution ops.

Each case holds the op's inputs and parameters, PyTorch's output, a random upstream gradient `gy`
and the gradients PyTorch's autograd gives for the inputs (`gx`, `ga`, `gb`, ...). Inputs and upstream
gradients are multiples of 1/32 (exact in Float32 and short in JSON); ties in max pooling are therefore
common, which pins the first-maximum rule. Run: python3 Scripts/make_ops_fixtures.py
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
import golden  # noqa: E402

rng = np.random.default_rng(20261124)
cases = []


def q(shape, lo=-2.0, hi=2.0):
    """A float32 tensor of multiples of 1/32 in [lo, hi], requiring grad."""
    v = rng.integers(int(lo * 32), int(hi * 32) + 1, size=shape).astype(np.float32) / 32
    return torch.tensor(v, requires_grad=True)


def run(name, op, inputs, fn, ints=None, floats=None, strings=None):
    """Runs fn(*inputs), backpropagates a quantised upstream gradient, records everything."""
    y = fn(*inputs.values())
    gy = q(tuple(y.shape)).detach()
    grads = torch.autograd.grad(y, list(inputs.values()), gy, allow_unused=True)
    tensors = {k: v.detach() for k, v in inputs.items()}
    tensors["y"] = y.detach()
    tensors["gy"] = gy
    for (k, _), g in zip(inputs.items(), grads):
        if g is not None:
            tensors["g_" + k] = g
    cases.append(golden.case(name, op, {k: v.numpy() for k, v in tensors.items()}, ints, floats, strings))


# Max pooling: ceil mode, dilation, symmetric padding; asymmetric padding through F.pad with -inf.
for (k, s, p, d, ceil, shape) in [((3, 3, 3), (2, 2, 2), (1, 1, 1), (1, 1, 1), True, (1, 2, 5, 6, 7)),
                                  ((2, 3, 2), (2, 1, 2), (0, 1, 1), (1, 1, 1), False, (2, 1, 4, 5, 5)),
                                  ((2, 2, 2), (1, 2, 2), (1, 1, 0), (2, 1, 2), True, (1, 2, 5, 5, 6))]:
    run(f"maxpool k{k} s{s} p{p} d{d} ceil{ceil}", "maxpool", {"x": q(shape)},
        lambda x: F.max_pool3d(x, k, s, p, d, ceil_mode=ceil),
        ints={"kernel": k, "stride": s, "pad_begin": p, "pad_end": p, "dilation": d, "ceil": int(ceil)})
pb, pe = (1, 0, 2), (0, 2, 1)
run("maxpool asymmetric F.pad", "maxpool", {"x": q((1, 2, 4, 5, 5))},
    lambda x: F.max_pool3d(F.pad(x, (pb[2], pe[2], pb[1], pe[1], pb[0], pe[0]), value=float("-inf")), 3, 2),
    ints={"kernel": 3, "stride": 2, "pad_begin": pb, "pad_end": pe, "dilation": 1, "ceil": 0})

# Average pooling: count_include_pad both ways with ceil mode; asymmetric zero padding through F.pad.
for (k, s, p, ceil, cip, shape) in [((3, 3, 3), (2, 2, 2), (1, 1, 1), True, True, (1, 2, 5, 6, 7)),
                                    ((3, 3, 3), (2, 2, 2), (1, 1, 1), True, False, (1, 2, 5, 6, 7)),
                                    ((2, 3, 3), (2, 2, 1), (1, 1, 0), False, False, (2, 1, 4, 5, 4))]:
    run(f"avgpool k{k} s{s} p{p} ceil{ceil} cip{cip}", "avgpool", {"x": q(shape)},
        lambda x: F.avg_pool3d(x, k, s, p, ceil_mode=ceil, count_include_pad=cip),
        ints={"kernel": k, "stride": s, "pad_begin": p, "pad_end": p, "ceil": int(ceil), "count_include_pad": int(cip)})
run("avgpool asymmetric F.pad", "avgpool", {"x": q((1, 2, 4, 5, 5))},
    lambda x: F.avg_pool3d(F.pad(x, (pb[2], pe[2], pb[1], pe[1], pb[0], pe[0])), 3, 2),
    ints={"kernel": 3, "stride": 2, "pad_begin": pb, "pad_end": pe, "ceil": 0, "count_include_pad": 1})

run("global avg pool", "globalavgpool", {"x": q((2, 3, 3, 4, 5))}, lambda x: F.adaptive_avg_pool3d(x, 1))
run("global max pool", "globalmaxpool", {"x": q((2, 3, 3, 4, 5))}, lambda x: F.adaptive_max_pool3d(x, 1))

# Resampling: trilinear (align_corners false/true) and nearest to odd sizes, up and down; scale factors.
# Nearest avoids scale factors that give out == in or out == 2 * in: there PyTorch's backward uses a
# different index rule than its forward (its gradient is not the adjoint), while resize3dBackward is.
for (mode, ac, size, shape) in [("trilinear", False, (7, 5, 9), (1, 2, 3, 4, 5)),
                                ("trilinear", True, (7, 5, 9), (1, 2, 3, 4, 5)),
                                ("trilinear", False, (3, 5, 2), (1, 1, 5, 7, 6)),
                                ("trilinear", True, (1, 3, 2), (1, 1, 4, 5, 6)),
                                ("nearest", False, (7, 5, 9), (1, 2, 3, 4, 5)),
                                ("nearest", False, (3, 5, 2), (1, 1, 5, 7, 6))]:
    run(f"interpolate {mode} ac{ac} {shape}->{size}", "resize", {"x": q(shape)},
        lambda x: F.interpolate(x, size=size, mode=mode, align_corners=ac if mode == "trilinear" else None),
        ints={"size": size, "align_corners": int(ac)}, strings={"mode": mode})
for (mode, sf, shape) in [("trilinear", (2.0, 1.5, 0.5), (1, 1, 3, 4, 6)), ("nearest", (2.0, 1.5, 0.5), (1, 1, 3, 4, 6)),
                          ("nearest", (1.7, 2.3, 1.5), (1, 1, 3, 5, 4)), ("trilinear", (1.2, 2.1, 1.5), (1, 1, 3, 5, 4))]:
    run(f"interpolate {mode} scale_factor {sf}", "resize", {"x": q(shape)},
        lambda x: F.interpolate(x, scale_factor=sf, mode=mode, recompute_scale_factor=False),
        floats={"scales": sf}, ints={"align_corners": 0}, strings={"mode": mode})

# Batch norm in eval mode, with gradients for input, scale and shift.
c = 3
mean, var = q((c,)).detach(), (q((c,), 0.25, 2.0)).detach()
run("batchnorm eval", "batchnorm", {"x": q((2, c, 2, 3, 4)), "scale": q((c,)), "shift": q((c,))},
    lambda x, w, b: F.batch_norm(x, mean, var, w, b, training=False, eps=1e-3), floats={"epsilon": 1e-3})
cases[-1]["tensors"]["mean"] = golden.tensor(mean.numpy())
cases[-1]["tensors"]["variance"] = golden.tensor(var.numpy())

# Group and instance normalisation (statistics from the input), with parameter gradients.
run("group_norm 2 groups", "groupnorm", {"x": q((2, 4, 2, 3, 3)), "scale": q((4,)), "shift": q((4,))},
    lambda x, w, b: F.group_norm(x, 2, w, b, eps=1e-5), ints={"groups": 2}, floats={"epsilon": 1e-5})
run("instance_norm affine", "instancenorm", {"x": q((2, 3, 2, 3, 4)), "scale": q((3,)), "shift": q((3,))},
    lambda x, w, b: F.instance_norm(x, weight=w, bias=b, eps=1e-5), floats={"epsilon": 1e-5})

# Gemm with transposes, alpha, beta and broadcast C.
for (ta, tb, alpha, beta, cshape, m, k, n) in [(0, 0, 1.0, 1.0, (5,), 3, 4, 5), (1, 0, 0.5, 2.0, (3, 5), 3, 4, 5),
                                               (0, 1, 1.5, -1.0, (3, 1), 3, 6, 4), (1, 1, -0.75, 0.5, (1,), 2, 5, 17)]:
    a = q((k, m) if ta else (m, k))
    b = q((n, k) if tb else (k, n))
    cc = q(cshape)
    run(f"gemm transA{ta} transB{tb} C{cshape}", "gemm", {"a": a, "b": b, "c": cc},
        lambda a, b, cc: alpha * ((a.T if ta else a) @ (b.T if tb else b)) + beta * cc,
        ints={"transA": ta, "transB": tb}, floats={"alpha": alpha, "beta": beta})

# MatMul with batch broadcasting and 1D operands.
for (sa, sb) in [((2, 1, 3, 4), (3, 4, 5)), ((4,), (2, 4, 3)), ((2, 3, 4), (4,)), ((3, 4), (4, 2))]:
    run(f"matmul {sa} @ {sb}", "matmul", {"a": q(sa), "b": q(sb)}, torch.matmul)

# Broadcasting element-wise ops.
for (op, fn) in [("add", torch.add), ("sub", torch.sub), ("mul", torch.mul)]:
    run(f"{op} [2,3,4] [3,1]", op, {"a": q((2, 3, 4)), "b": q((3, 1))}, fn)
    run(f"{op} [4] [2,1,4]", op, {"a": q((4,)), "b": q((2, 1, 4))}, fn)
run("div [2,3,4] [3,1]", "div", {"a": q((2, 3, 4)), "b": q((3, 1), 0.5, 2.0)}, torch.div)
run("div [1,3,1] [2,1,4]", "div", {"a": q((1, 3, 1)), "b": q((2, 1, 4), 0.5, 2.0)}, torch.div)

# Softmax, log-softmax, activations.
run("softmax axis 1", "softmax", {"x": q((2, 5, 3), -4, 4)}, lambda x: F.softmax(x, 1), ints={"axis": 1})
run("softmax axis -1", "softmax", {"x": q((3, 6), -4, 4)}, lambda x: F.softmax(x, -1), ints={"axis": -1})
run("log_softmax axis 1", "logsoftmax", {"x": q((2, 5, 3), -4, 4)}, lambda x: F.log_softmax(x, 1), ints={"axis": 1})
run("prelu per channel", "prelu", {"x": q((2, 3, 2, 3, 4)), "slope": q((3,), -0.5, 0.5)}, F.prelu)
run("prelu single", "prelu", {"x": q((2, 3, 4)), "slope": q((1,), -0.5, 0.5)}, F.prelu)
run("sigmoid", "sigmoid", {"x": q((3, 7), -6, 6)}, torch.sigmoid)
run("tanh", "tanh", {"x": q((3, 7), -3, 3)}, torch.tanh)
run("leaky_relu 0.2", "leakyrelu", {"x": q((3, 7))}, lambda x: F.leaky_relu(x, 0.2), floats={"alpha": 0.2})
run("clamp -0.5 1.25", "clip", {"x": q((3, 7))}, lambda x: torch.clamp(x, -0.5, 1.25), floats={"min": -0.5, "max": 1.25})

# Reductions with and without kept dims.
run("mean axes [1,3] keepdims", "reducemean", {"x": q((2, 3, 4, 5))}, lambda x: x.mean((1, 3), keepdim=True),
    ints={"axes": (1, 3), "keepdims": 1})
run("mean axes [0] no keepdims", "reducemean", {"x": q((3, 4, 2))}, lambda x: x.mean(0), ints={"axes": (0,), "keepdims": 0})
xm = torch.tensor(rng.permutation(120).astype(np.float32).reshape(2, 3, 4, 5) / 32, requires_grad=True)
run("amax axes [2,3] keepdims (no ties)", "reducemax", {"x": xm}, lambda x: x.amax((2, 3), keepdim=True),
    ints={"axes": (2, 3), "keepdims": 1})

# Padding modes (F.pad lists the last axis first; the case stores ONNX order: begins then ends).
for mode, onnx in [("reflect", "reflect"), ("replicate", "edge"), ("constant", "constant")]:
    tp = (2, 1, 1, 2, 0, 1)  # W: 2, 1; H: 1, 2; D: 0, 1
    pads = [0, 0, 0, 1, 2, 0, 0, 1, 2, 1]
    run(f"pad {mode}", "pad", {"x": q((1, 2, 3, 4, 5))},
        lambda x: F.pad(x, tp, mode=mode, value=0.75) if mode == "constant" else F.pad(x, tp, mode=mode),
        ints={"pads": pads}, strings={"mode": onnx}, floats={"value": 0.75})

golden.write(os.path.join(os.path.dirname(__file__), "..", "Tests", "Fixtures", "torch", "ops.json"),
             "Scripts/make_ops_fixtures.py", {"torch": torch.__version__, "numpy": np.__version__}, cases)
