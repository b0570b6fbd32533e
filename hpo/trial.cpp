#include "trial.h"

namespace gradhpo::hpo {

std::string FailedTrial::brief() const {
  std::string s = method.empty() ? "run" : method;
  if (trial >= 0) s += ", step " + std::to_string(trial);
  if (inner_step >= 0) s += ", inner step " + std::to_string(inner_step);
  return s + ": " + reason;
}

FailedTrial failed_trial(const Hyperparameters& h, const Tensor& theta, std::string method, std::int64_t trial,
                         std::int64_t inner_step, double value, std::string reason) {
  FailedTrial f;
  f.method = std::move(method);
  f.trial = trial;
  f.inner_step = inner_step;
  f.value = value;
  if (theta.defined() && theta.numel() == h.size())
    for (std::int64_t i = 0; i < h.size(); ++i) f.hyperparameters.emplace_back(h.entry_name(i), h.value_at(theta, i));
  f.reason = std::move(reason);
  return f;
}

}  // namespace gradhpo::hpo
