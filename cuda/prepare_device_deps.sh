#!/usr/bin/env bash
# Copies the header-only dependencies (Eigen, doctest, nlohmann-json) that cuda/check_on_gpu.sh
# needs into .device-deps/prefix (git-ignored), laid out as an install prefix: the GPU machine
# has no Debian packages and no network, so they must travel with the working tree (the device
# tool's `carry`). Run it here, on a machine with libeigen3-dev, doctest-dev and
# nlohmann-json3-dev; ~10 MB.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
prefix=.device-deps/prefix
rm -rf .device-deps
mkdir -p "$prefix/include" "$prefix/share/eigen3" "$prefix/share/cmake" "$prefix/lib/cmake"
cp -r /usr/include/eigen3 "$prefix/include/"
cp -r /usr/share/eigen3/cmake "$prefix/share/eigen3/"
cp -r /usr/include/doctest "$prefix/include/"
# nlohmann-json: gradhpo::hpo reads a method's options from JSON (its config finds its prefix itself).
cp -r /usr/include/nlohmann "$prefix/include/"
cp -r /usr/share/cmake/nlohmann_json "$prefix/share/cmake/"
cp -r /usr/lib/cmake/doctest "$prefix/lib/cmake/"
# Debian's doctest config names /usr; make it relative to where it now lives (lib/cmake/doctest).
sed -i 's|^set(_IMPORT_PREFIX "/usr")$|get_filename_component(_IMPORT_PREFIX "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)|' \
  "$prefix/lib/cmake/doctest/doctestTargets.cmake"
grep -q 'CMAKE_CURRENT_LIST_DIR' "$prefix/lib/cmake/doctest/doctestTargets.cmake"
du -sh .device-deps | sed 's/^/prepare_device_deps: /'
