#!/usr/bin/env python3
"""Runs a criterion bench several times and prints each row's images/s as min / median / max.

This machine's speed drifts by 10-25% between runs minutes apart, so one run is not a figure:

    python3 tools/bench/repeat.py RUNS BENCH FILTER [BATCH]
    python3 tools/bench/repeat.py 3 ops 'cpu_ops/(candle_affine|fused_fwd_bwd)'

Each run is `cargo bench -p dada-benches --bench BENCH -- FILTER`; after it, every row's median
time per iteration is read from criterion's `target/criterion/<group>/<row>/new/estimates.json`
(only rows that run just wrote), and images/s is BATCH (default 128) over that time.
"""
import json
import os
import statistics
import subprocess
import sys
import time


def estimates(root, since):
    """Row id -> median ns per iteration, for estimates written after `since`."""
    rows = {}
    for dirpath, _, files in os.walk(root):
        if os.path.basename(dirpath) != "new" or "estimates.json" not in files:
            continue
        path = os.path.join(dirpath, "estimates.json")
        if os.path.getmtime(path) < since:
            continue
        with open(path) as f:
            median = json.load(f)["median"]["point_estimate"]
        row = os.path.relpath(os.path.dirname(dirpath), root)
        rows[row] = median
    return rows


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    runs, bench, pattern = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    batch = int(sys.argv[4]) if len(sys.argv) > 4 else 128
    root = os.path.join(os.path.dirname(__file__), "..", "..", "target", "criterion")
    per_row = {}
    for r in range(runs):
        start = time.time()
        cmd = ["cargo", "bench", "-q", "-p", "dada-benches", "--bench", bench, "--", pattern]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        found = estimates(root, start)
        if not found:
            sys.exit(f"run {r + 1}: no criterion estimates written for {pattern!r}")
        for row, ns in found.items():
            per_row.setdefault(row, []).append(batch / ns * 1e9)
        print(f"run {r + 1}/{runs}: {len(found)} rows", file=sys.stderr)
    print(f"| row ({runs} runs of `cargo bench -p dada-benches --bench {bench} -- '{pattern}'`) "
          "| min | median | max |")
    print("|---|---:|---:|---:|")
    for row in sorted(per_row):
        v = per_row[row]
        fmt = lambda x: f"{x / 1000:,.1f}k" if x >= 1000 else f"{x:,.0f}"
        print(f"| `{row}` | {fmt(min(v))} | {fmt(statistics.median(v))} | {fmt(max(v))} |")


if __name__ == "__main__":
    main()
