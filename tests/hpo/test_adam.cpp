// Hypergradients through Adam in PyTorch's form, √v̂ + ε, where v̂ stays exactly 0 for a
// parameter whose gradient is always 0: the true derivative of the run (central differences),
// not the NaN of PyTorch's autograd; and divergence messages that name Adam's denominator.
#include "by_hand.h"
#include "toy.h"

#include <cmath>

using namespace gradhpo;
using namespace gradhpo::testing;

namespace {

/// w ∈ R³, L_train = (w₀ − α)² + ½ c w₂², L_val = (w₀ − 1)² + α w₁ + (w₂ − 0.5)², under AdamW
/// (decoupled weight decay 0.1, so w₂ still moves with the learning rate). w₁'s gradient is
/// always exactly 0, so its v stays exactly 0; with c = 0, w₂'s too.
hpo::BilevelProblem adam_problem(double eps, double c) {
  hpo::BilevelProblem p;
  hpo::HyperGroup alpha;
  alpha.name = "alpha";
  alpha.init = {0.7};
  p.hyper.add(alpha);
  p.hyper.add(hpo::Hyperparameters::learning_rate(2, 0.05, hpo::Transform::exp));
  p.train_loss = [c](const Var& w, const hpo::HyperValues& h, std::int64_t) {
    const Var r = slice(w, 0, Shape{1}) - h["alpha"];
    const Var w2 = slice(w, 2, Shape{1});
    return sum(square(r)) + (0.5 * c) * sum(square(w2));
  };
  p.val_loss = [](const Var& w, const hpo::HyperValues& h) {
    return sum(square(slice(w, 0, Shape{1}) - 1.0)) + sum(h["alpha"] * slice(w, 1, Shape{1})) +
           sum(square(slice(w, 2, Shape{1}) - 0.5));
  };
  p.optimizer.kind = nn::OptimizerKind::adam;
  p.optimizer.lr = nn::Schedule::constant(0.05);
  p.optimizer.eps = eps;
  p.optimizer.weight_decay = 0.1;
  p.optimizer.decoupled = true;
  p.optimizer.eps_inside_sqrt = false;  // PyTorch's form
  p.horizon = 8;
  p.w0 = Tensor::from({0.2, -0.3, 0.4}, Shape{3}, DType::f64);
  return p;
}

std::vector<double> fd_all(const hpo::BilevelProblem& p, const Tensor& theta) {
  std::vector<double> out;
  for (std::int64_t i = 0; i < theta.numel(); ++i)
    out.push_back(fd::derivative([&](double e) {
      Tensor th = theta.clone();
      th.flat_slice(i, 1).fill(theta.at(i) + e);
      return hpo::run_inner(p, th).val_loss;
    }, kFdStep));
  return out;
}

std::string divergence_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const hpo::InnerDivergence& e) {
    return e.what();
  }
  return "(no divergence)";
}

}  // namespace

TEST_CASE("Adam in PyTorch's form: exact hypergradients where v stays exactly 0 (no NaN), = central differences") {
  const hpo::BilevelProblem p = adam_problem(1e-8, 0.0);
  const Tensor theta = p.hyper.initial();
  // v stays exactly 0 for w₁ and w₂ over the whole run (their gradients are exactly 0).
  {
    hpo::Unroll u(p, theta);
    hpo::InnerState s = u.initial_state();
    for (std::int64_t t = 0; t < p.horizon; ++t) {
      s = u.step(s, u.gradient(s.w(), t).grad, t);
      CHECK(s.parts[2].at(1) == 0.0);
      CHECK(s.parts[2].at(2) == 0.0);
      CHECK(s.parts[2].at(0) > 0.0);
    }
  }
  const Tensor rev = reverse_mode(p, theta), fwd = forward_mode(p, theta);
  const std::vector<double> fd = fd_all(p, theta);
  REQUIRE(hpo::first_non_finite(rev) < 0);
  REQUIRE(hpo::first_non_finite(fwd) < 0);
  const std::vector<double> r = rev.to_vector(), f = fwd.to_vector();
  MESSAGE("reverse " << r[0] << " " << r[1] << " " << r[2] << "; central differences " << fd[0] << " " << fd[1] << " " << fd[2]);
  CHECK(fd::rel_error(r, fd) <= 1e-6);
  CHECK(fd::rel_error(f, fd) <= 1e-6);
  CHECK(fd::rel_error(r, f) <= 1e-10);
  // The learning rate moves w₂ only through the decoupled decay: that path crosses √v₂ = 0.
  CHECK(std::abs(r[1]) > 0);
}

TEST_CASE("Adam divergence messages name the denominator and the eps option when it is the cause") {
  // ε = 0 and v = 0 exactly: 0/0 in the step's value.
  {
    const hpo::BilevelProblem p = adam_problem(0.0, 0.0);
    hpo::Unroll u(p, p.hyper.initial());
    const hpo::InnerState s = u.initial_state();
    const std::string why = divergence_of([&] { u.step(s, u.gradient(s.w(), 0).grad, 0); });
    CHECK(contains(why, "weight 1 became"));
    CHECK(contains(why, "nan"));
    CHECK(contains(why, "Adam's denominator at parameter 1"));
    CHECK(contains(why, "divides 0 by 0"));
    CHECK(contains(why, "eps_inside_sqrt"));
  }
  // ε = 0 and v subnormal (a gradient of ~1e-158): the run's values stay finite, but the
  // derivative of √v, 1/(2√v) ~ 1e159, overflows in reverse mode.
  {
    // w₁'s zero gradient with ε = 0 would be 0/0 in the value: here it has a gradient of its own.
    hpo::BilevelProblem r = adam_problem(0.0, 1e-158);
    r.train_loss = [](const Var& w, const hpo::HyperValues& h, std::int64_t) {
      const Var r0 = slice(w, 0, Shape{1}) - h["alpha"];
      return sum(square(r0)) + sum(square(slice(w, 1, Shape{1}))) + 0.5e-158 * sum(square(slice(w, 2, Shape{1})));
    };
    CHECK(std::isfinite(hpo::run_inner(r, r.hyper.initial()).val_loss));
    const std::string why = divergence_of([&] { reverse_mode(r, r.hyper.initial()); });
    CHECK(contains(why, "adjoint dPhi/dg of parameter 2 became"));
    CHECK(contains(why, "1/(2 sqrt(v)) is unbounded"));
    CHECK(contains(why, "Adam's denominator at parameter 2"));
    CHECK(contains(why, "eps_inside_sqrt"));
  }
  // A non-finite adjoint that came into the step is not blamed on Adam, even where v = 0.
  {
    const hpo::BilevelProblem p = adam_problem(1e-8, 0.0);
    hpo::Unroll u(p, p.hyper.initial());
    const hpo::InnerState s = u.initial_state();
    const Tensor g = u.gradient(s.w(), 0).grad;
    hpo::InnerState adj;
    adj.parts = {Tensor::from({0.0, NAN, 0.0}, Shape{3}, DType::f64), Tensor::zeros(Shape{3}, DType::f64),
                 Tensor::zeros(Shape{3}, DType::f64)};
    const std::string why = divergence_of([&] { u.step_vjp(s, g, 0, adj); });
    CHECK(contains(why, "adjoint dPhi/dg of parameter 1 became"));
    CHECK(contains(why, "already not finite"));
    CHECK(!contains(why, "Adam's denominator"));
  }
  // With ε inside the square root the same run is smooth: no error, and finite.
  {
    hpo::BilevelProblem p = adam_problem(1e-8, 0.0);
    p.optimizer.eps_inside_sqrt = true;
    CHECK(hpo::first_non_finite(reverse_mode(p, p.hyper.initial())) < 0);
  }
}

TEST_CASE("the plain step in one pass (kernels/optim_step.h) has the bits of the step recorded on the tape: SGD and Adam") {
  // Unroll::step runs the fused kernel; step_jvp records the formula op by op (its value is the
  // tape's). Learned per-block rates, momentum (Adam's beta1) and weight decay, decoupled or not,
  // eps inside the square root or not, over several steps (Adam's corrections change with t).
  for (const nn::OptimizerKind kind : {nn::OptimizerKind::sgd, nn::OptimizerKind::adam}) {
    for (const bool variant : {false, true}) {
      ToySpec spec;
      spec.optimizer = kind;
      spec.horizon = 6;
      hpo::ClassificationTask task = toy_task(spec);
      if (kind == nn::OptimizerKind::adam) {
        task.problem.optimizer.decoupled = variant;
        task.problem.optimizer.eps_inside_sqrt = !variant;
      }
      CAPTURE(static_cast<int>(kind));
      CAPTURE(variant);
      const hpo::BilevelProblem& p = task.problem;
      hpo::Unroll u(p, p.hyper.initial());
      hpo::InnerState s = u.initial_state();
      for (std::int64_t t = 0; t < p.horizon; ++t) {
        const Tensor g = u.gradient(s.w(), t).grad;
        const hpo::InnerState fused = u.step(s, g, t);
        const hpo::StepJvp taped = u.step_jvp(s, {}, g, Tensor(), t);
        REQUIRE(fused.parts.size() == taped.next.parts.size());
        for (std::size_t i = 0; i < fused.parts.size(); ++i) CHECK(hpo::same_bits(fused.parts[i], taped.next.parts[i]));
        s = fused;
      }
    }
  }
}
