#include "progress.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace gradhpo::tools {

bool stderr_is_terminal() {
  const char* term = std::getenv("TERM");
  return isatty(STDERR_FILENO) == 1 && !(term && std::strcmp(term, "dumb") == 0);
}

void ProgressBar::update(const std::string& label, std::int64_t done, std::int64_t total, const std::string& suffix) {
  show(label, total > 0 ? static_cast<double>(done) / static_cast<double>(total) : 0.0,
       std::to_string(done) + "/" + std::to_string(total) + " " + suffix, done >= total);
}

void ProgressBar::show(const std::string& label, double fraction, const std::string& text, bool force) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (drawn_ && !force && now - last_ < std::chrono::milliseconds(100)) return;
  last_ = now;
  constexpr int kWidth = 30;
  const int filled = static_cast<int>(kWidth * std::clamp(fraction, 0.0, 1.0));
  std::string bar(static_cast<std::size_t>(filled), '#');
  bar.resize(kWidth, '.');
  // \r to the line start, \033[K erases what a longer previous line left behind.
  std::fprintf(stderr, "\r%s [%s] %s\033[K", label.c_str(), bar.c_str(), text.c_str());
  std::fflush(stderr);
  drawn_ = true;
}

void ProgressBar::clear() {
  if (!enabled_ || !drawn_) return;
  std::fprintf(stderr, "\r\033[K");
  std::fflush(stderr);
  drawn_ = false;
}

std::string duration_text(double seconds) {
  const long s = std::lround(std::max(0.0, seconds));
  char buf[32];
  if (s < 60) std::snprintf(buf, sizeof buf, "%lds", s);
  else if (s < 3600) std::snprintf(buf, sizeof buf, "%ldm%02lds", s / 60, s % 60);
  else std::snprintf(buf, sizeof buf, "%ldh%02ldm", s / 3600, (s % 3600) / 60);
  return buf;
}

std::string eta_text(double elapsed_seconds, double fraction) {
  if (!(fraction > 0 && fraction < 1) || !(elapsed_seconds >= 0)) return "";
  return "ETA " + duration_text(elapsed_seconds / fraction * (1 - fraction));
}

}  // namespace gradhpo::tools
