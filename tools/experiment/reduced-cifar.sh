#!/usr/bin/env bash
# The reduced-CIFAR-10 experiment of docs/results.md: five policies x two seeds, WRN-16-2,
# 4,000 training images, the full 10,000-image test set.
#
#   bash tools/experiment/reduced-cifar.sh [POLICY_JSON]
#
# POLICY_JSON defaults to the policy of the full paper search, `cargo xtask search --seed 0`
# (runs/search-paper-seed0/policy.json). A run whose result.json exists is skipped, so the
# script can be started again after an interruption. XTASK picks the binary (default: a
# release build of xtask, built first).
set -euo pipefail
cd "$(dirname "$0")/../.."
POLICY_JSON=${1:-runs/search-paper-seed0/policy.json}
if [[ -z "${XTASK:-}" ]]; then
  cargo build -p xtask --release
  XTASK=target/release/xtask
fi
[[ -f "$POLICY_JSON" ]] || { echo "no policy at $POLICY_JSON: run \`cargo xtask search\` first" >&2; exit 1; }

# WRN-16-2, 15 epochs at batch 128 (lr 0.025 warmed up x4 to 0.1 over 2 epochs, then cosine
# to 0), weight decay 2e-4, clip 5, test accuracy every 5 epochs.
COMMON=(--model wrn-16-2 --data reduced --epochs 15 --batch-size 128 --lr 0.025 --warmup-epochs 2 --eval-every 5)
for seed in 0 1; do
  for policy in none baseline cutout autoaugment "dada:$POLICY_JSON"; do
    name=${policy%%:*}
    out=runs/reduced/$name-seed$seed
    if [[ -f $out/result.json ]]; then echo "skip $out (done)"; continue; fi
    resume=()
    [[ -f $out/checkpoint.safetensors ]] && resume=(--resume "$out")
    echo "== $policy seed $seed -> $out"
    "$XTASK" train --policy "$policy" "${COMMON[@]}" --seed "$seed" --out "$out" "${resume[@]}"
    # Ctrl-C makes `train` write a checkpoint and exit normally: stop the whole experiment then
    [[ -f $out/result.json ]] || { echo "stopped in $out; run this script again to resume" >&2; exit 130; }
  done
done
