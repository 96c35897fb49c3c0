"""Trains Voxplain's sample model: a small 3D nodule classifier with an HR-CAM head.

Run from the repository root after `swift build -c release`:
    python3 Scripts/train_sample_model.py [--voxplain .build/release/voxplain] [--scans 480] [--epochs 12]

Task (LUNA16-style candidate classification): is there a nodule at the centre of this 32 mm patch?
Positives are patches centred on a phantom nodule (jittered by up to 4 mm); negatives are centred on
random lung points at least 8 mm from every nodule's edge (they often hold vessels: hard negatives).
Each patch is made exactly as the model card tells Voxplain to: clip to [-1000, 400] HU and scale to
[0, 1]; resample the whole scan to 1 mm (trilinear, half-pixel centres, i.e. F.interpolate(size=...,
align_corners=False) with n' = round(n * s / 1)); take the 32^3 window whose centre voxel is the
point (start = round(r - 15.5) with r the point in resampled voxels), padding with 0 (air).
Training adds random flips.

Architecture (HR-CAM, Shinde et al. 2019): four stages of two 3x3x3 conv + BN + ReLU (8, 16, 32, 64
channels) at 32^3, 16^3, 8^3 and 4^3, max-pooling between stages. The head global-average-pools the
last feature map of every stage, concatenates the four vectors (120 features) and applies one linear
layer, so CAM over the concatenated levels is exactly HR-CAM. (A whole-scan classifier was tried first:
with global pooling over 48x48x64 voxels a 4-18 mm nodule is too small a fraction to learn from; and
without batch norm the default initialisation lets activations vanish through eight convolutions.)

Writes Volumes/sample-model.onnx (legacy exporter, opset 17, dynamic batch), Volumes/sample-model.json
(the model card), and prints held-out accuracy, which is also recorded in the card.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import nibabel as nib
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLIP = (-1000.0, 400.0)
SPACING = 1.0
SIZE = (32, 32, 32)  # (D, H, W) = NIfTI (i, j, k)


class HRCAMNet(nn.Module):
    """Four resolution stages; the head fuses the pooled features of every stage."""

    def __init__(self, widths=(8, 16, 32, 64), num_classes=2):
        super().__init__()
        self.stages = nn.ModuleList()
        c = 1
        for w in widths:
            self.stages.append(nn.Sequential(
                nn.Conv3d(c, w, 3, padding=1, bias=False), nn.BatchNorm3d(w), nn.ReLU(),
                nn.Conv3d(w, w, 3, padding=1, bias=False), nn.BatchNorm3d(w), nn.ReLU()))
            c = w
        self.pool = nn.MaxPool3d(2)
        self.fc = nn.Linear(sum(widths), num_classes)

    def forward(self, x):
        pooled = []
        for i, stage in enumerate(self.stages):
            if i > 0:
                x = self.pool(x)
            x = stage(x)
            pooled.append(F.adaptive_avg_pool3d(x, 1).flatten(1))
        return self.fc(torch.cat(pooled, dim=1))


def resampled(path):
    """The scan clipped, scaled and resampled to the model's spacing (the whole grid), and its geometry."""
    img = nib.load(path)
    vol = np.asarray(img.dataobj, dtype=np.float32)
    spacing = np.asarray(img.header.get_zooms()[:3], dtype=np.float64)
    vol = (np.clip(vol, *CLIP) - CLIP[0]) / (CLIP[1] - CLIP[0])
    size = [max(1, int(round(n * s / SPACING))) for n, s in zip(vol.shape, spacing)]
    t = F.interpolate(torch.from_numpy(vol)[None, None], size=size, mode="trilinear", align_corners=False)[0, 0]
    f = np.array(vol.shape, dtype=np.float64) / np.array(size, dtype=np.float64)
    return t, f, img.affine


def patch(t, f, voxel):
    """The SIZE window centred on a scan voxel, as Voxplain's Preprocessing cuts it."""
    out = torch.zeros(*SIZE)
    src, dst = [], []
    for a in range(3):
        r = (voxel[a] + 0.5) / f[a] - 0.5
        start = int(np.floor(r - (SIZE[a] - 1) / 2 + 0.5))  # Swift's rounded(): half away from zero
        lo, hi = max(0, start), min(t.shape[a], start + SIZE[a])
        if lo >= hi:
            return out
        src.append(slice(lo, hi)); dst.append(slice(lo - start, hi - start))
    out[tuple(dst)] = t[tuple(src)]
    return out


def lung_points(info, affine, rng, count, nodules):
    inv = np.linalg.inv(affine)
    pts = []
    for _ in range(2000):
        if len(pts) == count:
            break
        lung = info["lungs"][rng.integers(len(info["lungs"]))]
        c, s = np.array(lung["center_world_mm"]), np.array(lung["semi_axes_mm"])
        u = rng.uniform(-1, 1, 3)
        if (u ** 2).sum() > 0.7:
            continue
        w = c + u * s
        if all(np.linalg.norm(w - np.array(n["center_world_mm"])) > n["diameter_mm"] / 2 + 8 for n in nodules):
            pts.append((inv @ np.append(w, 1))[:3])
    return pts


def make_scans(voxplain, count, workdir, seed0):
    rng = np.random.default_rng(seed0)
    xs, ys = [], []
    for i in range(count):
        out = os.path.join(workdir, f"scan{seed0 + i}.nii.gz")
        subprocess.run([voxplain, "phantom", out, "--nodules", str(1 + i % 4), "--seed", str(seed0 + i)],
                       check=True, stdout=subprocess.DEVNULL)
        with open(out[:-7] + ".json") as fh:
            info = json.load(fh)
        t, f, affine = resampled(out)
        nodules = info["nodules"]
        for n in nodules:
            jitter = rng.uniform(-4, 4, 3) / np.array(info["spacing"])
            xs.append(patch(t, f, np.array(n["center_voxel"]) + jitter)); ys.append(1)
        for p in lung_points(info, affine, rng, len(nodules), nodules):
            xs.append(patch(t, f, p)); ys.append(0)
        os.remove(out)
        os.remove(out[:-7] + ".json")
    return torch.stack(xs)[:, None], torch.tensor(ys)


def augment(x, g):
    for d in (-3, -2, -1):
        if torch.rand(1, generator=g).item() < 0.5:
            x = torch.flip(x, dims=(d,))
    return x


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--voxplain", default=os.path.join(ROOT, ".build", "release", "voxplain"))
    ap.add_argument("--scans", type=int, default=160)
    ap.add_argument("--test", type=int, default=40)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--out", default=os.path.join(ROOT, "Volumes"))
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(2)
    cache = os.path.join(tempfile.gettempdir(), f"voxplain-patches-{args.scans}-{args.test}.pt")
    if os.path.exists(cache):  # the preprocessed scans of an earlier run with the same counts
        xtr, ytr, xte, yte = torch.load(cache)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            xtr, ytr = make_scans(args.voxplain, args.scans, tmp, 1000)
            xte, yte = make_scans(args.voxplain, args.test, tmp, 900000)
        torch.save((xtr, ytr, xte, yte), cache)
    print(f"data: {len(ytr)} training patches ({int(ytr.sum())} nodules) from {args.scans} scans, "
          f"{len(yte)} held-out patches from {args.test} other scans", flush=True)
    model = HRCAMNet()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs * ((len(ytr) + 15) // 16))
    g = torch.Generator().manual_seed(0)
    for epoch in range(args.epochs):
        model.train()
        perm = torch.randperm(len(ytr), generator=g)
        total, correct, loss_sum = 0, 0, 0.0
        for b in range(0, len(ytr), 16):
            idx = perm[b:b + 16]
            x = torch.stack([augment(xtr[i], g) for i in idx])
            y = ytr[idx]
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item() * len(idx)
            correct += (logits.argmax(1) == y).sum().item()
            total += len(idx)
        model.eval()
        with torch.no_grad():
            acc = (model(xte).argmax(1) == yte).float().mean().item()
        print(f"epoch {epoch + 1}: loss {loss_sum / total:.4f}, train acc {correct / total:.3f}, held-out acc {acc:.3f}", flush=True)
    model.eval()
    with torch.no_grad():
        pred = model(xte).argmax(1)
    acc = (pred == yte).float().mean().item()
    tp = int(((pred == 1) & (yte == 1)).sum()); tn = int(((pred == 0) & (yte == 0)).sum())
    sens, spec = tp / max(1, int((yte == 1).sum())), tn / max(1, int((yte == 0).sum()))
    os.makedirs(args.out, exist_ok=True)
    onnx_path = os.path.join(args.out, "sample-model.onnx")
    torch.onnx.export(model, (torch.zeros(1, 1, *SIZE),), onnx_path, dynamo=False, opset_version=17,
                      input_names=["image"], output_names=["logits"],
                      dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}})
    card = {
        "name": "voxplain-sample-nodule-classifier",
        "description": "Is there a lung nodule at the centre of this 32 mm chest CT patch? Trained on voxplain phantom scans by Scripts/train_sample_model.py. For demonstration only, not for clinical use.",
        "classes": ["no nodule", "nodule"],
        "input": {"size": list(SIZE), "spacing": [SPACING] * 3, "channels": 1},
        "intensity": {"clip": list(CLIP), "scale": [0.0, 1.0]},
        "pad_value": 0.0,
        "layers": {"hrcam": [f"stages.{i}" for i in range(4)], "default": "stages.3"},
        "hrcam_head": "fc",
        "training": {"scans": args.scans, "patches": len(ytr), "held_out_scans": args.test, "held_out_patches": len(yte), "epochs": args.epochs,
                     "held_out_accuracy": round(acc, 4), "sensitivity": round(sens, 4), "specificity": round(spec, 4),
                     "torch": torch.__version__},
    }
    with open(os.path.join(args.out, "sample-model.json"), "w") as f:
        json.dump(card, f, indent=2)
    print(f"held-out accuracy {acc:.3f} (sensitivity {sens:.3f}, specificity {spec:.3f}); wrote {onnx_path} "
          f"({os.path.getsize(onnx_path) / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
