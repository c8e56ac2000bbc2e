#!/usr/bin/env bash
# Builds the workspace with `--features cuda` on a machine without a system CUDA toolkit.
#   tools/cuda/build.sh -p xtask        # = cargo build --release --features cuda -p xtask
#   tools/cuda/build.sh --check         # = cargo check -p xtask --features cuda
# With a system toolkit (nvcc on PATH), plain `cargo build --release --features cuda` works.
#
# What it does: installs the pinned CUDA 13.0.2 wheels (nvcc, headers, cudart, cuBLAS, cuRAND,
# NVRTC) in a venv under $DADA_CUDA_HOME (default ~/.cache/dada-cuda), makes a CUDA root whose
# lib/ holds the unversioned link names the linker asks for, builds a link-time stub
# libcuda.so (the real one comes with the driver on the GPU machine), sets NVCC, CUDA_ROOT and
# CUDA_COMPUTE_CAP (default 90: H100/H200), and runs cargo.
#
# Why 13.0: the GPU machines run driver 580 (CUDA 13.0); PTX from a newer nvcc does not load
# on an older driver. candle 0.9.2 pulls cudarc 0.19, which knows CUDA 13.0.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
W=${DADA_CUDA_HOME:-$HOME/.cache/dada-cuda}
mkdir -p "$W"
if [ ! -x "$W/venv/bin/python" ] || ! "$W/venv/bin/python" -c "import nvidia" 2>/dev/null; then
  python3 -m venv "$W/venv"
  "$W/venv/bin/pip" install -q "cuda-toolkit[nvcc,crt,nvvm,cccl,cudart,cublas,curand,nvrtc]==13.0.2"
fi
CU13=$("$W/venv/bin/python" -c "import nvidia,os;print(os.path.join(list(nvidia.__path__)[0],'cu13'))")
root="$W/cuda-root"
mkdir -p "$root/lib"
for pair in libcublas.so:libcublas.so.13 libcublasLt.so:libcublasLt.so.13 libcudart.so:libcudart.so.13 \
            libcurand.so:libcurand.so.10 libnvrtc.so:libnvrtc.so.13; do
  ln -sfn "$CU13/lib/${pair#*:}" "$root/lib/${pair%%:*}"
done
[ -e "$root/lib/libcuda.so" ] || sh "$here/make-libcuda-stub.sh" "$CU13/include" "$root/lib"
ln -sfn "$CU13/include" "$root/include"
export PATH="$CU13/bin:$PATH" NVCC="$CU13/bin/nvcc" CUDA_ROOT="$root"
export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}
export LIBRARY_PATH="$root/lib${LIBRARY_PATH:+:$LIBRARY_PATH}"
unset CUDA_HOME CUDA_PATH CUDA_TOOLKIT_ROOT_DIR || true
echo "tools/cuda/build.sh: nvcc $("$NVCC" --version | grep -o 'release [0-9.]*'), CUDA_ROOT=$CUDA_ROOT, CUDA_COMPUTE_CAP=$CUDA_COMPUTE_CAP" >&2
cd "$here/../.."
if [ "${1:-}" = "--check" ]; then
  shift
  exec cargo check -p xtask --features cuda "$@"
fi
exec cargo build --release --features cuda "$@"
