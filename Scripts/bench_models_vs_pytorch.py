"""Whole-model and explanation benchmarks: Voxplain against PyTorch and MONAI, in the same run.

Run from the repository root after `swift build -c release`:
    python3 Scripts/bench_models_vs_pytorch.py [--voxplain .build/release/voxplain] [--quick]

For a VGG-style 3D CNN at 64^3, MONAI's 3D ResNet-18 at 128^3 and MONAI's 3D DenseNet-121 at 96^3
(Scripts/models3d.py, batch norms with non-trivial statistics), it exports each model to ONNX in a
temporary folder, then, model by model, times in PyTorch (CPU, 2 threads):
  - the forward pass (torch.no_grad, eval),
  - MONAI's GradCAM and GradCAMpp at the last feature layer,
  - on the VGG model, a batched 3D Score-CAM (torch-cam's ScoreCAM, batch 16) on its 128-channel layer,
and runs `voxplain bench --model` on the ONNX file (on the VGG model also `--scorecam --aopc`: Score-CAM
with its peak resident memory, and AOPC of 100 steps against 100 single forward passes), and prints both with the ratios and the issue
targets (PASS/FAIL). Timings are best-of-N; these shared machines vary up to 2x between runs, so only
ratios within one run mean anything.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from models3d import bench_models, conv_flops, randomize_batchnorm  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAYERS = {"vgg3d": "features", "resnet18": "layer4", "densenet121": "class_layers.relu"}


def best(reps, fn):
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def torch_side(name, model, size, reps, scorecam):
    from monai.visualize import GradCAM, GradCAMpp

    x = torch.randn(1, 1, size, size, size, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        model(x)
        fwd = best(reps, lambda: model(x))
    layer = LAYERS[name]
    gc = GradCAM(nn_module=model, target_layers=layer)
    gcpp = GradCAMpp(nn_module=model, target_layers=layer)
    gc(x, class_idx=0)
    out = {"forward": fwd,
           "gradcam": best(max(1, reps - 1), lambda: gc(x, class_idx=0)),
           "gradcampp": best(max(1, reps - 1), lambda: gcpp(x, class_idx=0))}
    if scorecam:
        from torchcam.methods import ScoreCAM

        module = dict(model.named_modules())[layer]
        t0 = time.perf_counter()
        with ScoreCAM(model, target_layer=module, input_shape=tuple(x.shape[1:]), batch_size=16) as extractor:
            with torch.no_grad():
                scores = model(x)
            extractor(0, scores)
        out["scorecam"] = time.perf_counter() - t0
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--voxplain", default=os.path.join(ROOT, ".build", "release", "voxplain"))
    ap.add_argument("--quick", action="store_true", help="fewer repetitions")
    ap.add_argument("--only", default=None, help="one model: vgg3d, resnet18 or densenet121")
    args = ap.parse_args()
    torch.set_num_threads(2)
    reps = 2 if args.quick else 3
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, model, size in bench_models():
            if args.only and name != args.only:
                continue
            model = randomize_batchnorm(model.eval())
            path = os.path.join(tmp, f"{name}.onnx")
            torch.onnx.export(model, (torch.zeros(1, 1, size, size, size),), path, dynamo=False, opset_version=17,
                              input_names=["image"], output_names=["logits"])
            scorecam = name == "vgg3d"
            t = torch_side(name, model, size, reps, scorecam)
            cmd = [args.voxplain, "bench", "--model", path, "--reps", str(reps), "--json"] + (["--scorecam", "--aopc"] if scorecam else [])
            ours = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)["models"][0]
            rows.append((name, size, conv_flops(model, size) / 1e9, t, ours))
            print(f"measured {name}", file=sys.stderr, flush=True)
    print(f"{'model':12} {'GFLOP':>7} | {'torch fwd s':>11} {'ours fwd s':>10} {'ratio':>6} | "
          f"{'MONAI GradCAM s':>15} {'ours s':>7} {'ratio':>6} | {'MONAI GradCAM++ s':>17} {'ours s':>7} {'ratio':>6} | "
          f"{'ours GradCAM/fwd':>16}")
    checks = []
    for name, size, gflop, t, o in rows:
        fwd, gc, gcpp = o["forwardMs"] / 1e3, o["gradcamMs"] / 1e3, o["gradcamppMs"] / 1e3
        print(f"{name + ' ' + str(size):12} {gflop:7.1f} | {t['forward']:11.3f} {fwd:10.3f} {t['forward'] / fwd:6.2f} | "
              f"{t['gradcam']:15.3f} {gc:7.3f} {t['gradcam'] / gc:6.2f} | {t['gradcampp']:17.3f} {gcpp:7.3f} "
              f"{t['gradcampp'] / gcpp:6.2f} | {gc / fwd:16.2f}")
        checks += [(f"{name}: forward >= 1.5x PyTorch", t["forward"] / fwd >= 1.5, t["forward"] / fwd),
                   (f"{name}: Grad-CAM <= 1.2x our forward", gc / fwd <= 1.2, gc / fwd),
                   (f"{name}: Grad-CAM >= 4x MONAI", t["gradcam"] / gc >= 4, t["gradcam"] / gc),
                   (f"{name}: Grad-CAM++ >= 4x MONAI", t["gradcampp"] / gcpp >= 4, t["gradcampp"] / gcpp)]
        if "scorecam" in t and o.get("scorecamMs"):
            sc = o["scorecamMs"] / 1e3
            print(f"  Score-CAM on {o['layer']} ({o['layerChannels']} channels): torch-cam batch 16 {t['scorecam']:.2f} s, "
                  f"ours {sc:.2f} s ({o['scorecamPasses']} passes), ratio {t['scorecam'] / sc:.2f}; "
                  f"our peak resident memory during Score-CAM {o.get('scorecamPeakMiB') or o['peakMemoryMiB']:.0f} MiB "
                  f"(budget {o.get('memoryBudgetMiB') or 2048:.0f} MiB)")
            checks.append((f"{name}: Score-CAM >= 3x batched PyTorch", t["scorecam"] / sc >= 3, t["scorecam"] / sc))
            if o.get("scorecamPeakMiB"):
                checks.append((f"{name}: Score-CAM peak resident memory within its budget (MiB)",
                               o["scorecamPeakMiB"] <= o["memoryBudgetMiB"], o["scorecamPeakMiB"]))
        if o.get("aopcMs"):
            print(f"  AOPC, MoRF + LeRF of 100 steps ({o['aopcPasses']} passes): incremental {o['aopcMs'] / 1e3:.2f} s, "
                  f"one curve = {o['aopcPerCurveOver100Forward']:.2f} x 100 forward passes; batched whole passes "
                  f"{o['aopcBatchedMs'] / 1e3:.2f} s ({o['aopcBatchedPerCurveOver100Forward']:.2f} x)")
            checks.append((f"{name}: AOPC with 100 steps <= 100 forward passes (x)", o["aopcPerCurveOver100Forward"] <= 1,
                           o["aopcPerCurveOver100Forward"]))
    print()
    for label, ok, value in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {label}  ({value:.2f})")


if __name__ == "__main__":
    main()
