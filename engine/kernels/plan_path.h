// Where a per-machine plan lives (the GEMM plan, gemm.h; the convolution plan, conv_plan.h): a
// file named after the CPU and a hash of everything the plan's timings depend on, in the user's
// cache folder. One place for both, so that their files are named and created alike.
#pragma once

#include <string>

namespace gradhpo::kernels {

/// The CPU's model name as /proc/cpuinfo gives it ("unknown CPU" where it gives none).
std::string cpu_model();

/// $XDG_CACHE_HOME/gradhpo/ (or ~/.cache/gradhpo/) <stem>-<CPU model>-<FNV-1a hash of
/// identity, 16 hex digits>.txt; "" where neither XDG_CACHE_HOME nor HOME is set.
std::string machine_plan_path(const std::string& stem, const std::string& identity);

/// mkdir -p of the folder holding `path`; false on failure (errno says why).
bool make_parent_dirs(const std::string& path);

}  // namespace gradhpo::kernels
