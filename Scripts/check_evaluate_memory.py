"""Checks that `voxplain evaluate` keeps peak memory flat as the number of scans grows.

Run from the repository root after `swift build -c release`:
    python3 Scripts/check_evaluate_memory.py [--scans 2,5,10,20] [--methods gradcam,hrcam,occlusion]

It makes phantoms with nodules (as Scripts/make_evaluation_table.py does, reusing its folder), writes data
lists with the first N scans for each N, runs `voxplain evaluate Volumes/sample-model.onnx` on each list in
a fresh process, and prints each run's peak resident memory (the child's ru_maxrss) and wall time. Flat
means the peak does not grow with N: every scan's tensors are freed before the next one, and per-scan
results are kept as running sums and rows of numbers, not maps.
"""
import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--voxplain", default=os.path.join(ROOT, ".build", "release", "voxplain"))
    ap.add_argument("--scans", default="2,5,10,20")
    ap.add_argument("--methods", default="gradcam,hrcam,occlusion")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--work", default="/tmp/voxplain-eval")
    args = ap.parse_args()
    counts = [int(c) for c in args.scans.split(",")]
    os.makedirs(args.work, exist_ok=True)
    rows = {}
    for i in range(max(counts)):
        scan, mask = os.path.join(args.work, f"p{i:02d}.nii.gz"), os.path.join(args.work, f"p{i:02d}-mask.nii.gz")
        if not os.path.exists(scan):
            subprocess.run([args.voxplain, "phantom", scan, "--mask", mask, "--nodules", str(1 + i % 4), "--seed", str(5000 + i)],
                           check=True, stdout=subprocess.DEVNULL)
        info = json.load(open(scan[:-7] + ".json"))
        rows[i] = [f"{os.path.basename(scan)},{os.path.basename(mask)},nodule,{n['center_world_mm'][0]:.3f},"
                   f"{n['center_world_mm'][1]:.3f},{n['center_world_mm'][2]:.3f}" for n in info["nodules"]]
    print(f"{'scans':>5} {'patches':>7} {'peak MiB':>9} {'wall s':>7}")
    peaks = []
    for n in counts:
        lines = ["scan,mask,label,coordX,coordY,coordZ"] + [r for i in range(n) for r in rows[i]]
        data = os.path.join(args.work, f"memory-{n}.csv")
        with open(data, "w") as f:
            f.write("\n".join(lines) + "\n")
        out = os.path.join(args.work, f"memory-out-{n}")
        shutil.rmtree(out, ignore_errors=True)
        cmd = [sys.executable, "-c",
               "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)",
               args.voxplain, "evaluate", os.path.join(ROOT, "Volumes", "sample-model.onnx"), "--data", data,
               "--method", args.methods, "--steps", str(args.steps), "--truth-masks", "--out", out]
        t0 = time.time()
        peak_kib = int(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip())
        peaks.append(peak_kib / 1024)
        print(f"{n:5d} {len(lines) - 1:7d} {peak_kib / 1024:9.0f} {time.time() - t0:7.1f}")
    growth = peaks[-1] / peaks[0]
    print(f"peak at {counts[-1]} scans / peak at {counts[0]} scans: {growth:.2f}")
    sys.exit(0 if growth <= 1.25 else 1)


if __name__ == "__main__":
    main()
