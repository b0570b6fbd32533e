#!/usr/bin/env bash
# Builds everything (tools/setup.sh) and runs the whole test suite with ctest; then builds the
# same tree a second time under AddressSanitizer + UndefinedBehaviorSanitizer and runs the
# suite again there, so that memory errors and undefined behaviour fail the run too.
# Extra arguments go to both ctest runs, e.g. `tools/test.sh -R engine/` or `tools/test.sh -L slow`.
#
#   GRADHPO_BUILD_DIR            the regular build (default: build)
#   GRADHPO_SANITIZE_BUILD_DIR   the sanitizer build (default: <regular build>-sanitize)
#   GRADHPO_TEST_SANITIZERS=0    skip the sanitizer build and run (quick local iterations only)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

build_dir=${GRADHPO_BUILD_DIR:-build}
tools/setup.sh
ctest --test-dir "$build_dir" --output-on-failure -j2 "$@"

[[ ${GRADHPO_TEST_SANITIZERS:-1} == 0 ]] && exit 0
sanitize_dir=${GRADHPO_SANITIZE_BUILD_DIR:-$build_dir-sanitize}
# -O1 -g: quick to compile, readable reports. No CUDA: the sanitizers cover the host code.
if [[ ! -f $sanitize_dir/CMakeCache.txt ]]; then
  cmake -S . -B "$sanitize_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" \
    -DGRADHPO_SANITIZE=address,undefined -DGRADHPO_CUDA=OFF -DGRADHPO_BUILD_BENCH=OFF >/dev/null
fi
GRADHPO_BUILD_DIR=$sanitize_dir GRADHPO_CMAKE_ARGS="" tools/setup.sh
echo "test.sh: the suite again under AddressSanitizer and UndefinedBehaviorSanitizer ($sanitize_dir)" >&2
# Without the `mpirun gradhpo` CLI tests (label mpi-cli, tests/CMakeLists.txt) and the MPI tests'
# second run under the GEMM planner (mpi-planner, a check of rounding): under the sanitizers they
# take 14 minutes, past the CI's budget of 10 for both runs; tests/mpi runs the MPI code sanitized.
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0} UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1} \
  ctest --test-dir "$sanitize_dir" --output-on-failure -j2 -LE 'mpi-cli|mpi-planner' "$@"
