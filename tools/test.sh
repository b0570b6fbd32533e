#!/usr/bin/env bash
# Builds everything (tools/setup.sh), then runs the whole test suite with ctest.
# Extra arguments go to ctest, e.g. `tools/test.sh -R engine/` or `tools/test.sh -L slow`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

tools/setup.sh
ctest --test-dir "${GRADHPO_BUILD_DIR:-build}" --output-on-failure -j2 "$@"
