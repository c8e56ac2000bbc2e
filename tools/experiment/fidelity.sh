#!/usr/bin/env bash
# Does the search learn? The six-arm, three-seed experiment of docs/results.md (issue #16):
# two paper searches (per-batch and per-image draws, seed 0), then the reduced 40-epoch protocol
# for `baseline`, `cutout`, `random`, `dada`, `dada-per-image` and `dada-official` at seeds 0-2.
#
#   bash tools/experiment/fidelity.sh [LANES]
#
# LANES (default 2) independent queues run side by side, each with RAYON_NUM_THREADS=1 unless
# THREADS says otherwise; on a 16-core machine use e.g. LANES=8 THREADS=2. Each lane's queue
# starts with what the later runs need (a search before the runs that use its policy), and the
# arms that answer the question (dada against random) come first. Finished runs are skipped and
# interrupted ones resumed from their checkpoints, so the script can be stopped and run again.
# Output: runs/fidelity/{search-per-batch-seed0, search-per-image-seed0, <arm>-seed<N>}/.
# XTASK picks the binary (default: a release build of xtask, built first).
set -euo pipefail
cd "$(dirname "$0")/../.."
LANES=${1:-${LANES:-2}}
THREADS=${THREADS:-1}
ROOT=runs/fidelity
if [[ -z "${XTASK:-}" ]]; then
  cargo build -p xtask --release
  XTASK=target/release/xtask
fi
mkdir -p "$ROOT"
# A lane whose job fails leaves this mark, so lanes waiting for its search stop too.
STOP=$ROOT/.stopped
rm -f "$STOP"

SEARCH_PB=$ROOT/search-per-batch-seed0
SEARCH_PI=$ROOT/search-per-image-seed0
COMMON=(--model wrn-16-2 --data reduced --epochs 40 --batch-size 128 --lr 0.025 --warmup-epochs 2 --eval-every 10)

# One job: "search <draw> <out>" or "train <arm> <policy> <seed>".
run_job() {
  local kind=$1
  if [[ $kind == search ]]; then
    local draw=$2 out=$3
    if [[ -f $out/policy.json ]]; then echo "skip $out (done)"; return; fi
    echo "== search --draw $draw -> $out ($(date -u +%H:%M))"
    if [[ -f $out/checkpoint.safetensors ]]; then
      "$XTASK" search --resume "$out"
    else
      "$XTASK" search --preset paper --draw "$draw" --seed 0 --out "$out"
    fi
    [[ -f $out/policy.json ]] || { echo "search stopped in $out; run again to resume" >&2; return 130; }
  else
    local arm=$2 policy=$3 seed=$4 out=$ROOT/$2-seed$4
    if [[ -f $out/result.json ]]; then echo "skip $out (done)"; return; fi
    echo "== train $policy seed $seed -> $out ($(date -u +%H:%M))"
    if [[ -f $out/checkpoint.safetensors ]]; then
      "$XTASK" train --resume "$out"
    else
      "$XTASK" train --policy "$policy" "${COMMON[@]}" --seed "$seed" --out "$out"
    fi
    [[ -f $out/result.json ]] || { echo "stopped in $out; run again to resume" >&2; return 130; }
  fi
}

# The jobs in order of what they answer: each seed's `dada` and `random` first, so with two
# lanes they run side by side. A lane takes every LANES-th job; a run that needs a search
# another lane is still running waits for its policy.
JOBS=(
  "search per-batch $SEARCH_PB"
  "search per-image $SEARCH_PI"
  "train dada dada:$SEARCH_PB/policy.json 0"
  "train random random 0"
  "train dada-per-image dada:$SEARCH_PI/policy.json 0"
  "train dada-official dada-official:cifar10 0"
  "train dada dada:$SEARCH_PB/policy.json 1"
  "train random random 1"
  "train dada-per-image dada:$SEARCH_PI/policy.json 1"
  "train dada-official dada-official:cifar10 1"
  "train dada dada:$SEARCH_PB/policy.json 2"
  "train random random 2"
  "train dada-per-image dada:$SEARCH_PI/policy.json 2"
  "train dada-official dada-official:cifar10 2"
  "train baseline baseline 0"
  "train cutout cutout 0"
  "train baseline baseline 1"
  "train cutout cutout 1"
  "train baseline baseline 2"
  "train cutout cutout 2"
)

lane() {
  local l=$1 i
  for ((i = l; i < ${#JOBS[@]}; i += LANES)); do
    local job=(${JOBS[$i]})
    # A dada run needs its search, which another lane may still be running.
    if [[ ${job[0]} == train && ${job[2]} == dada:* ]]; then
      while [[ ! -f ${job[2]#dada:} ]]; do
        [[ -f $STOP ]] && { echo "another lane stopped before ${job[2]#dada:} was written" >&2; return 130; }
        sleep 30
      done
    fi
    RAYON_NUM_THREADS=$THREADS run_job "${job[@]}" || { local rc=$?; touch "$STOP"; return $rc; }
  done
}

pids=()
for ((l = 0; l < LANES; l++)); do
  lane "$l" > "$ROOT/lane$l.log" 2>&1 &
  pids+=($!)
done
status=0
for p in "${pids[@]}"; do wait "$p" || status=$?; done
echo "lanes finished (status $status); logs in $ROOT/lane*.log"
exit $status
