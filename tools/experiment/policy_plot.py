#!/usr/bin/env python3
"""Plots how far paper-space searches moved their policy from the uniform start.

    python3 tools/experiment/policy_plot.py OUT.png LABEL=runs/.../checkpoint.safetensors [...]

One column per search: the 105 sub-policy weights softmax(logits) as a multiple of uniform
(1/105), then the magnitudes and the probabilities of both ops of every sub-policy, each
sorted, against the starting value 0.5. Needs numpy and matplotlib.
"""
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from policy_stats import read_safetensors  # noqa: E402


def main() -> None:
    if len(sys.argv) < 3 or any("=" not in a for a in sys.argv[2:]):
        sys.exit(__doc__)
    out, runs = sys.argv[1], [a.split("=", 1) for a in sys.argv[2:]]
    fig, axes = plt.subplots(3, len(runs), figsize=(4.2 * len(runs), 8.4), squeeze=False, sharey="row")
    for col, (label, path) in enumerate(runs):
        meta, t = read_safetensors(path)
        step = json.loads(meta["dada_state"])["step"] if "dada_state" in meta else "?"
        logits = t["policy.logits"]
        w = np.exp(logits - logits.max())
        w /= w.sum()
        rows = [
            ("sub-policy weight / uniform", np.sort(w * len(w))[::-1], 1.0),
            ("magnitude (both ops)", np.sort(np.clip(t["policy.magnitudes"], 0, 1).ravel())[::-1], 0.5),
            ("probability (both ops)", np.sort(np.clip(t["policy.probabilities"], 0, 1).ravel())[::-1], 0.5),
        ]
        for row, (name, values, start) in enumerate(rows):
            ax = axes[row][col]
            ax.bar(np.arange(len(values)), values - start, bottom=start, width=1.0, color="#4477aa")
            ax.axhline(start, color="black", lw=0.8, ls="--", label="start (uniform)")
            ax.set_xlim(-0.5, len(values) - 0.5)
            if row == 0:
                ax.set_title(f"{label} (step {step})", fontsize=10)
            if col == 0:
                ax.set_ylabel(name)
            ax.set_xlabel("sorted, largest first" if row == 2 else "")
        axes[0][col].legend(fontsize=8, loc="upper right")
    axes[1][0].set_ylim(0.3, 0.7)
    axes[2][0].set_ylim(0.3, 0.7)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
