// Progress of hpo's long loops, for whoever wants to show it (hpo/ itself never prints).
//
// Every long loop — an inner training run, a hypergradient pass, an outer loop, a search's
// trials, an online method's steps, a comparison's methods — calls report_progress(label, done,
// total) once before its first iteration (done = 0) and after each one (done = k + 1, reaching
// total). Loops nest: an outer step contains a forward pass; a caller that draws a bar reads the
// nesting from the order of the reports (tools/loop_progress.h). `total` <= 0: not known ahead
// (a budget in wall time).
//
// The receiver is a thread-local callback installed by a ProgressScope (RAII; scopes nest and the
// previous receiver comes back when a scope ends). Without one a report costs one branch.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace gradhpo::hpo {

/// Receives (label, done, total); `label` is a string literal naming the loop.
using ProgressCallback = std::function<void(const char* label, std::int64_t done, std::int64_t total)>;

namespace detail {
extern thread_local const ProgressCallback* progress_receiver;
}

/// Reports that `done` of `total` iterations of the loop `label` are finished.
inline void report_progress(const char* label, std::int64_t done, std::int64_t total) {
  if (detail::progress_receiver) [[unlikely]]
    (*detail::progress_receiver)(label, done, total);
}

/// Installs `callback` as this thread's receiver for its lifetime.
class ProgressScope {
 public:
  explicit ProgressScope(ProgressCallback callback);
  ~ProgressScope();
  ProgressScope(const ProgressScope&) = delete;
  ProgressScope& operator=(const ProgressScope&) = delete;

 private:
  ProgressCallback callback_;
  const ProgressCallback* previous_;
};

/// The nesting of the loops seen in a stream of reports, and how far the whole is: what a
/// receiver that draws a bar keeps. A report of a loop already open updates it and closes the
/// loops inside it; a report of a new loop first closes finished loops at the innermost end
/// (a sibling loop follows a finished one: training, then evaluation), then opens inside.
class LoopNesting {
 public:
  struct Loop {
    std::string label;
    std::int64_t done = 0, total = 0;
  };
  /// Returns true when the outermost loop is a new one (a receiver restarts its clock).
  bool report(const char* label, std::int64_t done, std::int64_t total);
  /// The fraction of the outermost loop done, refined by the loops inside it:
  /// (d₀ + (d₁ + ...)/t₁)/t₀, in [0, 1]; 0 while the outermost total is unknown.
  double fraction() const;
  /// "outer 3/10 · forward 450/1000" ("?" for an unknown total).
  std::string describe() const;
  const std::vector<Loop>& loops() const { return loops_; }

 private:
  std::vector<Loop> loops_;
};

}  // namespace gradhpo::hpo
