#!/usr/bin/env bash
# Builds everything (tools/setup.sh), then runs the gradhpo program with the given arguments.
# Without arguments the program runs `reproduce quickstart` (forward mode against random search
# on Fashion-MNIST, about 2.5 minutes on 2 cores; its run folder is runs/quickstart under the
# caller's directory). Relative paths in the arguments are taken from the caller's directory. Build messages go to stderr, the program's output to stdout.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

"$root/tools/setup.sh" >&2

build_dir=${GRADHPO_BUILD_DIR:-build}
[[ $build_dir == /* ]] || build_dir=$root/$build_dir
exe=$build_dir/tools/gradhpo
if [[ ! -x $exe ]]; then
  echo "run: $exe was not built (does tools/ have sources yet?)" >&2
  exit 1
fi
exec "$exe" "$@"
