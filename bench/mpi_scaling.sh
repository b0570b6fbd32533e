#!/usr/bin/env bash
# The MPI scaling table (issue 20): bench/mpi_scaling at 1, 2 and 4 ranks on this machine, one
# thread per rank, then the communication model at scale. Prints markdown; the tables are made
# here from the program's rows, never typed.
#
#   cmake --build build --target mpi_scaling        # first (a build with gradhpo::mpi)
#   bench/mpi_scaling.sh [build dir] [ranks...]     # default: build 1 2 4
#
#   MPI_SCALING_ARGS     extra arguments for the measured runs (e.g. "--repeat 3", "--quick")
#   MPI_SCALING_PAPER    arguments for the model (default: --ranks 64 --columns 100 --batch 1024)
#   MPI_SCALING_DOC      a markdown file whose part between the lines "<!-- mpi_scaling.sh: begin -->"
#                        and "<!-- mpi_scaling.sh: end -->" is replaced by these tables (the run's
#                        command line with them): tools/doc/scaling.md, so its tables are never typed
#   MPI_SCALING_NICE     a niceness for the runs, e.g. -15 (as root) on a machine that other jobs
#                        keep busy: they then get the cores only when the ranks leave them. With
#                        the kernel's autogroups (sched_autogroup_enabled) a niceness counts only
#                        within a session, so the runs get a session of their own (setsid) and
#                        the niceness is that session's (/proc/<pid>/autogroup)
#
# Efficiency is T1 / (N · TN) in wall time, T1 the 1-rank run. Where ranks exceed the cores,
# the ranks share them (mpirun --oversubscribe) and the row says so: an efficiency there
# measures time-sharing, not the method. Run it on an otherwise idle machine. The work
# efficiency C1 / CN compares CPU seconds summed over the ranks: the extra work a rank count
# costs (a repeated primal run, a coordinating rank, packing and polling), which other jobs on
# the machine disturb far less than the wall time.
set -euo pipefail
if [[ -n ${MPI_SCALING_NICE:-} && -z ${MPI_SCALING_SESSION:-} ]]; then
  MPI_SCALING_SESSION=1 exec setsid --wait "$0" "$@"
fi
if [[ -n ${MPI_SCALING_NICE:-} && -w /proc/$$/autogroup ]]; then
  echo "$MPI_SCALING_NICE" >"/proc/$$/autogroup"
fi
cd "$(dirname "${BASH_SOURCE[0]}")/.."
build=${1:-build}
shift || true
ranks=("$@")
[[ ${#ranks[@]} -eq 0 ]] && ranks=(1 2 4)
program="$build/bench/mpi_scaling"
if [[ ! -x $program ]]; then
  echo "mpi_scaling.sh: $program is missing: cmake --build $build --target mpi_scaling" >&2
  exit 1
fi
cores=$(nproc)
cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
rows=$(mktemp)
trap 'rm -f "$rows"' EXIT

export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
# A rank waiting in a collective yields its core instead of spinning: with more ranks than free
# cores (oversubscribed, or a machine busy with other work) a spinning rank takes the time slice
# the rank it waits for needs (measured here under load: data-parallel training 4.6x slower).
export OMPI_MCA_mpi_yield_when_idle=${OMPI_MCA_mpi_yield_when_idle:-1}
# Containers without CMA (ptrace) need this for Open MPI's shared-memory transport.
export OMPI_MCA_btl_vader_single_copy_mechanism=${OMPI_MCA_btl_vader_single_copy_mechanism:-none}
setup=""
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
nice=()
[[ -n ${MPI_SCALING_NICE:-} ]] && nice=(nice -n "$MPI_SCALING_NICE")
for n in "${ranks[@]}"; do
  # shellcheck disable=SC2086
  out=$("${nice[@]}" mpirun --allow-run-as-root --oversubscribe -np "$n" "$program" ${MPI_SCALING_ARGS:-})
  [[ -z $setup ]] && setup=$(grep '^setup ' <<<"$out" | sed 's/^setup //')
  grep '^row ' <<<"$out" >>"$rows"
done

tables() {
  echo "## MPI scaling on this machine"
  echo
  echo "CPU: $cpu, $cores cores (nproc); one thread per rank (OMP_NUM_THREADS=1); $(mpirun --version | head -1)."
  echo "Problem: $setup."
  echo "Load average (1, 5, 15 min) before the runs: $load_before; after: $(cut -d' ' -f1-3 /proc/loadavg)${nice:+; the runs at niceness ${MPI_SCALING_NICE:-}}."
  echo
  # row <workload> ranks=N seconds=S bytes=B units=U unit=X inner_steps=I summed=V
  awk -v cores="$cores" '
    $1 == "row" {
      w = $2
      for (i = 3; i <= NF; ++i) { split($i, kv, "="); f[kv[1]] = kv[2] }
      n = f["ranks"]
      if (!(w in order)) { order[w] = ++count; names[count] = w }
      t[w, n] = f["seconds"]; c[w, n] = f["cpu"]; b[w, n] = f["bytes"]; u[w] = f["units"]; unit[w] = f["unit"]
      steps[w] = f["inner_steps"]; summed[w] = f["summed"]
      if (!(n in seen)) { seen[n] = 1; ranks[++nr] = n }
    }
    END {
      print "| workload | ranks | seconds | speed-up | efficiency T1/(N·TN) | CPU s (all ranks) | work efficiency C1/CN | bytes sent (all ranks) | per inner step | note |"
      print "|---|---|---|---|---|---|---|---|---|---|"
      for (k = 1; k <= count; ++k) {
        w = names[k]
        label = w " (" u[w] " " unit[w] (u[w] > 1 ? "s" : "") ", " steps[w] " inner steps)"
        for (j = 1; j <= nr; ++j) {
          n = ranks[j]
          if (!((w, n) in t)) continue
          t1 = t[w, 1]
          speed = (t1 != "") ? sprintf("%.2f", t1 / t[w, n]) : "-"
          eff = (t1 != "") ? sprintf("%.0f %%", 100 * t1 / (n * t[w, n])) : "-"
          work = (t1 != "") ? sprintf("%.0f %%", 100 * c[w, 1] / c[w, n]) : "-"
          note = (n > cores) ? sprintf("oversubscribed: %d ranks on %d cores", n, cores) : ""
          if (w == "trials" && n > 1) note = note (note ? "; " : "") sprintf("%d trainer%s (rank 0 coordinates)", n - 1, n > 2 ? "s" : "")
          printf "| %s | %d | %.3f | %s | %s | %.3f | %s | %d | %.0f | %s |\n", label, n, t[w, n], speed, eff, c[w, n], work, b[w, n], b[w, n] / steps[w], note
          label = ""
        }
      }
      print ""
      for (k = 1; k <= count; ++k) {
        w = names[k]
        if (summed[w] > 0)
          printf "%s: %d values summed over the ranks per inner step (counted at Unroll'"'"'s seam, the same at every rank count).\n", w, summed[w] / steps[w]
      }
    }' "$rows"

  echo
  echo "## Communication per inner step at scale (model)"
  echo
  # shellcheck disable=SC2086
  "$program" --paper ${MPI_SCALING_PAPER:---ranks 64 --columns 100 --batch 1024}
}

if [[ -z ${MPI_SCALING_DOC:-} ]]; then
  tables
else
  # The tables (and how they were made) between the markers of the doc; the rest of it kept.
  generated=$(mktemp)
  {
    echo "<!-- mpi_scaling.sh: begin -->"
    echo "Made by \`${MPI_SCALING_NICE:+MPI_SCALING_NICE=$MPI_SCALING_NICE }${MPI_SCALING_ARGS:+MPI_SCALING_ARGS=\"$MPI_SCALING_ARGS\" }MPI_SCALING_DOC=$MPI_SCALING_DOC bench/mpi_scaling.sh $build ${ranks[*]}\` on $(date -u +%Y-%m-%d)."
    echo
    tables | sed 's/^## /#### /'
    echo "<!-- mpi_scaling.sh: end -->"
  } >"$generated"
  grep -q '^<!-- mpi_scaling.sh: begin -->$' "$MPI_SCALING_DOC" || { echo "mpi_scaling.sh: $MPI_SCALING_DOC has no '<!-- mpi_scaling.sh: begin -->' line" >&2; exit 1; }
  awk -v gen="$generated" '
    /^<!-- mpi_scaling.sh: begin -->$/ { while ((getline line < gen) > 0) print line; skip = 1; next }
    /^<!-- mpi_scaling.sh: end -->$/ { skip = 0; next }
    !skip' "$MPI_SCALING_DOC" >"$MPI_SCALING_DOC.tmp"
  mv "$MPI_SCALING_DOC.tmp" "$MPI_SCALING_DOC"
  rm -f "$generated"
  cat "$MPI_SCALING_DOC"
fi
