#!/usr/bin/env python3
"""Test accuracy along each run of a folder of `train` runs, for docs/results.md.

    python3 tools/experiment/curves.py runs/reduced-long

One row per run folder with a result.json: the test accuracy at every evaluated epoch, the
final training accuracy (on the run's own augmented batches) and the final test accuracy.
"""
import csv
import json
import sys
from pathlib import Path


def main() -> None:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/reduced-long")
    runs = sorted(p for p in root.iterdir() if (p / "result.json").exists())
    if not runs:
        sys.exit(f"no finished runs in {root}")
    curves = {}
    for run in runs:
        with open(run / "history.csv") as f:
            rows = list(csv.DictReader(f))
        curves[run.name] = (rows, json.loads((run / "result.json").read_text()))
    epochs = sorted({int(r["epoch"]) for rows, _ in curves.values() for r in rows if r["test_acc"]})
    print("| run | " + " | ".join(f"epoch {e}" for e in epochs) + " | final train acc. |")
    print("|---|" + "---:|" * (len(epochs) + 1))
    for name, (rows, result) in curves.items():
        by_epoch = {int(r["epoch"]): r for r in rows}
        cells = [f"{100 * float(by_epoch[e]['test_acc']):.2f}%" if e in by_epoch and by_epoch[e]["test_acc"] else "" for e in epochs]
        if cells:
            cells[-1] = f"**{100 * result['test_accuracy']:.2f}%**"
        print(f"| `{name}` | " + " | ".join(cells) + f" | {100 * float(rows[-1]['train_acc']):.1f}% |")


if __name__ == "__main__":
    main()
