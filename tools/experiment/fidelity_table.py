#!/usr/bin/env python3
"""The table of record of docs/results.md for the six-arm experiment (tools/experiment/fidelity.sh).

    python3 tools/experiment/fidelity_table.py [RUNS_DIR]     # default runs/fidelity

Reads <arm>-seed<N>/result.json (test accuracy after the last epoch) and history.csv (training
accuracy of the last epoch). Prints, per arm, each seed, the mean and sample standard deviation
over the seeds that finished, and the paired difference against `random` (same seed: same
4,000 images, initialisation and batch order), with its mean and standard deviation.
"""
import json
import statistics
import sys
from pathlib import Path

ARMS = ["baseline", "cutout", "random", "dada", "dada-per-image", "dada-official"]
SEEDS = [0, 1, 2]


def result(root, arm, seed):
    d = root / f"{arm}-seed{seed}"
    f = d / "result.json"
    if not f.exists():
        return None
    acc = 100 * json.loads(f.read_text())["test_accuracy"]
    rows = (d / "history.csv").read_text().strip().splitlines()
    header = rows[0].split(",")
    train = 100 * float(rows[-1].split(",")[header.index("train_acc")])
    return acc, train


def mean_sd(xs):
    if not xs:
        return ""
    if len(xs) == 1:
        return f"{xs[0]:.2f} (1 seed)"
    return f"{statistics.mean(xs):.2f} ± {statistics.stdev(xs):.2f}" + ("" if len(xs) == len(SEEDS) else f" ({len(xs)} seeds)")


def main() -> None:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/fidelity")
    res = {(a, s): result(root, a, s) for a in ARMS for s in SEEDS}
    print("| arm | " + " | ".join(f"seed {s}" for s in SEEDS)
          + " | mean ± sd | paired diff. vs `random` (points) | final train acc. (mean) |")
    print("|---|" + "---:|" * (len(SEEDS) + 3))
    for arm in ARMS:
        cells = [f"{res[arm, s][0]:.2f}%" if res[arm, s] else "(not run)" for s in SEEDS]
        accs = [res[arm, s][0] for s in SEEDS if res[arm, s]]
        trains = [res[arm, s][1] for s in SEEDS if res[arm, s]]
        diffs = [res[arm, s][0] - res["random", s][0] for s in SEEDS if res[arm, s] and res["random", s]]
        if arm == "random":
            diff = "-"
        elif diffs:
            diff = ("+" if statistics.mean(diffs) >= 0 else "") + mean_sd(diffs)
        else:
            diff = ""
        ms = mean_sd(accs)
        print(f"| `{arm}` | " + " | ".join(cells) + f" | {'**' + ms + '**' if ms else ''} | {diff} | "
              + (f"{statistics.mean(trains):.1f}%" if trains else "") + " |")


if __name__ == "__main__":
    main()
