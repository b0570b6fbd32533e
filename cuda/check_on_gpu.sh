#!/usr/bin/env bash
# The one-shot device check of issue 10, for a session that has a GPU machine: builds gradhpo
# with CUDA for that GPU (engine, nn, cuda, and hpo/'s hypergradient methods that need no Debian
# package; no data/, the rest of hpo/, tools/), runs tests/cuda (every op and model on the GPU
# against the CPU, the allocator count, and reverse/forward/DrMAD/IFT hypergradients GPU against
# CPU in float64; NCCL's sums on one GPU, one rank), the GPU model benchmarks and the GPU
# hypergradient benchmark (LeNet-5, T = 100), compares with PyTorch on the GPU where torch has
# CUDA, and writes everything to one folder ($OUT when set, as under the device tool, else
# gpu-check/). Aim: < 8 minutes on an H100/H200 with 16 cores, most of it the nvcc build.
#
# Before (on the build machine):  cuda/prepare_device_deps.sh    # Eigen + doctest -> .device-deps
# Then, with the device tool:     run(command="cuda/check_on_gpu.sh", carry=[".device-deps"], timeout_s=540)
#
#   GRADHPO_CHECK_QUICK=1      shorter benchmark runs (rougher medians)
#   GRADHPO_CHECK_CUDA_ARCH    CUDA architectures (default native: this machine's GPU; a dry run
#                              on a machine without one needs a list, e.g. 90)
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=${OUT:-gpu-check}
mkdir -p "$out"
summary="$out/summary.txt"
: >"$summary"
note() { echo "$*" | tee -a "$summary"; }
start=$(date +%s)
elapsed() { echo "$(($(date +%s) - start)) s"; }

if [[ ! -d .device-deps/prefix ]]; then
  note "check_on_gpu: .device-deps/prefix is missing: run cuda/prepare_device_deps.sh and carry .device-deps"
  exit 1
fi
{ nvidia-smi || true; nvcc --version; cmake --version; } >"$out/device.txt" 2>&1
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
build=build-gpu
quick=()
[[ -n ${GRADHPO_CHECK_QUICK:-} ]] && quick=(--quick)

# native: the architecture of the GPU in this machine only (the build here is for this run).
if ! cmake -S . -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DGRADHPO_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES="${GRADHPO_CHECK_CUDA_ARCH:-native}" -DGRADHPO_BUILD_DATA=OFF -DGRADHPO_BUILD_BENCH=OFF \
    -DGRADHPO_OPENMP=OFF -DCMAKE_PREFIX_PATH="$PWD/.device-deps/prefix" >"$out/configure.log" 2>&1; then
  note "check_on_gpu: configure failed (see configure.log):"; tail -20 "$out/configure.log" | tee -a "$summary"; exit 1
fi
if ! cmake --build "$build" --target test_cuda bench_gpu bench_gpu_hypergradient -j"$(nproc)" >"$out/build.log" 2>&1; then
  note "check_on_gpu: build failed (see build.log):"; grep -m 20 -E "error" "$out/build.log" | tee -a "$summary"; exit 1
fi
note "check_on_gpu: built in $(elapsed)"

"$build/tests/test_cuda" --no-colors --require-device >"$out/tests_cuda.txt" 2>&1
tests_rc=$?
note "tests/cuda: exit $tests_rc ($(elapsed)); $(head -1 "$out/tests_cuda.txt")"
grep -E '^\[doctest\] (test cases|assertions)' "$out/tests_cuda.txt" >>"$summary"
grep -E "ERROR|error:" "$out/tests_cuda.txt" | head -40 >>"$summary"

grep -E "GPU - CPU" "$out/tests_cuda.txt" | sed 's/^.*MESSAGE: /  /' >>"$summary"

# NCCL (GRADHPO_NCCL, on where the toolkit has it): one GPU is one rank, so its checks are of a
# communicator of one (tests/cuda/test_nccl.cpp); run again on their own with NCCL's own log, which
# names its version and the algorithms it allows (NCCL_ALGO, cuda/nccl.h).
if grep -q "NCCL=ON" "$out/configure.log"; then
  NCCL_DEBUG=INFO NCCL_DEBUG_SUBSYS=INIT,ENV "$build/tests/test_cuda" --no-colors --require-device -tc='*NCCL*,nccl*' \
    >"$out/tests_nccl.txt" 2>&1
  note "tests/cuda NCCL: exit $? ($(grep -m1 -oE 'NCCL version [^ ]+' "$out/tests_nccl.txt" || echo 'version not logged'))"
  grep -E '^\[doctest\] (test cases|assertions)|ERROR' "$out/tests_nccl.txt" >>"$summary"
else
  note "tests/cuda NCCL: not built (GRADHPO_NCCL=OFF: nccl.h or libnccl not found in the toolkit)"
fi

"$build/bench/gpu/bench_gpu_hypergradient" >"$out/bench_gpu_hypergradient.txt" 2>&1
note "bench_gpu_hypergradient: exit $? ($(elapsed))"
cat "$out/bench_gpu_hypergradient.txt" >>"$summary"
# The same methods with the weights on the CPU too (one thread here: OpenMP is off), T = 10: the
# GPU/CPU speed-up and the float32 difference of the two hypergradients.
"$build/bench/gpu/bench_gpu_hypergradient" --horizon 10 --repeat 1 --cpu >"$out/bench_gpu_hypergradient_cpu.txt" 2>&1
note "bench_gpu_hypergradient --cpu (T = 10): exit $? ($(elapsed))"
cat "$out/bench_gpu_hypergradient_cpu.txt" >>"$summary"

"$build/bench/gpu/bench_gpu" "${quick[@]}" >"$out/bench_gpu.txt" 2>&1
note "bench_gpu: exit $? ($(elapsed))"
sed -n '1,/^csv:/p' "$out/bench_gpu.txt" | grep -v '^csv:' >>"$summary"

if command -v python3 >/dev/null; then
  python3 cuda/pytorch_gpu.py --ours "$out/bench_gpu.txt" "${quick[@]}" >"$out/pytorch_gpu.txt" 2>&1
  note "pytorch_gpu: exit $? ($(elapsed))"
  cat "$out/pytorch_gpu.txt" >>"$summary"
fi
note "check_on_gpu: done in $(elapsed); results in $out/"
exit "$tests_rc"
