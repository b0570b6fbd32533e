#include "ladder.h"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <numeric>
#include <sstream>

#include "../../engine/finite_diff.h"
#include "../inner_run.h"

namespace gradhpo::hpo {

std::vector<LadderMethod> standard_ladder(double greedy_gamma, Registry& r) {
  register_builtin_methods(r);
  auto rung = [&](std::string name, const std::string& method, std::map<std::string, std::string> options = {}) {
    return LadderMethod{std::move(name), std::shared_ptr<const Method>(r.make_offline(method, options))};
  };
  std::ostringstream gamma;
  gamma << std::setprecision(17) << greedy_gamma;
  return {
      rung("reverse, exact reversal", "reverse", {{"policy", "exact-reversal"}}),
      rung("reverse, checkpointing", "reverse", {{"policy", "checkpoint"}}),
      rung("forward mode", "forward"),
      rung("DrMAD", "drmad"),
      rung("greedy, gamma " + std::to_string(greedy_gamma).substr(0, 4), "greedy", {{"gamma", gamma.str()}}),
      rung("T1-T2 (last step)", "t1t2"),
      rung("T1-T2, DARTS form", "t1t2", {{"darts-radius", "0.01"}}),
      rung("IFT, conjugate gradients", "ift"),
      rung("IFT, Neumann series", "ift", {{"solver", "neumann"}}),
  };
}

namespace {

void compare(LadderRow& row, const Tensor& h, const Tensor& ref) {
  const std::vector<double> a = h.to_vector(), b = ref.to_vector();
  row.rel_error = fd::rel_error(a, b);
  const double na = fd::norm(a), nb = fd::norm(b);
  row.cosine = na > 0 && nb > 0 ? std::inner_product(a.begin(), a.end(), b.begin(), 0.0) / (na * nb) : 0;
  std::size_t agree = 0;
  for (std::size_t i = 0; i < a.size(); ++i) agree += ((a[i] > 0) - (a[i] < 0)) == ((b[i] > 0) - (b[i] < 0));
  row.sign_agreement = a.empty() ? 1 : static_cast<double>(agree) / static_cast<double>(a.size());
}

}  // namespace

std::vector<LadderRow> exactness_ladder(const BilevelProblem& problem, const Tensor& theta,
                                        const std::vector<LadderMethod>& methods, const LadderMethod* reference) {
  LadderMethod store{"reverse, store-all (reference)", nullptr};
  if (!reference) {
    register_builtin_methods(Registry::global());
    store.method = Registry::global().make_offline("reverse");
  }
  const LadderMethod& ref = reference ? *reference : store;
  const Hypergradient exact = ref.method->compute(problem, theta);
  std::vector<LadderRow> rows;
  LadderRow r0;
  r0.name = ref.name;
  r0.ran = true;
  r0.seconds = exact.cost.seconds;
  r0.peak_bytes = exact.cost.peak_bytes;
  r0.d_theta = exact.d_theta;
  compare(r0, exact.d_theta, exact.d_theta);
  rows.push_back(r0);
  for (const LadderMethod& m : methods) {
    LadderRow row;
    row.name = m.name;
    try {
      const Hypergradient h = m.method->compute(problem, theta);
      row.ran = true;
      row.seconds = h.cost.seconds;
      row.peak_bytes = h.cost.peak_bytes;
      row.d_theta = h.d_theta;
      for (const std::string& n : h.notes) row.note += (row.note.empty() ? "" : "; ") + n;
      compare(row, h.d_theta.to(DType::f64), exact.d_theta.to(DType::f64));
    } catch (const Error& e) {
      row.note = e.what();
    }
    rows.push_back(row);
  }
  return rows;
}

std::string ladder_table(const std::vector<LadderRow>& rows, bool md) {
  std::ostringstream s;
  const char* sep = md ? " | " : "  ";
  if (md) s << "| ";
  s << std::left << std::setw(34) << "method" << sep << std::setw(10) << "rel. error" << sep << std::setw(8) << "cosine"
    << sep << std::setw(6) << "signs" << sep << std::setw(9) << "time (s)" << sep << std::setw(10) << "peak (MB)";
  if (md) s << " |\n|---|---|---|---|---|---|";
  s << "\n";
  for (const LadderRow& r : rows) {
    if (md) s << "| ";
    s << std::left << std::setw(34) << r.name << sep;
    if (!r.ran) {
      s << "refused: " << r.note << (md ? " | | | | |" : "") << "\n";
      continue;
    }
    s << std::setw(10) << std::setprecision(3) << std::scientific << r.rel_error << sep << std::fixed << std::setprecision(4)
      << std::setw(8) << r.cosine << sep << std::setprecision(2) << std::setw(6) << r.sign_agreement << sep
      << std::setprecision(3) << std::setw(9) << r.seconds << sep << std::setw(10)
      << static_cast<double>(r.peak_bytes) / 1e6 << (md ? " |" : "") << "\n";
  }
  return s.str();
}

HypergradientCheck check_hypergradient(const BilevelProblem& problem, const Tensor& theta, const Tensor& candidate,
                                       double tolerance, double step) {
  problem.hyper.check_theta(theta, "check_hypergradient");
  require(candidate.numel() == theta.numel(), "check_hypergradient: the candidate has " + std::to_string(candidate.numel()) +
                                                  " entries, θ has " + std::to_string(theta.numel()));
  require(tolerance > 0 && step > 0, "check_hypergradient: tolerance and step must be > 0");
  HypergradientCheck c;
  const std::vector<double> base = theta.to_vector();
  for (std::size_t i = 0; i < base.size(); ++i)
    c.finite_differences.push_back(fd::derivative(
        [&](double eps) {
          std::vector<double> th = base;
          th[i] += eps;
          return run_inner(problem, Tensor::from(th, theta.shape(), DType::f64)).val_loss;
        },
        step));
  const std::vector<double> h = candidate.to_vector();
  c.rel_error = fd::rel_error(h, c.finite_differences);
  c.ok = c.rel_error <= tolerance;
  std::vector<std::int64_t> idx(h.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](std::int64_t a, std::int64_t b) {
    return std::abs(h[a] - c.finite_differences[a]) > std::abs(h[b] - c.finite_differences[b]);
  });
  idx.resize(std::min<std::size_t>(5, idx.size()));
  c.worst = idx;
  std::ostringstream v;
  v << std::setprecision(3);
  if (c.ok) {
    v << "agrees with finite differences of the whole training run (relative error " << c.rel_error << " <= " << tolerance << ")";
  } else {
    v << "DISAGREES with finite differences of the whole training run: relative error " << c.rel_error << " > " << tolerance
      << ". Worst entries:";
    for (std::int64_t i : c.worst)
      v << " " << problem.hyper.entry_name(i) << " (got " << h[static_cast<std::size_t>(i)] << ", finite differences "
        << c.finite_differences[static_cast<std::size_t>(i)] << ")";
    bool flipped = true;
    for (std::int64_t i : c.worst) flipped &= h[i] * c.finite_differences[i] < 0;
    v << (flipped ? ". The worst entries have the wrong sign: look for a sign error."
                  : ". If only some groups are off, a recurrence term of those groups is missing; if every entry is off by "
                    "the same factor, a scale (learning rate, 1/B, ½) is. In float32, check in float64 first; a diverging "
                    "or chaotic run also defeats finite differences (shorten the horizon).");
  }
  c.verdict = v.str();
  return c;
}

HypergradientCheck check_hypergradient(const BilevelProblem& problem, const Tensor& theta, const Method& method,
                                       double tolerance, double step) {
  return check_hypergradient(problem, theta, method.compute(problem, theta).d_theta.to(DType::f64), tolerance, step);
}

}  // namespace gradhpo::hpo
