#!/usr/bin/env bash
# `make cuda-build`: ptr-server with `--features cuda` (server, trainer, eval: one binary), built
# on a machine with no GPU and no NVIDIA installer. The CUDA 13.0 toolkit comes from PyPI wheels
# (the versions PyTorch 2.11 pins, so the library names match a PyTorch GPU venv); libcuda, which
# belongs to the driver, is replaced at link time by a stub made from cudarc's symbol list.
# Output: $DIST/ptr-server-cuda.xz (stripped, xz) and its NEEDED libraries. See README "Run on a GPU".
#   CUDA_COMPUTE_CAP  GPU generation the kernels are built for (default 90: H100/H200)
#   CU_ROOT           where the toolkit is unpacked (~1.2 GB; downloaded once, ~650 MB)
#   CUDA_TARGET_DIR   its own target dir (default ~/.cache/ptr-server/target-cuda), so the CPU
#                     build's artefacts are never invalidated
#   TARGET_CPU        x86 level of the host code (default x86-64-v3: AVX2, FMA, F16C); the binary
#                     refuses to start on a CPU below it (src/cpu/check.c)
set -euo pipefail
SRC=${SRC:-$(cd "$(dirname "$0")/.." && pwd)}         # the ptr-server checkout
CU_ROOT=${CU_ROOT:-$HOME/.cache/ptr-server/cuda13}   # toolkit from PyPI wheels (~1.2 GB)
# Not CARGO_TARGET_DIR: the Makefile exports that one for the CPU build.
export CARGO_TARGET_DIR=${CUDA_TARGET_DIR:-$HOME/.cache/ptr-server/target-cuda}
DIST=${DIST:-$SRC/.dist}                             # name it in the device run's `carry`
CUDA_HOME=$CU_ROOT/nvidia/cu13
# 1. Toolkit: the CUDA 13.0.2 wheels that torch 2.11.0 pins, so the SONAMEs match the GPU venv.
if [ ! -x "$CUDA_HOME/bin/nvcc" ] || [ ! -e "$CUDA_HOME/lib/libcublasLt.so.13" ]; then
  mkdir -p "$CU_ROOT/wheels"
  python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$CU_ROOT/wheels" \
    nvidia-cuda-nvcc==13.0.88 nvidia-cuda-crt==13.0.88 nvidia-nvvm==13.0.88 \
    nvidia-cuda-cccl==13.0.85 nvidia-cuda-runtime==13.0.96 nvidia-cuda-nvrtc==13.0.88 \
    nvidia-curand==10.4.0.35 nvidia-cublas==13.1.0.3
  for w in "$CU_ROOT"/wheels/*.whl; do unzip -qo "$w" 'nvidia/*' -d "$CU_ROOT"; done
  rm -rf "$CU_ROOT/wheels"
fi
"$CUDA_HOME/bin/nvcc" --version | grep -q 'release 13.0,' || { echo "need nvcc 13.0" >&2; exit 1; }
# 2. Link-time names: unversioned .so links + a libcuda.so stub (the real one is the GPU's driver).
bash "$SRC/scripts/patch-deps.sh"                  # vendor/<crate> (Cargo.toml's [patch])
( cd "$SRC" && cargo fetch --locked -q )
CUDARC=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-0.19.10 | head -1)
cd "$CUDA_HOME/lib"
for l in cudart.so.13 cublas.so.13 cublasLt.so.13 curand.so.10 nvrtc.so.13; do
  ln -sf "lib$l" "lib${l%%.so*}.so"
done
mkdir -p stubs
grep -oE 'load::<_F>\("cu[A-Za-z0-9_]+"\)' "$CUDARC/src/driver/sys/mod.rs" \
  | sed -E 's/.*\("(.*)"\)/void \1(void) {}/' | sort -u > stubs/cuda_stub.c
gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o stubs/libcuda.so stubs/cuda_stub.c
[ "${PREPARE_ONLY:-0}" = 1 ] && { echo "toolkit ready in $CUDA_HOME"; exit 0; }
# 3. Build: each variable is read by a build script of the cuda feature (section 1).
export CUDA_HOME                                   # cudarc: -L $CUDA_HOME/lib and lib/stubs
export PATH="$CUDA_HOME/bin:$PATH"                 # mistralrs-quant runs `nvcc --version`
export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}    # cudaforge: compute_90a / sm_90a
export CUDARC_CUDA_VERSION=13000                   # cudarc: CUDA 13.0 bindings (driver 580)
export CUDAFORGE_THREADS=2                         # nvcc jobs per build script (default 1 here)
export LIBRARY_PATH="$CUDA_HOME/lib:$CUDA_HOME/lib/stubs${LIBRARY_PATH:+:$LIBRARY_PATH}"
export RUSTFLAGS="-C target-cpu=${TARGET_CPU:-x86-64-v3}"   # not the build machine's `native`
export CARGO_PROFILE_RELEASE_STRIP=symbols CARGO_PROFILE_RELEASE_DEBUG=0 CARGO_INCREMENTAL=0
unset NVCC_CCBIN
cd "$SRC"
time nice cargo build --release --locked --features cuda --bin ptr-server
# 4. Strip, check, pack (PACK=0 leaves the stripped binary in $DIST, as the CUDA image wants).
mkdir -p "$DIST"
strip --strip-all -o "$DIST/ptr-server" "$CARGO_TARGET_DIR/release/ptr-server"
readelf -d "$DIST/ptr-server" | grep NEEDED
objdump -T "$DIST/ptr-server" | grep -oE 'GLIBC_[0-9.]+' | sort -Vu | tail -1
[ "${PACK:-1}" = 1 ] || exit 0
xz -9e -T2 -c "$DIST/ptr-server" > "$DIST/ptr-server-cuda.xz" && rm "$DIST/ptr-server"
ls -l "$DIST/ptr-server-cuda.xz"; sha256sum "$DIST/ptr-server-cuda.xz"
[ "$(stat -c %s "$DIST/ptr-server-cuda.xz")" -lt $((60 << 20)) ] || echo "WARNING: over 60 MiB" >&2
