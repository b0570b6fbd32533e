#include "loop_progress.h"

#include <cstdio>

namespace gradhpo::tools {

LoopProgress::LoopProgress(std::string title, bool enabled) : title_(std::move(title)), bar_(enabled) {
  if (enabled) scope_.emplace([this](const char* label, std::int64_t done, std::int64_t total) { on_report(label, done, total); });
}

void LoopProgress::on_report(const char* label, std::int64_t done, std::int64_t total) {
  const auto now = std::chrono::steady_clock::now();
  if (loops_.report(label, done, total)) start_ = now;
  const bool finished = total > 0 && done >= total;
  // Reports come once per inner step: build the line at most 10 times a second.
  if (!finished && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  const double f = loops_.fraction();
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  char pct[16];
  std::snprintf(pct, sizeof pct, "%3.0f%%", 100 * f);
  std::string text = pct;
  if (const std::string eta = eta_text(elapsed, f); !eta.empty()) text += " " + eta;
  bar_.show(title_ + " " + loops_.describe(), f, text, finished);
}

}  // namespace gradhpo::tools
