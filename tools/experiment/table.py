#!/usr/bin/env python3
"""Prints the markdown table of docs/results.md from runs/reduced/<policy>-seed<N>/result.json.

    python3 tools/experiment/table.py [RUNS_DIR]
"""
import json
import statistics
import sys
from pathlib import Path

ARMS = ["none", "baseline", "cutout", "autoaugment", "dada"]


def main() -> None:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/reduced")
    seeds = sorted({int(p.name.rsplit("seed", 1)[1]) for p in root.glob("*-seed*") if (p / "result.json").exists()})
    print("| policy | " + " | ".join(f"seed {s}" for s in seeds) + " | mean | train wall (mean) |")
    print("|---|" + "---:|" * (len(seeds) + 2))
    for arm in ARMS:
        accs, walls, cells = [], [], []
        for s in seeds:
            f = root / f"{arm}-seed{s}" / "result.json"
            if f.exists():
                r = json.loads(f.read_text())
                accs.append(100 * r["test_accuracy"])
                walls.append(r["wall_secs"])
                cells.append(f"{100 * r['test_accuracy']:.2f}%")
            else:
                cells.append("(not run)")
        mean = f"**{statistics.mean(accs):.2f}%**" if accs else ""
        wall = f"{statistics.mean(walls) / 60:.1f} min" if walls else ""
        print(f"| `{arm}` | " + " | ".join(cells) + f" | {mean} | {wall} |")


if __name__ == "__main__":
    main()
