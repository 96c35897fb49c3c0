"""Shared writer for golden fixtures read by Sources/_TestSupport/Golden.swift.

Format: {"generator": str, "versions": {lib: version}, "cases": [
    {"name", "op", "ints": {k: [int]}, "floats": {k: [float]}, "strings": {k: str},
     "tensors": {k: {"shape": [int], "data": [float]}}}]}
Float32 values are written with repr() of the float32 value, which round-trips exactly.
"""
import json
import os

import numpy as np


def tensor(a):
    a = np.ascontiguousarray(np.asarray(a, dtype=np.float32))
    return {"shape": list(a.shape), "data": [float(v) for v in a.reshape(-1)]}


def case(name, op, tensors, ints=None, floats=None, strings=None):
    return {
        "name": name,
        "op": op,
        "ints": {k: [int(x) for x in (v if isinstance(v, (list, tuple)) else [v])] for k, v in (ints or {}).items()},
        "floats": {k: [float(x) for x in (v if isinstance(v, (list, tuple)) else [v])] for k, v in (floats or {}).items()},
        "strings": dict(strings or {}),
        "tensors": {k: tensor(v) for k, v in tensors.items()},
    }


def write(path, generator, versions, cases):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"generator": generator, "versions": versions, "cases": cases}, f, separators=(",", ":"))
    os.replace(tmp, path)
    print(f"wrote {path}: {len(cases)} cases, {os.path.getsize(path) / 1024:.1f} KiB")
