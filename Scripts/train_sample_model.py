"""Trains Voxplain's sample model: a small 3D nodule classifier with an HR-CAM head.

Run from the repository root after `swift build -c release`:
    python3 Scripts/train_sample_model.py [--voxplain .build/release/voxplain] [--scans 480] [--epochs 12]

Data: `voxplain phantom` chest CTs (seeded), half with 1-4 nodules and half with none; the task is
"does this scan contain a nodule". Each scan is preprocessed exactly as the model card below tells
Voxplain to: clip to [-1000, 400] HU and scale to [0, 1]; resample to 2 mm isotropic (trilinear,
half-pixel centres, i.e. F.interpolate(size=..., align_corners=False)); centre crop or pad to
48 x 48 x 64 (the phantom's field of view at 2 mm) with 0 (air). Training adds small random shifts (rolls of up to 4 voxels) and flips.

Architecture (HR-CAM, Shinde et al. 2019): four stages of two 3x3x3 conv + ReLU (8, 16, 32, 64
channels; no batch norm: with batch norm the eval-mode model collapsed to one class on held-out scans
while training accuracy rose, a running-statistics mismatch on this small data set) at full, 1/2, 1/4 and 1/8 resolution, max-pooling between stages. The head global-average-pools the
last feature map of every stage, concatenates the four vectors (120 features) and applies one linear
layer, so CAM over the concatenated levels is exactly HR-CAM.

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
SPACING = 2.0
SIZE = (48, 48, 64)  # (D, H, W) = NIfTI (i, j, k): the phantom field of view at 2 mm


class HRCAMNet(nn.Module):
    """Four resolution stages; the head fuses the pooled features of every stage."""

    def __init__(self, widths=(8, 16, 32, 64), num_classes=2):
        super().__init__()
        self.stages = nn.ModuleList()
        c = 1
        for w in widths:
            self.stages.append(nn.Sequential(
                nn.Conv3d(c, w, 3, padding=1), nn.ReLU(),
                nn.Conv3d(w, w, 3, padding=1), nn.ReLU()))
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


def preprocess(path):
    """The model card's preprocessing, as Voxplain's Geometry implements it."""
    img = nib.load(path)
    vol = np.asarray(img.dataobj, dtype=np.float32)
    spacing = np.asarray(img.header.get_zooms()[:3], dtype=np.float64)
    vol = (np.clip(vol, *CLIP) - CLIP[0]) / (CLIP[1] - CLIP[0])
    size = [max(1, int(round(n * s / SPACING))) for n, s in zip(vol.shape, spacing)]
    t = F.interpolate(torch.from_numpy(vol)[None, None], size=size, mode="trilinear", align_corners=False)[0, 0]
    out = torch.zeros(*SIZE)
    src, dst = [], []
    for n, m in zip(size, SIZE):  # centre crop or pad, the same offsets as Voxplain: floor(|n - m| / 2)
        if n >= m:
            a = (n - m) // 2
            src.append(slice(a, a + m)); dst.append(slice(0, m))
        else:
            a = (m - n) // 2
            src.append(slice(0, n)); dst.append(slice(a, a + n))
    out[tuple(dst)] = t[tuple(src)]
    return out


def make_scans(voxplain, count, workdir, seed0):
    xs, ys = [], []
    for i in range(count):
        nodules = 0 if i % 2 == 0 else 1 + (i // 2) % 4
        out = os.path.join(workdir, f"scan{seed0 + i}.nii.gz")
        subprocess.run([voxplain, "phantom", out, "--nodules", str(nodules), "--seed", str(seed0 + i)],
                       check=True, stdout=subprocess.DEVNULL)
        xs.append(preprocess(out))
        ys.append(1 if nodules > 0 else 0)
        os.remove(out)
    return torch.stack(xs)[:, None], torch.tensor(ys)


def augment(x, g):
    shifts = torch.randint(-4, 5, (3,), generator=g).tolist()
    x = torch.roll(x, shifts=shifts, dims=(-3, -2, -1))
    for d in (-3, -2, -1):
        if torch.rand(1, generator=g).item() < 0.5:
            x = torch.flip(x, dims=(d,))
    return x


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--voxplain", default=os.path.join(ROOT, ".build", "release", "voxplain"))
    ap.add_argument("--scans", type=int, default=320)
    ap.add_argument("--test", type=int, default=80)
    ap.add_argument("--epochs", type=int, default=14)
    ap.add_argument("--out", default=os.path.join(ROOT, "Volumes"))
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(2)
    cache = os.path.join(tempfile.gettempdir(), f"voxplain-train-{args.scans}-{args.test}.pt")
    if os.path.exists(cache):  # the preprocessed scans of an earlier run with the same counts
        xtr, ytr, xte, yte = torch.load(cache)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            xtr, ytr = make_scans(args.voxplain, args.scans, tmp, 1000)
            xte, yte = make_scans(args.voxplain, args.test, tmp, 900000)
        torch.save((xtr, ytr, xte, yte), cache)
    print(f"data: {len(ytr)} training scans ({int(ytr.sum())} with nodules), {len(yte)} held out", flush=True)
    model = HRCAMNet()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=args.epochs * ((len(ytr) + 15) // 16))
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
        "description": "Does a chest CT contain a lung nodule? Trained on voxplain phantom scans by Scripts/train_sample_model.py. For demonstration only, not for clinical use.",
        "classes": ["no nodule", "nodule"],
        "input": {"size": list(SIZE), "spacing": [SPACING] * 3, "channels": 1},
        "intensity": {"clip": list(CLIP), "scale": [0.0, 1.0]},
        "crop": "center",
        "pad_value": 0.0,
        "layers": {"hrcam": [f"stages.{i}" for i in range(4)], "default": "stages.3"},
        "hrcam_head": "fc",
        "training": {"scans": len(ytr), "held_out": len(yte), "epochs": args.epochs,
                     "held_out_accuracy": round(acc, 4), "sensitivity": round(sens, 4), "specificity": round(spec, 4),
                     "torch": torch.__version__},
    }
    with open(os.path.join(args.out, "sample-model.json"), "w") as f:
        json.dump(card, f, indent=2)
    print(f"held-out accuracy {acc:.3f} (sensitivity {sens:.3f}, specificity {spec:.3f}); wrote {onnx_path} "
          f"({os.path.getsize(onnx_path) / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
