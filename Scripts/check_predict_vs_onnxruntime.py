"""Checks `voxplain predict` against ONNX Runtime on the sample model and phantom scans.

Run from the repository root after `swift build -c release`:
    python3 Scripts/check_predict_vs_onnxruntime.py [--voxplain .build/release/voxplain] [--scans 5]

For each phantom (made by `voxplain phantom`) and each point (every nodule centre and two lung points),
Voxplain preprocesses the scan itself (model card: clip, scale, resample to 1 mm, 32^3 patch around
the point) and runs its engine; the script builds the same patch with the training script's own
numpy/PyTorch preprocessing and runs ONNX Runtime on it. Agreement of the logits therefore checks the
preprocessing and the engine together. Prints every pair and the largest difference; exits 1 above
1e-4 relative to the largest logit magnitude.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnxruntime as ort

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_sample_model import lung_points, patch, resampled  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--voxplain", default=os.path.join(ROOT, ".build", "release", "voxplain"))
    ap.add_argument("--model", default=os.path.join(ROOT, "Volumes", "sample-model.onnx"))
    ap.add_argument("--scans", type=int, default=5)
    args = ap.parse_args()
    sess = ort.InferenceSession(args.model, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    worst = 0.0
    rows = 0
    with tempfile.TemporaryDirectory() as tmp:
        for s in range(args.scans):
            scan = os.path.join(tmp, f"p{s}.nii.gz")
            subprocess.run([args.voxplain, "phantom", scan, "--nodules", "3", "--seed", str(777 + s)], check=True,
                           stdout=subprocess.DEVNULL)
            info = json.load(open(scan[:-7] + ".json"))
            t, f, affine = resampled(scan)
            points = [np.array(n["center_voxel"]) for n in info["nodules"]]
            points += lung_points(info, affine, rng, 2, info["nodules"])
            for p in points:
                voxel = ",".join(f"{v:.6f}" for v in p)
                out = subprocess.run([args.voxplain, "predict", args.model, scan, "--center-voxel", voxel, "--json"],
                                     check=True, capture_output=True, text=True).stdout
                ours = np.array(json.loads(out)["logits"], dtype=np.float64)
                x = patch(t, f, p).numpy()[None, None].astype(np.float32)
                theirs = sess.run(None, {sess.get_inputs()[0].name: x})[0][0].astype(np.float64)
                diff = np.abs(ours - theirs).max() / max(1e-6, np.abs(theirs).max())
                worst = max(worst, diff)
                rows += 1
                print(f"scan {s} voxel [{voxel}]: voxplain {np.round(ours, 5).tolist()}  onnxruntime "
                      f"{np.round(theirs, 5).tolist()}  rel diff {diff:.2e}")
    print(f"{rows} predictions, largest difference {worst:.2e} relative to the largest logit (tolerance 1e-4)")
    sys.exit(0 if worst <= 1e-4 else 1)


if __name__ == "__main__":
    main()
