#!/usr/bin/env python3
"""How far a paper-space search moved its policy from the uniform start.

    python3 tools/experiment/policy_stats.py runs/search-paper-seed0/checkpoint.safetensors [...]

Reads `policy.logits (105,)`, `policy.probabilities (105, 2)` and `policy.magnitudes (105, 2)`
from each search checkpoint (raw values; probabilities and magnitudes are clamped to [0, 1]
where they are used) and prints their ranges, the sub-policy weights softmax(logits) against
the uniform 1/105, and the ranges over the 25 heaviest sub-policies (what `policy.json`
exports). Also prints the search step the checkpoint was written at.
"""
import json
import struct
import sys

import numpy as np


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] != "F32":
            continue
        a, b = info["data_offsets"]
        tensors[name] = np.frombuffer(data[a:b], dtype="<f4").reshape(info["shape"])
    return header.get("__metadata__", {}), tensors


def describe(path, top_k=25):
    meta, t = read_safetensors(path)
    step = json.loads(meta["dada_state"])["step"] if "dada_state" in meta else "?"
    logits = t["policy.logits"]
    probs = np.clip(t["policy.probabilities"], 0.0, 1.0)
    mags = np.clip(t["policy.magnitudes"], 0.0, 1.0)
    w = np.exp(logits - logits.max())
    w /= w.sum()
    top = np.argsort(-w)[:top_k]
    rng = lambda a: f"{a.min():.2f}-{a.max():.2f}"
    print(f"{path} (step {step})")
    print(f"  all {len(w)}: probabilities {rng(probs)}, magnitudes {rng(mags)}, "
          f"weights {w.min():.4f}-{w.max():.4f} (uniform {1 / len(w):.4f})")
    print(f"  top {top_k}: probabilities {rng(probs[top])}, magnitudes {rng(mags[top])}")
    print(f"  mean |p - 0.5| {np.abs(probs - 0.5).mean():.3f}, mean |m - 0.5| {np.abs(mags - 0.5).mean():.3f}, "
          f"max weight / uniform {w.max() * len(w):.2f}")
    moved = lambda a: int((np.abs(a - 0.5) > 0.005).sum())
    print(f"  moved more than 0.005 from 0.5: {moved(mags)} of {mags.size} magnitudes, "
          f"{moved(probs)} of {probs.size} probabilities")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for p in sys.argv[1:]:
        describe(p)
