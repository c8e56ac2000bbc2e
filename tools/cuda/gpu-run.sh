#!/usr/bin/env bash
# The whole GPU check in one script, for a GPU machine with no Rust toolchain (driver 580,
# PyTorch 2.11 cu130 installed). Prepare on the build machine:
#   tools/cuda/build.sh -p xtask
#   mkdir -p gpu-carry && xz -T2 -9 -c target/release/xtask > gpu-carry/xtask.xz
#   cp ../shared/datasets/cifar10-imagefolder.tar.gz gpu-carry/
# then run `bash tools/cuda/gpu-run.sh` there with gpu-carry/ beside it (git-ignored); it writes
# its log and reports under $OUT (default gpu-out/).
# Steps: nvidia-smi; the CUDA 13 libraries of the installed PyTorch on LD_LIBRARY_PATH; `ldd`
# fails fast; gpu-check (every op, mixture, models vs the CPU; search twice; train); CIFAR-10
# import; `search --quick` timed; the paper search for 50 steps timed; a short train; the
# PyTorch WRN-40-2 anchor and our `wrn_step`-equivalent timing side by side.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
exec > >(tee "$OUT/log.txt") 2>&1
C=gpu-carry
nvidia-smi || { echo "no GPU"; exit 1; }
LIB=$(python3 -c "import nvidia,os;print(os.path.join(list(nvidia.__path__)[0],'cu13','lib'))" 2>/dev/null)
export LD_LIBRARY_PATH="$LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
xz -d -c "$C/xtask.xz" > "$C/xtask" && chmod +x "$C/xtask"
if ldd "$C/xtask" | grep 'not found'; then echo "missing libraries"; exit 1; fi
X="$C/xtask"
export DADA_CIFAR10_ARCHIVE="$PWD/$C/cifar10-imagefolder.tar.gz"
t() { local s=$(date +%s.%N); "$@"; local rc=$?; echo "wall $(echo "$(date +%s.%N) - $s" | bc) s, rc $rc: $*"; }
t "$X" gpu-check --device cuda --report "$OUT/gpu-check.json"
t "$X" datasets cifar10 --data-dir "$OUT/data"
t "$X" search --quick --device cuda --data-dir "$OUT/data" --out "$OUT/search-quick"
t "$X" search --device cuda --data-dir "$OUT/data" --epochs 4 --out "$OUT/search-paper-4ep"   # 4 x 15 = 60 steps
t "$X" train --device cuda --model wrn-40-2 --data reduced --epochs 2 --data-dir "$OUT/data" --out "$OUT/train"
python3 benches/anchors/wrn.py --device cuda --batch 128 --eval-batch 512 | tee "$OUT/pytorch-wrn.jsonl"
echo done
