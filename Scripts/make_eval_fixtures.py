"""Writes the evaluation-metric fixtures read by Tests/VoxelEvalTests/PeerCheckTests.swift.

Run from the repository root:  python3 Scripts/make_eval_fixtures.py
Needs torch, torch-cam, onnxruntime, scipy, scikit-image and quantus (pip install scikit-image quantus).

The VGG fixture of the CAM tests barely reacts to its input (class probability 0.598 +- 1e-5 whatever is
deleted), too flat to check curves on, so this script makes its own small sensitive model, EvalNet
(two 3x3x3 convs with ReLU, global average pooling and a linear head, seeded weights), exports it to
Tests/Fixtures/eval/evalnet.onnx (legacy exporter, opset 17) and checks onnxruntime against torch.
On that model, an input with a bright blob and a smooth map without ties, it computes:
  - deletion and insertion AUC with torch-cam's DeletionInsertionMetric (it accepts 3D inputs), steps 20,
    softmax scores of class 0 (the predicted class), with a zero baseline and with a Gaussian-blurred input (scipy, sigma 2) as
    the baseline;
  - region perturbation (MoRF and LeRF curves, AOPC) with an independent numpy implementation and
    onnxruntime: Quantus 0.6's RegionPerturbation is 2D-only (it pads only H and W and fails on volumes
    with "pad_width and padded_axes have different lengths"), so it cannot be the peer here;
  - pointing game, relevance mass accuracy and relevance rank accuracy with Quantus, which accepts
    volumes for these (abs=False, normalise=False);
  - Spearman's rho with ties (scipy.stats.spearmanr) and 3D SSIM (skimage.metrics.structural_similarity,
    gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1, on min-max normalised maps);
  - a 3D Gaussian filter (scipy.ndimage.gaussian_filter, mode reflect) as used by the blur perturbation.
Writes Tests/Fixtures/eval/eval.json (tens of KB). Inputs and maps are rounded to a few decimals (then
used as rounded) to keep the file small.
"""
import os
import sys
import warnings
from contextlib import contextmanager

import numpy as np
import onnxruntime as ort
import quantus
import scipy
import scipy.ndimage as ndi
import scipy.stats
import skimage
import torch
import torchcam
from skimage.metrics import structural_similarity
from torchcam.metrics import DeletionInsertionMetric

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "Fixtures", "eval", "eval.json")
CLASS = 0
warnings.filterwarnings("ignore")


class FixedMap:
    """A stand-in CAM extractor for torch-cam's metrics that returns a given map."""

    def __init__(self, model, cam):
        self.model = model
        self.cam = cam

    def __call__(self, class_idx=None, scores=None, normalized=True, **kwargs):
        return [self.cam]

    def fuse_cams(self, cams):
        return cams[0]

    @contextmanager
    def _hooks_off(self):
        yield


class EvalNet(torch.nn.Module):
    """A small 3D classifier whose class probability reacts strongly to its input."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.conv1 = torch.nn.Conv3d(1, 4, 3, padding=1)
        self.conv2 = torch.nn.Conv3d(4, 6, 3, padding=1)
        self.fc = torch.nn.Linear(6, 2)
        with torch.no_grad():
            for m in (self.conv1, self.conv2, self.fc):
                m.weight.mul_(3.0)

    def forward(self, x):
        x = torch.relu(self.conv2(torch.relu(self.conv1(x))))
        return self.fc(torch.flatten(torch.nn.functional.adaptive_avg_pool3d(x, 1), 1))


def normalize(m):
    lo, hi = m.min(), m.max()
    return (m - lo) / (hi - lo) if hi > lo else np.zeros_like(m)


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def region_perturbation(session, x, amap, edge, steps, replacement):
    """MoRF and LeRF curves (class probabilities), cumulative, regions ordered by mean heat (stable)."""
    d = x.shape[2]
    n = d // edge
    regions, heat = [], []
    for rz in range(n):
        for ry in range(n):
            for rx in range(n):
                sl = (slice(rz * edge, (rz + 1) * edge), slice(ry * edge, (ry + 1) * edge), slice(rx * edge, (rx + 1) * edge))
                regions.append(sl)
                heat.append(amap[sl].mean())
    heat = np.array(heat)
    f = lambda v: softmax(session.run(None, {session.get_inputs()[0].name: v.astype(np.float32)})[0])[0, CLASS]  # noqa: E731
    curves = {}
    for name, order in (("morf", np.argsort(-heat, kind="stable")), ("lerf", np.argsort(heat, kind="stable"))):
        cur = x.copy()
        ys = [f(cur)]
        for r in order[:steps]:
            sl = regions[r]
            cur[0, 0][sl] = replacement[0, 0][sl]
            ys.append(f(cur))
        curves[name] = np.array(ys)
    aopc = {k: float(np.sum(v[0] - v[1:]) / (steps + 1)) for k, v in curves.items()}
    return curves, aopc


def main():
    versions = {"torch": torch.__version__, "torchcam": torchcam.__version__, "quantus": quantus.__version__,
                "scipy": scipy.__version__, "skimage": skimage.__version__, "onnxruntime": ort.__version__,
                "numpy": np.__version__}
    size = 12
    model = EvalNet().eval()
    onnx_path = os.path.join(os.path.dirname(OUT), "evalnet.onnx")
    torch.onnx.export(model, torch.zeros(1, 1, size, size, size), onnx_path, opset_version=17, dynamo=False,
                      input_names=["input"], output_names=["logits"])
    rng = np.random.default_rng(7)
    xn = rng.normal(size=(1, 1, size, size, size))
    zz, yy, xx = np.meshgrid(*[np.arange(size)] * 3, indexing="ij")
    xn[0, 0] += 2.5 * np.exp(-((zz - 3) ** 2 + (yy - 7) ** 2 + (xx - 8) ** 2) / 6.0)
    x = torch.from_numpy(np.round(xn, 3).astype(np.float32))
    session = ort.InferenceSession(onnx_path)
    with torch.no_grad():
        logits = model(x).numpy()
    ort_logits = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    assert np.abs(logits - ort_logits).max() < 1e-4, "onnxruntime differs from torch on EvalNet"
    # A map that favours the blob, plus smooth noise. Rounding may leave a few ties; torch-cam and
    # Voxplain both break them by index (stable descending sort).
    amap = ndi.gaussian_filter(np.maximum(x.numpy()[0, 0], 0) + 0.5 * rng.random((size, size, size)), 1.5)
    amap = np.round(amap, 6).astype(np.float32)
    cases = [golden.case("data", "data", {"input": x.numpy(), "map": amap}, ints={"class": CLASS},
                         floats={"logits": logits[0].tolist()}, strings={"model": "evalnet.onnx"})]

    # Deletion / insertion with torch-cam (3D).
    blurred = ndi.gaussian_filter(x.numpy()[0, 0].astype(np.float64), 2.0, mode="reflect").astype(np.float32)
    for baseline_name, baseline in (("zeros", None), ("blur2", torch.from_numpy(blurred)[None, None])):
        metric = DeletionInsertionMetric(FixedMap(model, torch.from_numpy(amap)[None]), lambda z: torch.softmax(z, dim=-1),
                                         steps=20, baseline=baseline, batch_size=8)
        metric.update(x, class_idx=CLASS)
        s = metric.summary()
        cases.append(golden.case(f"deletion-insertion-{baseline_name}", "deletion-insertion", {},
                                 ints={"class": CLASS, "steps": 20},
                                 floats={"deletion_auc": s["deletion_auc"], "insertion_auc": s["insertion_auc"]},
                                 strings={"baseline": baseline_name, "peer": "torchcam.metrics.DeletionInsertionMetric"}))

    # Region perturbation: independent numpy + onnxruntime implementation (Quantus is 2D-only).
    xn = x.numpy().astype(np.float64)
    for kind, repl in (("constant0", np.zeros_like(xn)), ("mean", np.full_like(xn, xn.mean())),
                       ("blur2", ndi.gaussian_filter(xn[0, 0], 2.0, mode="reflect")[None, None])):
        for steps in (10, 27):
            curves, a = region_perturbation(session, xn.copy(), amap, 4, steps, repl)
            cases.append(golden.case(f"region-{kind}-{steps}", "region-perturbation",
                                     {"morf": curves["morf"], "lerf": curves["lerf"]},
                                     ints={"class": CLASS, "steps": steps, "edge": 4},
                                     floats={"aopc_morf": a["morf"], "aopc_lerf": a["lerf"]},
                                     strings={"perturbation": kind, "peer": "numpy+onnxruntime"}))

    # Localisation with Quantus (volumes accepted for these metrics).
    mask = np.zeros((size, size, size), dtype=np.float32)
    mask[2:5, 3:7, 6:9] = 1
    mask[8:11, 8:10, 1:4] = 1
    peak = np.unravel_index(np.argmax(amap), amap.shape)
    hit_mask = mask.copy()
    hit_mask[peak] = 1
    for mname, m in (("miss", mask), ("hit", hit_mask)):
        kw = dict(model=model, x_batch=x.numpy(), y_batch=np.array([CLASS]), a_batch=amap[None, None], s_batch=m[None, None],
                  device="cpu", channel_first=True)
        opts = dict(disable_warnings=True, display_progressbar=False, abs=False, normalise=False)
        pg = quantus.PointingGame(**opts)(**kw)[0]
        rma = quantus.RelevanceMassAccuracy(**opts)(**kw)[0]
        rra = quantus.RelevanceRankAccuracy(**opts)(**kw)[0]
        cases.append(golden.case(f"localization-{mname}", "localization", {"mask": m},
                                 floats={"pointing": float(pg), "mass": float(rma), "rank": float(rra)},
                                 strings={"peer": "quantus"}))

    # Spearman with ties, SSIM 3D, Gaussian filter.
    for i, (n, levels) in enumerate(((40, 4), (200, 7), (1000, 11))):
        a = rng.integers(0, levels, n).astype(np.float32)
        b = (a + rng.integers(0, 3, n)).astype(np.float32)
        cases.append(golden.case(f"spearman-{i}", "spearman", {"a": a, "b": b},
                                 floats={"rho": float(scipy.stats.spearmanr(a, b).statistic)}))
    m1 = amap
    m2 = np.round(ndi.gaussian_filter(rng.random((size, size, size)), 1.0) + 0.5 * amap, 5).astype(np.float32)
    for name_, (p, q) in (("related", (m1, m2)), ("self", (m1, m1))):
        s = structural_similarity(normalize(p.astype(np.float64)), normalize(q.astype(np.float64)), data_range=1.0,
                                  gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
        cases.append(golden.case(f"ssim-{name_}", "ssim", {"a": p, "b": q}, floats={"ssim": float(s)}))
    field = np.round(rng.random((7, 12, 9)), 3)
    cases.append(golden.case("gaussian", "gaussian-filter",
                             {"x": field, "y": ndi.gaussian_filter(field, 2.0, mode="reflect")}, floats={"sigma": 2.0}))
    golden.write(OUT, "Scripts/make_eval_fixtures.py", versions, cases)


if __name__ == "__main__":
    main()
