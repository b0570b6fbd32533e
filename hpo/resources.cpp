#include "resources.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <limits>
#include <sstream>

#include "../engine/cgroup.h"

namespace gradhpo::hpo {

namespace {

/// A byte count from a cgroup file; false for "max", an unreadable file, or v1's "no limit"
/// (a page-rounded 2^63 − 1).
bool read_bytes(const std::string& file, double& bytes) {
  const std::string line = cgroup::first_line(file);
  if (line.empty() || line == "max") return false;
  char* end = nullptr;
  bytes = std::strtod(line.c_str(), &end);
  return end != line.c_str() && bytes >= 0 && bytes < 0x1p62;
}

}  // namespace

MemoryAvailable available_memory(const std::string& root) {
  double best = std::numeric_limits<double>::infinity();
  std::string source = "nothing (no /proc/meminfo, no cgroup limit)";
  {
    std::ifstream f(root + "/proc/meminfo");
    for (std::string line; std::getline(f, line);)
      if (line.rfind("MemAvailable:", 0) == 0) {
        std::istringstream words(line.substr(13));
        double kb = 0;
        if (words >> kb) {
          best = kb * 1024;
          source = "MemAvailable in /proc/meminfo";
        }
      }
  }
  const cgroup::Folders f = cgroup::folders("memory", root);
  for (const std::string& dir : f.dirs) {
    double limit = 0, usage = 0;
    const std::string max_file = dir + (f.v2 ? "/memory.max" : "/memory.limit_in_bytes");
    const std::string use_file = dir + (f.v2 ? "/memory.current" : "/memory.usage_in_bytes");
    if (!read_bytes(max_file, limit)) continue;
    if (!read_bytes(use_file, usage)) usage = 0;
    const double headroom = std::max(0.0, limit - usage);
    if (headroom < best) {
      best = headroom;
      source = std::string("the cgroup's ") + (f.v2 ? "memory.max minus memory.current" : "memory.limit_in_bytes minus memory.usage_in_bytes") +
               " (" + format_bytes(limit) + " - " + format_bytes(usage) + ", " + dir.substr(root.size()) + ")";
    }
  }
  MemoryAvailable m;
  m.bytes = std::isfinite(best) ? static_cast<std::size_t>(best) : std::numeric_limits<std::size_t>::max();
  m.source = source;
  return m;
}

std::string format_bytes(double bytes) {
  static const char* const units[] = {"bytes", "kB", "MB", "GB", "TB", "PB", "EB"};
  int u = 0;
  while (bytes >= 999.5 && u < 6) {
    bytes /= 1000;
    ++u;
  }
  char buf[32];
  if (u == 0) std::snprintf(buf, sizeof buf, "%.0f bytes", bytes);
  else std::snprintf(buf, sizeof buf, bytes < 9.995 ? "%.2f %s" : bytes < 99.95 ? "%.1f %s" : "%.0f %s", bytes, units[u]);
  return buf;
}

void check_memory(const Method& method, const BilevelProblem& problem, const Segment* segment,
                  const MemoryAvailable& available) {
  // A segment costs what a run of its length costs (the greedy setting's segments are short).
  const BilevelProblem* p = &problem;
  BilevelProblem part;
  if (segment) {
    const std::int64_t steps = segment->steps >= 0 ? segment->steps : problem.horizon - segment->first;
    if (steps != problem.horizon) {
      part = problem;
      part.horizon = std::max<std::int64_t>(1, steps);
      p = &part;
    }
  }
  if (problem.w0.defined() && problem.w0.device() != Device::cpu) return;  // see below
  const Estimate e = method.estimate(*p);
  if (e.buffer_bytes <= available.bytes) return;  // (alternatives are made only for a refusal)
  check_memory(method.name(), e, *p, method.alternatives(*p), available);
}

void check_memory(const std::string& who, const Estimate& e, const BilevelProblem& problem,
                  std::vector<Alternative> alts, const MemoryAvailable& available) {
  // Buffers on a GPU live in its memory, which the backend has no query for: not checked here
  // against host memory (the device's allocator reports a failure with its size).
  if (problem.w0.defined() && problem.w0.device() != Device::cpu) return;
  if (e.buffer_bytes <= available.bytes) return;
  const BilevelProblem* p = &problem;
  std::ostringstream s;
  s << who << ": this run needs about " << format_bytes(static_cast<double>(e.buffer_bytes))
    << " for the method's own buffers (" << e.explain << "; T = " << p->horizon << " steps, P = " << p->num_params()
    << " parameters, " << dtype_name(p->dtype()) << "), but " << format_bytes(static_cast<double>(available.bytes))
    << " is available (" << available.source << "). Refused before any work.";
  std::stable_sort(alts.begin(), alts.end(), [](const Alternative& a, const Alternative& b) {
    return a.estimate.buffer_bytes < b.estimate.buffer_bytes;
  });
  std::string fits, too_big;
  for (const Alternative& a : alts) {
    const std::string line = "\n  " + a.options + ": about " + format_bytes(static_cast<double>(a.estimate.buffer_bytes)) +
                             " (" + a.estimate.explain + ")";
    (a.estimate.buffer_bytes <= available.bytes ? fits : too_big) += line;
  }
  if (!fits.empty()) s << "\nThese would fit:" << fits;
  if (!too_big.empty()) s << "\n" << (fits.empty() ? "No other policy fits either:" : "These would not:") << too_big;
  if (fits.empty()) s << "\nShorten the run (fewer steps or epochs, a larger batch) or use a smaller model.";
  throw Error(s.str());
}

}  // namespace gradhpo::hpo
