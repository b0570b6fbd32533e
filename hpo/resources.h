// Resources before work: the memory a run may take, checked against a method's own estimate
// (Method::estimate) before any training, so that a run that cannot fit is refused in a second
// with what would fit, rather than growing until std::bad_alloc hours later.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "method.h"

namespace gradhpo::hpo {

/// The memory this process can still take, and where the number comes from.
struct MemoryAvailable {
  std::size_t bytes = 0;
  std::string source;  ///< "MemAvailable in /proc/meminfo", "the cgroup's memory.max minus memory.current", ...
};

/// The smaller of /proc/meminfo's MemAvailable and, for every cgroup limiting this process
/// (cgroup v2: memory.max − memory.current; v1: memory.limit_in_bytes − memory.usage_in_bytes),
/// its limit minus its usage. `root` is prefixed to /proc and /sys (tests use a fake tree).
/// Nothing readable: the largest size_t, from "nothing (no /proc/meminfo, no cgroup limit)".
MemoryAvailable available_memory(const std::string& root = "");

/// "1.5 GB", "340 MB", "12 kB", "68 TB" (powers of 1000, three significant digits).
std::string format_bytes(double bytes);

/// Throws Error when `method`'s estimate on `problem` exceeds `available` (host memory: a problem
/// whose weights are on a GPU is not checked, the backend having no free-memory query): the estimate with its
/// explanation, what is available and from where, and every alternative of the method
/// (Method::alternatives) with its estimate, those that fit first. Over a segment (the greedy
/// setting's) the estimate is that of a run of the segment's length.
void check_memory(const Method& method, const BilevelProblem& problem, const Segment* segment,
                  const MemoryAvailable& available);
/// The same for any estimate: `who` names the method (online methods check theirs in init()).
void check_memory(const std::string& who, const Estimate& estimate, const BilevelProblem& problem,
                  std::vector<Alternative> alternatives, const MemoryAvailable& available);

}  // namespace gradhpo::hpo
