"""NIfTI fixtures for Tests/NIfTITests, written and described by nibabel; and a checker of Voxplain's files.

    python3 Scripts/make_nifti_fixtures.py                # writes Tests/Fixtures/nifti/*.nii[.gz] + expected.json
    python3 Scripts/make_nifti_fixtures.py --check DIR    # reads Voxplain-written files in DIR with nibabel

Fixtures are tiny (5x4x3 voxels). expected.json holds, per file, what nibabel reads: shape, voxels
(get_fdata, i fastest), affine (nibabel's precedence), sform/qform and codes, zooms, scaling, axis codes.
Non-finite numbers are written as the strings "NaN", "Infinity", "-Infinity".

--check DIR: for every NAME.json in DIR that names a "file" (the JSON `voxplain inspect --json` prints,
or one written by a Voxplain test, optionally with "voxels" in i-fastest order), reads that file with
nibabel and compares shape, datatype, spacing, affine, sform/qform codes (and matrices when present),
voxels, and intensity statistics. Prints one line per file and exits non-zero on any mismatch.
"""
import argparse
import glob
import gzip
import json
import math
import os
import sys

import nibabel as nib
import numpy as np
from nibabel.orientations import aff2axcodes

OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "Fixtures", "nifti")
SHAPE = (5, 4, 3)


def num(x):
    x = float(x)
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    return x


def ramp(dtype, shape=SHAPE, lo=None, hi=None):
    """Values spanning much of the dtype's range (so byte order and sign matter), i-fastest distinct."""
    n = int(np.prod(shape))
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        lo = info.min if lo is None else lo
        hi = min(info.max, 2**24) if hi is None else hi
        vals = np.linspace(lo, hi, n).round().astype(dtype)
    else:
        vals = np.linspace(-1000.5 if lo is None else lo, 3000.25 if hi is None else hi, n).astype(dtype)
    return vals.reshape(shape, order="F")


def oblique(angle_deg=20.0, zooms=(0.8, 0.9, 1.5), origin=(-10.0, 25.0, 40.0)):
    a = math.radians(angle_deg)
    rot = np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])
    b = math.radians(10)
    rot = rot @ np.array([[1, 0, 0], [0, math.cos(b), -math.sin(b)], [0, math.sin(b), math.cos(b)]])
    aff = np.eye(4)
    aff[:3, :3] = rot @ np.diag(zooms)
    aff[:3, 3] = origin
    return aff


def describe(path, img, volume=None):
    hdr = img.header
    data = img.get_fdata(dtype=np.float64)
    volumes = 1 if data.ndim < 4 else data.shape[3]
    if data.ndim == 4:
        data = data[..., 0 if volume is None else volume]
    # nibabel moves the file's scaling from the loaded header to the array proxy: read the raw header.
    with nib.openers.ImageOpener(path) as f:
        slope, inter = type(hdr).from_fileobj(f).get_slope_inter()
    sform, scode = hdr.get_sform(coded=True)
    qform, qcode = hdr.get_qform(coded=True)
    return {
        "file": os.path.basename(path),
        "format": 2 if isinstance(hdr, nib.Nifti2Header) else 1,
        "shape": list(data.shape) + [1] * (3 - data.ndim),
        "volumes": volumes,
        "volume": volume,
        "datatype": str(hdr.get_data_dtype().newbyteorder("=")),
        "big_endian": hdr.endianness == ">",
        "voxels": [num(v) for v in data.reshape(-1, order="F")],
        "affine": img.affine.tolist(),
        "sform": None if sform is None else sform.tolist(),
        "sform_code": int(scode),
        "qform": None if qform is None else qform.tolist(),
        "qform_code": int(qcode),
        "spacing": [float(z) for z in hdr.get_zooms()[:3]],
        "slope": None if slope is None else float(slope),
        "intercept": None if inter is None else float(inter),
        "axcodes": "".join(c if c is not None else "?" for c in aff2axcodes(img.affine)),
        "description": hdr["descrip"].item().decode(),
        "intent_code": int(hdr["intent_code"]),
        "cal_min": float(hdr["cal_min"]),
        "cal_max": float(hdr["cal_max"]),
        "xyz_units": int(hdr["xyzt_units"]) & 7,
    }


def save(img, name):
    path = os.path.join(OUT, name)
    nib.save(img, path)
    return path


def make():
    os.makedirs(OUT, exist_ok=True)
    for f in glob.glob(os.path.join(OUT, "*.nii*")):
        os.remove(f)
    cases = []  # (path, volume or None)
    bad = []    # (file, expected words in the error)

    # Geometry: oblique sform (code 2) with a different qform (code 1): sform wins.
    img = nib.Nifti1Image(ramp(np.float32), oblique())
    img.set_qform(oblique(35, origin=(1.0, 2.0, 3.0)), code=1)
    img.set_sform(oblique(), code=2)
    img.header["descrip"] = b"oblique sform, other qform"
    cases.append((save(img, "oblique_sform.nii.gz"), None))

    # qform only (sform code 0).
    img = nib.Nifti1Image(ramp(np.int16), None)
    img.set_qform(oblique(-30, zooms=(1.1, 1.2, 2.0), origin=(50.0, -60.0, 70.0)), code=1)
    img.set_sform(None, code=0)
    cases.append((save(img, "qform_only.nii"), None))

    # pixdim only: no sform, no qform -> nibabel's centred, x-flipped default.
    hdr = nib.Nifti1Header()
    hdr.set_data_dtype(np.uint8)
    img = nib.Nifti1Image(ramp(np.uint8), None, hdr)
    img.header.set_zooms((0.5, 2.0, 3.0))
    img.set_qform(None, code=0)
    img.set_sform(None, code=0)
    cases.append((save(img, "pixdim_only.nii"), None))

    # scl_slope 0: no scaling (values as stored), written byte by byte.
    hdr = nib.Nifti1Header()
    hdr.set_data_dtype(np.int16)
    hdr.set_data_shape(SHAPE)
    hdr.set_sform(oblique(-10), code=1)
    hdr["scl_slope"], hdr["scl_inter"], hdr["vox_offset"] = 0, 7, 352
    path = os.path.join(OUT, "slope_zero.nii")
    with open(path, "wb") as f:
        f.write(hdr.binaryblock + b"\0\0\0\0" + ramp(np.dtype("<i2")).tobytes(order="F"))
    cases.append((path, None))

    # int16 CT with slope and intercept, LPS-like orientation (scanner code).
    lps = np.array([[-0.7, 0, 0, 120.0], [0, -0.7, 0, 90.0], [0, 0, 1.25, -300.0], [0, 0, 0, 1]])
    raw = ramp(np.int16, lo=-500, hi=2000)
    img = nib.Nifti1Image(raw, lps)
    img.header.set_xyzt_units("mm", "sec")
    img.header["descrip"] = b"CT with scl_slope 2.5, scl_inter -1024"
    path = os.path.join(OUT, "ct_scaled.nii.gz")
    _save_raw(img, raw, path, 2.5, -1024.0)
    cases.append((path, None))

    # The same CT uncompressed.
    path = os.path.join(OUT, "ct_scaled.nii")
    _save_raw(img, raw, path, 2.5, -1024.0)
    cases.append((path, None))

    # NIfTI-2, float64, plain and gz.
    img = nib.Nifti2Image(ramp(np.float64), oblique(5))
    img.set_qform(oblique(5), code=1)
    cases.append((save(img, "nifti2.nii.gz"), None))
    cases.append((save(img, "nifti2.nii"), None))

    # Every supported datatype (uncompressed; RAS diagonal affine with an origin).
    ras = np.array([[1.5, 0, 0, -3.0], [0, 1.0, 0, -2.0], [0, 0, 2.0, 5.0], [0, 0, 0, 1]])
    for dt in [np.uint8, np.int8, np.int16, np.uint16, np.int32, np.uint32, np.float32, np.float64]:
        hdr = nib.Nifti1Header()
        hdr.set_data_dtype(dt)
        img = nib.Nifti1Image(ramp(dt), ras, hdr)
        img.header.set_slope_inter(1.0, 0.0)
        cases.append((save(img, f"dtype_{np.dtype(dt).name}.nii"), None))

    # Big-endian int16.
    hdr = nib.Nifti1Header(endianness=">")
    hdr.set_data_dtype(np.int16)
    img = nib.Nifti1Image(ramp(np.int16).astype(">i2"), ras, hdr)
    cases.append((save(img, "bigendian_int16.nii"), None))

    # NaN and Inf voxels.
    data = ramp(np.float32)
    data[0, 0, 0], data[1, 0, 0], data[2, 1, 2] = np.nan, np.inf, -np.inf
    cases.append((save(nib.Nifti1Image(data, ras), "nan_inf.nii"), None))

    # 4D with one volume (read as 3D), and with three (needs a volume index).
    cases.append((save(nib.Nifti1Image(ramp(np.float32, shape=SHAPE + (1,)), ras), "t1.nii.gz"), None))
    four = ramp(np.int16, shape=SHAPE + (3,))
    path = save(nib.Nifti1Image(four, ras), "t3.nii.gz")
    cases.append((path, 0))
    cases.append((path, 2))
    bad.append(("t3.nii.gz", "3 volumes"))

    # Unsupported datatypes.
    save(nib.Nifti1Image(ramp(np.float32).astype(np.complex64), ras), "complex64.nii")
    bad.append(("complex64.nii", "unsupported datatype"))
    rgb = np.zeros(SHAPE, dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    save(nib.Nifti1Image(rgb, ras), "rgb24.nii")
    bad.append(("rgb24.nii", "unsupported datatype"))

    expected = {
        "generator": "Scripts/make_nifti_fixtures.py",
        "versions": {"nibabel": nib.__version__, "numpy": np.__version__},
        "files": [describe(p, nib.load(p), v) for p, v in cases],
        "bad": [{"file": f, "contains": c} for f, c in bad],
        "orientations": orientation_cases(),
    }
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
    total = sum(os.path.getsize(p) for p in glob.glob(os.path.join(OUT, "*")))
    print(f"wrote {len(glob.glob(os.path.join(OUT, '*.nii*')))} files + expected.json to {OUT} ({total / 1024:.1f} KiB)")


def _save_raw(img, raw, path, slope, inter):
    """Saves int16 `raw` with the given scl_slope/scl_inter (nibabel would otherwise rescale)."""
    hdr = img.header.copy()
    hdr.set_data_dtype(np.int16)
    out = nib.Nifti1Image(raw, img.affine, hdr)
    out.header.set_slope_inter(slope, inter)
    out.set_qform(img.affine, code=1)
    out.set_sform(img.affine, code=1)
    # Build bytes by hand so the stored ints are exactly `raw`.
    h = out.header.copy()
    h.set_data_shape(raw.shape)
    h["vox_offset"] = 352
    blob = h.binaryblock + b"\0\0\0\0" + np.asarray(raw, dtype="<i2" if h.endianness == "<" else ">i2").tobytes(order="F")
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(blob)
    back = nib.load(path)
    assert np.array_equal(np.asarray(back.dataobj.get_unscaled()), raw)
    assert (back.dataobj.slope, back.dataobj.inter) == (slope, inter)


def orientation_cases():
    rng = np.random.default_rng(7)
    cases = []
    affs = [np.eye(4), np.diag([-1, -1, 1, 1.0]), np.diag([-0.7, 0.7, -2, 1.0]),
            np.array([[0, 0, 1, 0], [-1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1.0]]),
            oblique(45), oblique(44.9), oblique(-60), np.diag([1, 0, 1, 1.0]), np.diag([0, 0, 0, 1.0])]
    for _ in range(30):
        a = np.eye(4)
        a[:3, :3] = rng.normal(size=(3, 3))
        a[:3, 3] = rng.normal(size=3) * 50
        affs.append(a)
    for a in affs:
        codes = "".join(c if c is not None else "?" for c in aff2axcodes(a))
        cases.append({"affine": a.tolist(), "axcodes": codes})
    return cases


def close(a, b, rtol=1e-5, atol=1e-4):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=True)


def unnum(x):
    if isinstance(x, str):
        return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}[x]
    return math.nan if x is None else x


def check(directory):
    failures = 0
    files = sorted(glob.glob(os.path.join(directory, "*.json")))
    checked = 0
    for jpath in files:
        with open(jpath) as f:
            exp = json.load(f)
        if not isinstance(exp, dict) or "file" not in exp:
            continue
        path = exp["file"] if os.path.isabs(exp["file"]) else os.path.join(directory, os.path.basename(exp["file"]))
        img = nib.load(path)
        hdr = img.header
        problems = []
        data = img.get_fdata(dtype=np.float64)
        if data.ndim == 4:
            data = data[..., exp.get("volume") or 0]
        shape = list(data.shape) + [1] * (3 - data.ndim)
        if shape != exp["dims"]:
            problems.append(f"shape {shape} != {exp['dims']}")
        if "datatype" in exp and str(hdr.get_data_dtype().newbyteorder("=")) != exp["datatype"]:
            problems.append(f"datatype {hdr.get_data_dtype()} != {exp['datatype']}")
        if not close(hdr.get_zooms()[:3], exp["spacing"]):
            problems.append(f"zooms {hdr.get_zooms()[:3]} != {exp['spacing']}")
        if not close(img.affine, exp["affine"]):
            problems.append(f"affine {img.affine.tolist()} != {exp['affine']}")
        sform, scode = hdr.get_sform(coded=True)
        qform, qcode = hdr.get_qform(coded=True)
        if int(scode) != exp["sform_code"] or int(qcode) != exp["qform_code"]:
            problems.append(f"codes sform {scode} qform {qcode} != {exp['sform_code']} {exp['qform_code']}")
        if exp.get("sform") is not None and scode > 0 and not close(sform, exp["sform"]):
            problems.append("sform differs")
        if exp.get("qform") is not None and qcode > 0 and not close(qform, exp["qform"]):
            problems.append("qform differs")
        if "orientation" in exp:
            codes = "".join(c or "?" for c in aff2axcodes(img.affine))
            if codes != exp["orientation"]:
                problems.append(f"axcodes {codes} != {exp['orientation']}")
        if "description" in exp and hdr["descrip"].item().decode() != exp["description"]:
            problems.append(f"descrip {hdr['descrip'].item()!r} != {exp['description']!r}")
        flat = data.reshape(-1, order="F")
        if "voxels" in exp:
            ref = np.array([unnum(v) for v in exp["voxels"]], dtype=np.float64)
            if not close(flat, ref, rtol=1e-6, atol=1e-6):
                problems.append(f"voxels differ (max |diff| {np.nanmax(np.abs(flat - ref)):.3g})")
        st = exp.get("intensity")
        if st:
            fin = flat[np.isfinite(flat)]
            got = {"min": fin.min(), "max": fin.max(), "mean": fin.mean(), "std": fin.std(),
                   "nan": int(np.isnan(flat).sum()), "inf": int(np.isinf(flat).sum())}
            for key in ["min", "max", "mean", "std"]:
                # mean/std accumulate in Double on both sides; 1e-6 relative covers summation order.
                if not close(got[key], st[key], rtol=1e-6, atol=1e-6):
                    problems.append(f"{key} {got[key]} != {st[key]}")
            for key in ["nan", "inf"]:
                if got[key] != st[key]:
                    problems.append(f"{key} count {got[key]} != {st[key]}")
            for p, v in st.get("percentiles", {}).items():
                ref = np.percentile(fin, float(p.lstrip("p")))
                if not close(ref, v, rtol=1e-6, atol=1e-6):
                    problems.append(f"percentile {p} {ref} != {v}")
        checked += 1
        status = "OK " if not problems else "FAIL"
        print(f"{status} {os.path.basename(path)}: nibabel {tuple(shape)} {hdr.get_data_dtype()} "
              f"codes s{int(scode)}/q{int(qcode)} {''.join(c or '?' for c in aff2axcodes(img.affine))}"
              + ("" if not problems else " -- " + "; ".join(problems)))
        failures += bool(problems)
    if checked == 0:
        print(f"no JSON naming a file in {directory}")
        return 1
    print(f"{checked - failures}/{checked} files match nibabel")
    return 1 if failures else 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", metavar="DIR")
    args = ap.parse_args()
    sys.exit(check(args.check) if args.check else make())
