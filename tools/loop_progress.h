// hpo's loop reports (hpo/progress.h) drawn as one progress bar with an ETA on stderr, while an
// HPO run is in progress: "outer 3/10 · forward 450/1000 [#####.....] 34% ETA 1m20s".
//
// The fraction done is the outermost loop's refined by the loops inside it, and the ETA is
// elapsed / done × remaining, the clock started when the outermost loop did. Nothing is drawn
// (and no receiver is installed) when stderr is not a terminal.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include <gradhpo/hpo/progress.h>

#include "progress.h"

namespace gradhpo::tools {

class LoopProgress {
 public:
  /// `title` starts the line ("compare", "hpo").
  explicit LoopProgress(std::string title, bool enabled = stderr_is_terminal());
  LoopProgress(const LoopProgress&) = delete;
  LoopProgress& operator=(const LoopProgress&) = delete;
  /// Erases the bar before the caller prints a line (it comes back at the next report).
  void clear() { bar_.clear(); }

 private:
  void on_report(const char* label, std::int64_t done, std::int64_t total);

  std::string title_;
  ProgressBar bar_;
  hpo::LoopNesting loops_;
  std::chrono::steady_clock::time_point start_, last_draw_;
  std::optional<hpo::ProgressScope> scope_;  // last: uninstalled before the rest goes
};

}  // namespace gradhpo::tools
