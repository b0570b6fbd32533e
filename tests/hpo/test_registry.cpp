// The registry-wide checks of issue 18: every offline method registered, with each of its
// test_variants, on the toy problems of toy.h (float64; SGD and Adam; optimizer-defining and
// loss-defining groups where the method's Support allows):
//   exact methods           vs central differences of the whole run (≤ 1e-6) and vs each other (≤ 1e-10)
//   approximations          vs the plain reference registered beside them (≤ 1e-10)
//   every method            its estimate() of the buffer bytes within a factor 4 of the peak it reports
// Registering a method puts it under these checks with no new test code. A deliberately broken
// method (forward mode with the velocity tangent C of Eq. 7 dropped) is caught by the same check,
// and refusals happen before any work.
#include "toy.h"

#include <algorithm>
#include <functional>
#include <sstream>

#include <gradhpo/hpo/progress.h>
#include <gradhpo/hpo/tensor_math.h>

using namespace gradhpo;
using namespace gradhpo::testing;

namespace {

struct ToyProblem {
  std::string name;
  hpo::ClassificationTask task;
  std::vector<double> fd;  ///< dL_val/dθ by central differences of the whole run
};

/// Short runs (T = 12) of the toy MLP: optimizer-defining and loss-defining groups, then
/// loss-defining ones alone, for SGD with momentum and for Adam. SGD's momentum is fixed at 0.9
/// there (9/10 exactly): exact reversal multiplies by a rational n/d ≤ 2^16, which a learned
/// momentum (a sigmoid of θ) only approximates, to ~1e-10 — its agreement with the float run is
/// then 1e-8, as test_exact.cpp checks. Adam learns β1.
std::vector<ToyProblem> toy_problems() {
  std::vector<ToyProblem> out;
  auto add = [&](std::string name, ToySpec s) {
    s.horizon = 12;
    ToyProblem p{std::move(name), toy_task(s), {}};
    p.fd = fd_hypergradient(p.task.problem, p.task.problem.hyper.initial());
    out.push_back(std::move(p));
  };
  ToySpec sgd;
  sgd.learn_momentum = false;
  add("SGD: lr, weight decay, L2 per tensor, example weights", sgd);
  ToySpec sgd_loss = sgd;
  sgd_loss.learn_lr = sgd_loss.learn_weight_decay = false;
  add("SGD: L2 per tensor, example weights", sgd_loss);
  ToySpec adam;
  adam.optimizer = nn::OptimizerKind::adam;
  adam.momentum = 0.8;
  adam.l2 = ToySpec::L2::global;
  add("Adam: lr, beta1, weight decay, global L2, example weights", adam);
  ToySpec adam_loss = adam;
  adam_loss.learn_lr = adam_loss.learn_momentum = adam_loss.learn_weight_decay = false;
  add("Adam: global L2, example weights", adam_loss);
  return out;
}

const std::vector<ToyProblem>& problems() {
  static const std::vector<ToyProblem> p = toy_problems();
  return p;
}

struct RegistryCheck {
  int runs = 0;                       ///< method × variant × problem computed
  int refusals = 0;                   ///< refused up front by check_supports (Support, check_problem)
  std::vector<std::string> failures;  ///< what disagreed, and by how much
  std::vector<std::string> log;
};

std::string describe(const std::string& name, const std::map<std::string, std::string>& variant) {
  std::string s = name;
  for (const auto& [k, v] : variant) s += " " + k + "=" + v;
  return s;
}

/// Every offline entry of `r` and each of its test_variants on every toy problem, as the file
/// comment says. Throws nothing: what fails is listed.
RegistryCheck check_registry(const hpo::Registry& r) {
  RegistryCheck c;
  for (const ToyProblem& tp : problems()) {
    const hpo::BilevelProblem& p = tp.task.problem;
    const Tensor th = p.hyper.initial();
    std::vector<std::pair<std::string, Tensor>> exact;  // to compare with each other
    for (const std::string& name : r.names(hpo::MethodKind::offline)) {
      const hpo::OfflineEntry& e = r.offline(name);
      std::vector<std::map<std::string, std::string>> variants = {{}};
      variants.insert(variants.end(), e.test_variants.begin(), e.test_variants.end());
      for (const auto& variant : variants) {
        const std::string what = describe(name, variant) + " on " + tp.name;
        const auto m = r.make_offline(name, variant);
        try {
          m->check_supports(p);
        } catch (const Error& refusal) {
          ++c.refusals;
          c.log.push_back(what + ": refused (" + refusal.what() + ")");
          continue;
        }
        hpo::Hypergradient h;
        try {
          h = m->compute(p, th);
        } catch (const Error& err) {
          c.failures.push_back(what + ": threw " + err.what());
          continue;
        }
        ++c.runs;
        double error = 0, bound = 0;
        std::string against;
        if (e.exactness == hpo::Exactness::exact) {
          error = fd::rel_error(h.d_theta.to_vector(), tp.fd);
          bound = 1e-6;
          against = "finite differences of the whole run";
          exact.emplace_back(describe(name, variant), h.d_theta);
        } else {
          error = rel(h.d_theta, e.reference(p, th, m->options()));
          bound = 1e-10;
          against = "its reference";
        }
        std::ostringstream line;
        line << what << ": vs " << against << " " << error;
        const hpo::Estimate est = m->estimate(p);
        const double ratio = static_cast<double>(est.buffer_bytes) / static_cast<double>(std::max<std::size_t>(h.cost.peak_bytes, 1));
        line << "; estimate " << est.buffer_bytes << " B for a peak of " << h.cost.peak_bytes << " B";
        c.log.push_back(line.str());
        if (!(error <= bound)) c.failures.push_back(line.str() + " (bound " + std::to_string(bound) + ")");
        if (!(ratio >= 0.25 && ratio <= 4))
          c.failures.push_back(what + ": estimate " + std::to_string(est.buffer_bytes) + " B is not within a factor 4 of the peak " +
                               std::to_string(h.cost.peak_bytes) + " B");
      }
    }
    for (std::size_t i = 1; i < exact.size(); ++i) {
      const double e = rel(exact[i].second, exact[0].second);
      std::ostringstream line;
      line << exact[i].first << " vs " << exact[0].first << " on " << tp.name << ": " << e;
      c.log.push_back(line.str());
      if (!(e <= 1e-10))
        c.failures.push_back(line.str() + " (bound 1e-10)");
    }
  }
  return c;
}

/// Forward mode with the velocity tangent C_t = dv_t/dθ forced to zero: Eq. 7 without its C
/// recursion (the same dropped term as in test_exact.cpp), wrapped as a Method.
class DroppedVelocityTangent final : public hpo::Method {
 public:
  DroppedVelocityTangent() : Method("broken-forward", hpo::Options(), hpo::Support{}) {}
  hpo::Estimate estimate(const hpo::BilevelProblem& p) const override {
    return {static_cast<std::size_t>(3 * p.hyper.size() * p.num_params()) * sizeof(double), 0, ""};
  }

 protected:
  hpo::MethodOutput run(hpo::Unroll& u, const hpo::Segment& seg) const override {
    const hpo::BilevelProblem& p = u.problem();
    const Tensor theta_dirs = p.hyper.has_loss_defining() ? u.theta_identity() : Tensor();
    hpo::InnerState s = seg.start;
    std::vector<Tensor> Z(s.parts.size());
    hpo::MethodOutput out;
    for (std::int64_t t = seg.first; t < seg.first + seg.steps; ++t) {
      const hpo::LossPass lp = u.loss_pass(s.w(), t, Z[0], theta_dirs, false);
      std::vector<Tensor> dirs(s.parts.size());
      dirs[0] = Z[0];  // C_t (and Adam's moment tangents) dropped
      const bool seeded = Z[0].defined() || theta_dirs.defined();
      hpo::StepJvp j = u.step_jvp(s, dirs, lp.grad, seeded ? lp.grad_tangent : Tensor(), t);
      s = j.next;
      Z = j.tangents;
      out.cost.peak_bytes = 3 * static_cast<std::size_t>(p.hyper.size() * p.num_params()) * sizeof(double);
    }
    const hpo::Unroll::ValPass val = u.validation(s.w());
    out.val_loss = val.loss;
    out.direct = val.grad_theta.clone();
    out.d_theta = val.grad_theta.clone();
    if (Z[0].defined()) hpo::axpy(out.d_theta, 1.0, hpo::columns_dot(Z[0], val.grad_w));
    out.final_state = s;
    return out;
  }
};

}  // namespace

TEST_CASE("every registered offline method agrees with finite differences, the other exact methods or its reference") {
  hpo::register_builtin_methods();
  const hpo::Registry& r = hpo::Registry::global();
  const std::vector<std::string> names = r.names(hpo::MethodKind::offline);
  for (const char* n : {"reverse", "forward", "ift", "drmad", "t1t2", "greedy"})
    CHECK_MESSAGE(std::find(names.begin(), names.end(), n) != names.end(), n);
  const RegistryCheck c = check_registry(r);
  for (const std::string& line : c.log) MESSAGE(line);
  for (const std::string& f : c.failures) FAIL_CHECK(f);
  CHECK(c.failures.empty());
  // Every entry ran: 4 problems each (IFT: the 2 loss-defining ones; exact reversal: the 2 SGD ones).
  int variants = 0;
  for (const std::string& n : names) variants += 1 + static_cast<int>(r.offline(n).test_variants.size());
  CHECK(c.runs + c.refusals == variants * 4);
  CHECK(c.runs >= 3 * variants);
}

TEST_CASE("the registry check catches a broken method: forward mode without the velocity tangent C") {
  hpo::Registry local;
  hpo::register_offline_methods(local);
  hpo::OfflineEntry broken;
  broken.name = "broken-forward";
  broken.summary = "forward mode with Eq. 7's C recursion dropped (a test's deliberate bug)";
  broken.exactness = hpo::Exactness::exact;
  broken.make = [](const hpo::Options&) { return std::make_unique<DroppedVelocityTangent>(); };
  local.add(std::move(broken));
  const RegistryCheck c = check_registry(local);
  int caught = 0;
  for (const std::string& f : c.failures) {
    MESSAGE(f);
    CHECK(f.find("broken-forward") != std::string::npos);  // nothing else fails
    caught += f.find("broken-forward") != std::string::npos;
  }
  CHECK(caught >= 4);  // against finite differences and against reverse mode, on every problem
  CHECK(local.remove("broken-forward"));
  CHECK(check_registry(local).failures.empty());
}

TEST_CASE("refusals come before any work: IFT on an optimizer-defining group, exact reversal with Adam or beta = 0") {
  int progress_reports = 0;
  auto scope = std::make_unique<hpo::ProgressScope>([&](const char*, std::int64_t, std::int64_t) { ++progress_reports; });
  ToySpec spec;  // learns lr, momentum, weight decay, L2 and example weights
  spec.horizon = 12;
  const hpo::ClassificationTask task = toy_task(spec);
  const Tensor th = task.problem.hyper.initial();
  const std::string ift = error_of([&] { run_method("ift", task.problem, th); });
  CHECK(ift.find("ift cannot differentiate hyperparameter group 'lr'") != std::string::npos);

  ToySpec adam = spec;
  adam.optimizer = nn::OptimizerKind::adam;
  const hpo::ClassificationTask adam_task = toy_task(adam);
  CHECK(error_of([&] { run_method("reverse", adam_task.problem, th, {{"policy", "exact-reversal"}}); })
            .find("exact reversal runs SGD with momentum backwards") != std::string::npos);

  // β = 0 fixed: the memory it would need, for this P and T, and the policy to use instead.
  ToySpec plain = spec;
  plain.learn_momentum = false;
  plain.momentum = 0;
  const hpo::ClassificationTask zero = toy_task(plain);
  const std::string fixed = error_of([&] { run_method("reverse", zero.problem, zero.problem.hyper.initial(), {{"policy", "exact-reversal"}}); });
  MESSAGE(fixed);
  CHECK(fixed.find("beta = 0") != std::string::npos);
  CHECK(fixed.find("~64 bits per parameter per step") != std::string::npos);
  CHECK(fixed.find("P = " + std::to_string(zero.problem.num_params()) + " and T = 12") != std::string::npos);
  CHECK(fixed.find("policy=checkpoint") != std::string::npos);
  // The same refusal from check_supports, before compute() is called at all.
  CHECK_THROWS_WITH_AS(make_method("reverse", {{"policy", "exact-reversal"}})->check_supports(zero.problem),
                       doctest::Contains("policy=checkpoint"), Error);

  // A learned momentum that is exactly 0 (identity transform, θ = 0): refused before training.
  hpo::ClassificationTask learned = toy_task(plain);
  learned.problem.hyper.add(hpo::Hyperparameters::momentum(1, 0.0, hpo::Transform::identity));
  const std::string at_step = error_of(
      [&] { run_method("reverse", learned.problem, learned.problem.hyper.initial(), {{"policy", "exact-reversal"}}); });
  MESSAGE(at_step);
  CHECK(at_step.find("exactly 0 at step 0") != std::string::npos);
  CHECK(at_step.find("policy=checkpoint") != std::string::npos);
  scope.reset();
  CHECK(progress_reports == 0);  // no method started training
  // Store-all and checkpointing take β = 0.
  CHECK(run_method("reverse", learned.problem, learned.problem.hyper.initial(), {{"policy", "checkpoint"}}).d_theta.defined());
}

TEST_CASE("estimate(): store-all and forward mode predict the peak bytes they report exactly") {
  for (const ToyProblem& tp : problems()) {
    const hpo::BilevelProblem& p = tp.task.problem;
    for (const auto& [name, options] : std::vector<std::pair<std::string, std::map<std::string, std::string>>>{
             {"reverse", {}}, {"forward", {}}, {"reverse", {{"policy", "checkpoint"}}}, {"drmad", {}}, {"greedy", {}}}) {
      const auto m = make_method(name, options);
      const hpo::Hypergradient h = m->compute(p, p.hyper.initial());
      const hpo::Estimate e = m->estimate(p);
      INFO(describe(name, options) << " on " << tp.name << ": " << e.explain);
      CHECK(e.buffer_bytes == h.cost.peak_bytes);
      CHECK(e.gradient_equivalents > static_cast<double>(p.horizon));
    }
  }
}
