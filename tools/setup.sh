#!/usr/bin/env bash
# Installs the Debian packages gradhpo needs (only the missing ones), then configures and builds.
# Idempotent, and silent when everything is installed and up to date.
#
#   GRADHPO_BUILD_DIR   build directory (default: build; relative paths are from the repository root)
#   GRADHPO_CMAKE_ARGS  extra configure arguments, e.g. "-DGRADHPO_CUDA=OFF" (forces a re-configure)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

packages=(
  build-essential cmake pkg-config
  libeigen3-dev libopenblas-openmp-dev libdnnl-dev zlib1g-dev libmatio-dev libcli11-dev
  libgsl-dev libnlopt-cxx-dev liblbfgs-dev
  doctest-dev libbenchmark-dev
  nlohmann-json3-dev gnuplot-nox
  libopenmpi-dev openmpi-bin
  dataset-fashion-mnist
)

if command -v dpkg-query >/dev/null && command -v apt-get >/dev/null; then
  missing=()
  for package in "${packages[@]}"; do
    if [[ $(dpkg-query -W -f='${Status}' "$package" 2>/dev/null) != "install ok installed" ]]; then
      missing+=("$package")
    fi
  done
  if ((${#missing[@]})); then
    if [[ $(id -u) -eq 0 ]]; then
      as_root=()
    elif command -v sudo >/dev/null; then
      as_root=(sudo)
    else
      echo "setup: missing packages (${missing[*]}) and neither root nor sudo to install them" >&2
      exit 1
    fi
    echo "setup: installing ${missing[*]}" >&2
    # A fresh machine has an empty package list: update first.
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
else
  echo "setup: not a Debian system; install the equivalents of: ${packages[*]}" >&2
fi

build_dir=${GRADHPO_BUILD_DIR:-build}
read -ra extra_args <<<"${GRADHPO_CMAKE_ARGS:-}"
if [[ ! -f $build_dir/CMakeCache.txt || ${#extra_args[@]} -gt 0 ]]; then
  cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release "${extra_args[@]}"
fi
# Drop make's "Built target" chatter so that an up-to-date build prints nothing; compiler
# output, warnings and errors pass through (and a failed build still fails: pipefail).
cmake --build "$build_dir" -j"$(nproc)" \
  | sed -u -E '/^\[ *[0-9]+%\] Built target |^Consolidate compiler generated dependencies/d'
