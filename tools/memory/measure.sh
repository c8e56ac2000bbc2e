#!/usr/bin/env bash
# Peak resident memory of short search and training runs, beside the estimate the command
# line checks before a run starts. Usage: tools/memory/measure.sh [xtask binary]
# Prints: run, model, batch, peak RSS (MiB), RSS once the dataset is loaded (MiB), estimate (MiB).
set -euo pipefail
cd "$(dirname "$0")/../.."
X=${1:-target/release/xtask}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
peak() { /usr/bin/time -f "%M" "$@" 2>&1 >/dev/null | tail -1; }
# The resident memory once the dataset is loaded: the peak of the same command refused by
# --max-memory 1 right after loading.
base() { { /usr/bin/time -f "%M" "$X" "$@" --max-memory 1 2>&1 >/dev/null || true; } | tail -1; }
printf "%-7s %-9s %6s %10s %10s %10s\n" run model batch peak_MiB loaded_MiB estimate_MiB
while read -r run model batch extra; do
  [ -z "$run" ] && continue
  case $run in
    train) args=(train --model "$model" --batch-size "$batch" --epochs 1 --n-train $((2 * batch)) --policy cutout $extra) ;;
    search) args=(search --model "$model" --batch-size "$batch" --epochs 1 --n-train $((2 * batch)) --n-val "$batch" $extra) ;;
  esac
  p=$(peak "$X" "${args[@]}" --out "$OUT/$run-$model-$batch")
  b=$(base "${args[@]}" --out "$OUT/base-$run-$model-$batch")
  e=$({ "$X" "${args[@]}" --out "$OUT/est-$run-$model-$batch" --max-memory 1 2>&1 || true; } | sed -n 's/.*needs about \([0-9.]*\) GiB.*/\1/p')
  printf "%-7s %-9s %6s %10.0f %10.0f %10.0f\n" "$run" "$model" "$batch" "$((p / 1024))" "$((b / 1024))" "$(echo "$e * 1024" | bc -l)"
done <<'RUNS'
train tiny-cnn 256
train wrn-16-2 128
train wrn-40-2 128
train wrn-40-2 256
train resnet18 64
search tiny-cnn 128
search wrn-40-2 64
search wrn-40-2 128
RUNS
