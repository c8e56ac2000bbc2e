#!/usr/bin/env bash
# The 40-epoch protocol of docs/results.md: the reduced-CIFAR-10 experiment of
# reduced-cifar.sh at 40 epochs instead of 15, the five arms at seeds 0 and 1, in the order
# they were run (cutout and dada first). Output: runs/reduced-long/<arm>-seed<N>/.
#
#   bash tools/experiment/reduced-cifar-long.sh [POLICY_JSON]
#
# Finished runs are skipped and interrupted ones resumed, as in reduced-cifar.sh. XTASK picks
# the binary (default: a release build of xtask, built first).
set -euo pipefail
cd "$(dirname "$0")/../.."
POLICY_JSON=${1:-runs/search-paper-seed0/policy.json}
if [[ -z "${XTASK:-}" ]]; then
  cargo build -p xtask --release
  XTASK=target/release/xtask
fi
[[ -f "$POLICY_JSON" ]] || { echo "no policy at $POLICY_JSON: run \`cargo xtask search\` first" >&2; exit 1; }

COMMON=(--model wrn-16-2 --data reduced --epochs 40 --batch-size 128 --lr 0.025 --warmup-epochs 2 --eval-every 10)
for run in "cutout 0" "dada:$POLICY_JSON 0" "baseline 0" "cutout 1" "dada:$POLICY_JSON 1" \
  "autoaugment 0" "baseline 1" "autoaugment 1" "none 0" "none 1"; do
  policy=${run% *}
  seed=${run##* }
  name=${policy%%:*}
  out=runs/reduced-long/$name-seed$seed
  if [[ -f $out/result.json ]]; then echo "skip $out (done)"; continue; fi
  resume=()
  [[ -f $out/checkpoint.safetensors ]] && resume=(--resume "$out")
  echo "== $policy seed $seed -> $out"
  "$XTASK" train --policy "$policy" "${COMMON[@]}" --seed "$seed" --out "$out" "${resume[@]}"
  [[ -f $out/result.json ]] || { echo "stopped in $out; run this script again to resume" >&2; exit 130; }
done
