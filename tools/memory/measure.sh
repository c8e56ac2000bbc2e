#!/usr/bin/env bash
# Peak resident memory of short search and training runs, beside the estimate the command
# line checks before a run starts. Usage: tools/memory/measure.sh [xtask binary]
# Prints: run, model, batch, peak RSS (MiB), RSS once the dataset is loaded (MiB), estimate (MiB).
set -euo pipefail
cd "$(dirname "$0")/../.."
X=${1:-target/release/xtask}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
# A slice of the prepared CIFAR-10 (data/cifar-10-batches-bin): 1,000 training images per
# batch file and 600 test images, so that the test evaluation at each run's end is short. The
# peak does not depend on the test set's size, only on the evaluation's batch.
python3 - "$OUT/data" <<'PY'
import json, os, sys
src, dst = "data/cifar-10-batches-bin", os.path.join(sys.argv[1], "memcheck")
os.makedirs(dst)
meta = json.load(open(os.path.join(src, "dada-meta.json")))
meta.update(name="memcheck", source="tools/memory/measure.sh", sizes={})
for f, n in [(f"data_batch_{k}.bin", 1000) for k in range(1, 6)] + [("test_batch.bin", 600)]:
    data = open(os.path.join(src, f), "rb").read()[: n * 3073]
    open(os.path.join(dst, f), "wb").write(data)
    meta["sizes"][f] = len(data)
open(os.path.join(dst, "batches.meta.txt"), "w").write("\n".join(meta["classes"]) + "\n")
json.dump(meta, open(os.path.join(dst, "dada-meta.json"), "w"))
PY
D=(--data-dir "$OUT/data" --dataset memcheck)
peak() { /usr/bin/time -f "%M" "$@" 2>&1 >/dev/null | tail -1; }
# The resident memory once the dataset is loaded: the peak of the same command refused by
# --max-memory 1 right after loading.
base() { { /usr/bin/time -f "%M" "$X" "$@" --max-memory 1 2>&1 >/dev/null || true; } | tail -1; }
printf "%-7s %-9s %6s %10s %10s %10s\n" run model batch peak_MiB loaded_MiB estimate_MiB
while read -r run model batch extra; do
  [ -z "$run" ] && continue
  case $run in
    train) args=(train --model "$model" --batch-size "$batch" --epochs 1 --n-train $((2 * batch)) --policy cutout "${D[@]}" $extra) ;;
    search) args=(search --model "$model" --batch-size "$batch" --epochs 1 --n-train $((2 * batch)) --n-val "$batch" "${D[@]}" $extra) ;;
  esac
  p=$(peak "$X" "${args[@]}" --out "$OUT/$run-$model-$batch")
  b=$(base "${args[@]}" --out "$OUT/base-$run-$model-$batch")
  e=$({ "$X" "${args[@]}" --out "$OUT/est-$run-$model-$batch" --max-memory 1 2>&1 || true; } | sed -n 's/.*needs about \([0-9.]*\) GiB.*/\1/p')
  printf "%-7s %-9s %6s %10.0f %10.0f %10.0f\n" "$run" "$model" "$batch" "$((p / 1024))" "$((b / 1024))" "$(echo "$e * 1024" | bc -l)"
done <<'RUNS'
train tiny-cnn 256
train wrn-16-2 128
train wrn-16-2 1024
train wrn-40-2 128
train wrn-40-2 1024
train resnet18 64
train resnet18 512
search tiny-cnn 128
search wrn-40-2 64
search wrn-40-2 256
RUNS
