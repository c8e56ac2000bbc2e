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
    print("| policy | " + " | ".join(f"seed {s}" for s in seeds) + " | mean | final train acc. (mean) |")
    print("|---|" + "---:|" * (len(seeds) + 2))
    for arm in ARMS:
        accs, cells, train_accs = [], [], []
        for s in seeds:
            f = root / f"{arm}-seed{s}" / "result.json"
            if f.exists():
                r = json.loads(f.read_text())
                accs.append(100 * r["test_accuracy"])
                cells.append(f"{100 * r['test_accuracy']:.2f}%")
                rows = (root / f"{arm}-seed{s}" / "history.csv").read_text().strip().splitlines()
                header = rows[0].split(",")
                train_accs.append(100 * float(rows[-1].split(",")[header.index("train_acc")]))
            else:
                cells.append("(not run)")
        mean = f"**{statistics.mean(accs):.2f}%**" if accs else ""
        if accs and len(accs) < len(seeds):
            mean += f" ({len(accs)} of {len(seeds)} seeds)"
        train = f"{statistics.mean(train_accs):.1f}%" if train_accs else ""
        print(f"| `{arm}` | " + " | ".join(cells) + f" | {mean} | {train} |")


if __name__ == "__main__":
    main()
