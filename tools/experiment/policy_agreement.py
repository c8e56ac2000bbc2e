#!/usr/bin/env python3
"""Do two paper-space searches move their policy the same way? And does a published policy move
the magnitudes that cannot matter as far as the others?

    python3 tools/experiment/policy_agreement.py A/checkpoint.safetensors B/checkpoint.safetensors

Two searches from the same uniform start on the same data follow the same expected gradient, so
whatever signal the search finds shows up as agreement between their moves; noise does not.
For the sub-policy logits (centred), the probabilities and the magnitudes it prints the Pearson
correlation of the two searches' moves away from the start over all entries with its 95%
interval (Fisher's z), the share of
entries moved more than 0.005 by both that moved in the same direction, and a two-sided
permutation p-value for the correlation (10,000 shuffles, fixed seed). Magnitudes of the
magnitude-free ops (`auto_contrast`, `invert`, `equalize`) are left out: their gradient is zero.

Then each search against the published DADA CIFAR-10 genotype, on the genotype's 25 pairs
(correlation of the moves). And, as a control, the published DADA CIFAR-10 genotype (read from
`crates/dada-train/src/known_policies.rs`, `DADA_CIFAR10`): the official search estimates a
magnitude's gradient with a straight-through trick that gives every op one, including the three
ops whose output ignores the magnitude. How far those moved from 0.5 is what the official
estimator's noise alone does; it is printed beside the magnitudes of the other ops.
Needs numpy.
"""
import os
import re
import sys
from itertools import combinations

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from policy_stats import read_safetensors  # noqa: E402

# The paper space's ops in policy order (`dada_policy::paper`), and its 105 pairs, lexicographic.
OPS = ["shear_x", "shear_y", "translate_x", "translate_y", "rotate", "auto_contrast", "invert",
       "equalize", "solarize", "posterize", "contrast", "color", "brightness", "sharpness", "cutout"]
MAGNITUDE_FREE = {"auto_contrast", "invert", "equalize"}
PAIRS = list(combinations(range(len(OPS)), 2))
KNOWN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../crates/dada-train/src/known_policies.rs")
OFFICIAL_NAMES = {"ShearX": "shear_x", "ShearY": "shear_y", "TranslateX": "translate_x",
                  "TranslateY": "translate_y", "Rotate": "rotate", "AutoContrast": "auto_contrast",
                  "Invert": "invert", "Equalize": "equalize", "Solarize": "solarize",
                  "Posterize": "posterize", "Contrast": "contrast", "Color": "color",
                  "Brightness": "brightness", "Sharpness": "sharpness", "Cutout": "cutout"}


def moves(path):
    _, t = read_safetensors(path)
    logits = t["policy.logits"].astype(np.float64)
    assert len(logits) == len(PAIRS), f"{path}: not a paper-space search ({len(logits)} sub-policies)"
    has_magnitude = np.array([[OPS[i] not in MAGNITUDE_FREE for i in pair] for pair in PAIRS])
    return {
        "logits": logits - logits.mean(),
        "probabilities": np.clip(t["policy.probabilities"], 0, 1).ravel() - 0.5,
        "magnitudes": (np.clip(t["policy.magnitudes"], 0, 1) - 0.5)[has_magnitude],
    }


def permutation_p(x, y, r, rng, n=10_000):
    null = np.array([np.corrcoef(x, rng.permutation(y))[0, 1] for _ in range(n)])
    return (np.sum(np.abs(null) >= abs(r)) + 1) / (n + 1)


def compare(a_path, b_path):
    a, b = moves(a_path), moves(b_path)
    rng = np.random.default_rng(0)
    print(f"A = {a_path}\nB = {b_path}")
    print(f"{'parameters':<15}{'entries':>8}{'r':>8}{'95% interval':>16}{'p (perm.)':>11}{'same direction':>22}")
    for name in ("logits", "probabilities", "magnitudes"):
        x, y = a[name], b[name]
        r = np.corrcoef(x, y)[0, 1]
        both = (np.abs(x) > 0.005) & (np.abs(y) > 0.005) if name != "logits" else np.ones_like(x, bool)
        same = np.mean(np.sign(x[both]) == np.sign(y[both]))
        z, se = np.arctanh(r), 1 / np.sqrt(len(x) - 3)
        low, high = np.tanh(z - 1.96 * se), np.tanh(z + 1.96 * se)
        print(f"{name:<15}{len(x):>8}{r:>8.3f}{f'{low:.2f} to {high:.2f}':>16}{permutation_p(x, y, r, rng):>11.3f}"
              f"{f'{same:.2f} of {both.sum()}':>22}")


def official_entries():
    text = open(KNOWN).read()
    block = re.search(r"pub const DADA_CIFAR10: \[GenotypeSubPolicy; 25\] = \[(.*?)\n\];", text, re.S).group(1)
    entries = re.findall(r'\("(\w+)", ([0-9.]+), ([0-9.]+)\)', block)
    assert len(entries) == 50, f"expected 50 entries in DADA_CIFAR10, read {len(entries)}"
    return entries


def official_agreement(path):
    """Our search against the published genotype on the genotype's 25 pairs (the same task:
    reduced CIFAR-10, WRN-40-2; the genotype's op order is ours, so its pairs are ours)."""
    _, t = read_safetensors(path)
    entries = official_entries()
    found = {"probabilities": ([], []), "magnitudes": ([], [])}
    for k in range(25):
        pair = tuple(OPS.index(OFFICIAL_NAMES[op]) for op, _, _ in entries[2 * k:2 * k + 2])
        row = PAIRS.index(pair)
        for j, (op, p, m) in enumerate(entries[2 * k:2 * k + 2]):
            found["probabilities"][0].append(float(p) - 0.5)
            found["probabilities"][1].append(t["policy.probabilities"][row, j] - 0.5)
            if OFFICIAL_NAMES[op] not in MAGNITUDE_FREE:
                found["magnitudes"][0].append(float(m) - 0.5)
                found["magnitudes"][1].append(t["policy.magnitudes"][row, j] - 0.5)
    cells = [f"{name} r = {np.corrcoef(x, y)[0, 1]:.3f} ({len(x)} entries)" for name, (x, y) in found.items()]
    print(f"  {path}: {', '.join(cells)}")


def official_control():
    entries = official_entries()
    free = np.array([float(m) for op, _, m in entries if OFFICIAL_NAMES[op] in MAGNITUDE_FREE])
    other = np.array([float(m) for op, _, m in entries if OFFICIAL_NAMES[op] not in MAGNITUDE_FREE])
    print("published DADA CIFAR-10 genotype, magnitudes:")
    for label, m in (("magnitude-free ops (output ignores it)", free), ("the other ops", other)):
        print(f"  {label:<40} {len(m):>2} entries, range {m.min():.2f}-{m.max():.2f}, "
              f"mean |m - 0.5| {np.abs(m - 0.5).mean():.3f}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    compare(sys.argv[1], sys.argv[2])
    print("\nagainst the published DADA CIFAR-10 genotype, on its 25 pairs:")
    for path in sys.argv[1:]:
        official_agreement(path)
    print()
    official_control()
