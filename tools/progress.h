// A one-line progress bar on stderr, drawn only when stderr is a terminal.
//
// When stderr is a file or a pipe (CI logs, `2> log`), nothing is drawn: the caller's own
// per-epoch lines on stdout are the plain record. Redraws are throttled to 10 per second so that
// drawing never costs measurable time.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace gradhpo::tools {

class ProgressBar {
 public:
  /// `enabled = false` draws nothing (use stderr_is_terminal() to decide).
  explicit ProgressBar(bool enabled) : enabled_(enabled) {}
  ~ProgressBar() { clear(); }
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  /// Shows "<label> [####....] done/total <suffix>" (throttled unless done == total).
  void update(const std::string& label, std::int64_t done, std::int64_t total, const std::string& suffix);
  /// Shows "<label> [####....] <text>" for a fraction in [0, 1] (throttled unless `force`).
  void show(const std::string& label, double fraction, const std::string& text, bool force = false);
  /// Erases the bar, so that the next line printed starts clean.
  void clear();
  bool enabled() const { return enabled_; }

 private:
  bool enabled_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point last_{};
};

/// True when stderr is a terminal (isatty) and TERM is not "dumb".
bool stderr_is_terminal();

/// "45s", "3m05s", "2h07m".
std::string duration_text(double seconds);

/// "ETA 1m20s": the time left when `fraction` of the work took `elapsed_seconds`, at the same
/// pace; "" before anything is done (no pace yet) and once everything is.
std::string eta_text(double elapsed_seconds, double fraction);

}  // namespace gradhpo::tools
