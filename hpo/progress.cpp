#include "progress.h"

#include <algorithm>

namespace gradhpo::hpo {

namespace detail {
thread_local const ProgressCallback* progress_receiver = nullptr;
}

ProgressScope::ProgressScope(ProgressCallback callback)
    : callback_(std::move(callback)), previous_(detail::progress_receiver) {
  detail::progress_receiver = callback_ ? &callback_ : nullptr;
}

ProgressScope::~ProgressScope() { detail::progress_receiver = previous_; }

bool LoopNesting::report(const char* label, std::int64_t done, std::int64_t total) {
  for (std::size_t i = 0; i < loops_.size(); ++i) {
    if (loops_[i].label != label) continue;
    loops_[i].done = done;
    loops_[i].total = total;
    loops_.resize(i + 1);  // the loops inside it ended (or start again)
    return false;
  }
  while (!loops_.empty() && loops_.back().total > 0 && loops_.back().done >= loops_.back().total) loops_.pop_back();
  loops_.push_back({label, done, total});
  return loops_.size() == 1;
}

double LoopNesting::fraction() const {
  double f = 0;  // from the innermost loop out: f = (d + f_inner) / t
  for (std::size_t i = loops_.size(); i-- > 0;) {
    const Loop& l = loops_[i];
    if (l.total <= 0) {
      f = 0;
      continue;
    }
    const double inner = l.done < l.total ? f : 0;  // a finished loop's inner loops are done with it
    f = std::min(1.0, (static_cast<double>(l.done) + inner) / static_cast<double>(l.total));
  }
  return f;
}

std::string LoopNesting::describe() const {
  std::string s;
  for (const Loop& l : loops_) {
    if (!s.empty()) s += " · ";
    s += l.label + " " + std::to_string(l.done) + "/" + (l.total > 0 ? std::to_string(l.total) : std::string("?"));
  }
  return s;
}

}  // namespace gradhpo::hpo
