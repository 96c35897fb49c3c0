"""Checks Voxplain's heatmaps in the viewers' own library: nibabel (what FSLeyes and many pipelines use).

Run from the repository root after `voxplain demo --out DIR` (or `voxplain explain ... --out DIR/maps`):
    python3 Scripts/check_heatmaps_nibabel.py DIR

For every heatmap in DIR/maps (or DIR), it loads the scan named in report.json and the map with nibabel
and checks: same shape, same affine (nibabel's precedence), same sform and qform with their codes,
float32 data in [0, 1] without NaN, the hottest voxel inside the grid, and for the demo (a phantom with
its JSON) how far the hottest voxel lies from the nearest true nodule, in mm. Exits 1 on any mismatch.
"""
import glob
import json
import os
import sys

import nibabel as nib
import numpy as np


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "demo-out"
    maps_dir = os.path.join(root, "maps") if os.path.isdir(os.path.join(root, "maps")) else root
    report = json.load(open(os.path.join(maps_dir, "report.json")))
    scan = nib.load(report["input"]["path"])
    nodules = []
    info = report["input"]["path"].replace(".nii.gz", ".json")
    if os.path.exists(info):
        nodules = [np.array(n["center_world_mm"]) for n in json.load(open(info)).get("nodules", [])]
    bad = 0
    files = sorted(glob.glob(os.path.join(maps_dir, "*.nii.gz")))
    for path in files:
        m = nib.load(path)
        data = np.asarray(m.dataobj)
        checks = {
            "shape": m.shape == scan.shape,
            "affine": np.allclose(m.affine, scan.affine, atol=1e-5),
            "sform": np.allclose(m.get_sform(), scan.get_sform(), atol=1e-5)
                     and int(m.header["sform_code"]) == int(scan.header["sform_code"]),
            "qform": np.allclose(m.get_qform(), scan.get_qform(), atol=1e-4)
                     and int(m.header["qform_code"]) == int(scan.header["qform_code"]),
            "float32": data.dtype == np.float32,
            "finite": bool(np.isfinite(data).all()),
        }
        if not path.endswith("-raw.nii.gz"):
            checks["range"] = float(data.min()) >= 0 and float(data.max()) <= 1
        peak = np.unravel_index(int(np.argmax(data)), data.shape)
        world = scan.affine @ np.array([*peak, 1.0])
        extra = ""
        if nodules:
            extra = f", peak {min(np.linalg.norm(world[:3] - c) for c in nodules):.1f} mm from the nearest nodule"
        ok = all(checks.values())
        bad += not ok
        failed = [k for k, v in checks.items() if not v]
        print(f"{'OK  ' if ok else 'FAIL'} {os.path.basename(path)}: {m.shape} {data.dtype} "
              f"'{m.header['descrip'].tobytes().decode(errors='replace').rstrip(chr(0))}'{extra}"
              + (f"  failed: {failed}" if failed else ""))
    print(f"{len(files) - bad}/{len(files)} heatmaps have the scan's shape and affine ({scan.shape}, "
          f"{nib.aff2axcodes(scan.affine)})")
    sys.exit(1 if bad or not files else 0)


if __name__ == "__main__":
    main()
