// The per-machine plan file of the convolutions: which implementation (ours or oneDNN's) runs
// each kernel and geometry, measured by the first process that needs it and obeyed by every
// later one, for the reason gemm.h gives for its own plan (a choice that is a timing must be the
// machine's, not the process's, or two processes would compute different bits).
//
// The file: $GRADHPO_CONV_PLAN if set, else $XDG_CACHE_HOME/gradhpo/ (or ~/.cache/gradhpo/)
// conv-plan-<CPU model>-<hash of the CPU model and oneDNN's version>.txt; one line per planned
// case, "<key> <choice>", the key being every word but the last. Deleting it plans again.
// Written like the GEMM plan: under an flock of "<file>.lock", to a temporary name renamed over
// the old file, read again under the lock before measuring (another process's choice wins).
#pragma once

#include <functional>
#include <string>

namespace gradhpo::kernels {

/// The convolution plan file this process uses ("" where neither GRADHPO_CONV_PLAN,
/// XDG_CACHE_HOME nor HOME is set).
std::string conv_plan_path();

/// The choice the file at `path` holds for `key`, else measure()'s, added to the file. Where the
/// file cannot be read and written, `fallback` (with a warning, once per process). Cached in the
/// process per path and key. Thread-safe; never throws.
std::string plan_file_choice(const std::string& path, const std::string& key, const std::string& fallback,
                             const std::function<std::string()>& measure);

}  // namespace gradhpo::kernels
