// Exact hypergradients through whole training runs (issue: reverse mode with three memory
// policies, forward mode), in float64 on formula-generated data:
//   (a) every exact method agrees with the others to 1e-10 relative, and
//   (b) with central differences of the entire training run to 1e-6 relative,
// for SGD with momentum and for Adam, mini-batches, every hyperparameter group and w₀.
#include <algorithm>

#include "toy.h"

#include <gradhpo/hpo/methods/exact_rep.h>
#include <gradhpo/hpo/methods/forward.h>
#include <gradhpo/hpo/methods/reverse.h>
#include <gradhpo/hpo/tensor_math.h>

using namespace gradhpo;
using namespace gradhpo::testing;

namespace {

hpo::Hypergradient reverse(const hpo::BilevelProblem& p, const Tensor& th, hpo::ReversePolicy policy) {
  return run_method("reverse", p, th, {{"policy", hpo::policy_name(policy)}});
}

/// Runs exact reversal's forward pass by hand, keeping the trajectory it actually trained.
struct ExactTrajectory {
  std::vector<hpo::InnerState> states;
  std::vector<Tensor> grads;
  hpo::InnerState final_state;
};
ExactTrajectory exact_trajectory(const hpo::BilevelProblem& p, const Tensor& th, int radix_bits = 44) {
  hpo::Unroll u(p, th);
  hpo::ExactSgd run(p.w0, Tensor(), radix_bits);
  ExactTrajectory out;
  for (std::int64_t t = 0; t < p.horizon; ++t) {
    const hpo::LossPass lp = u.gradient(run.w(), t);
    out.states.push_back(hpo::InnerState{{run.w(), run.v()}});
    out.grads.push_back(lp.grad);
    const auto h = u.optimizer_values(t);
    run.forward(lp.grad, h.lr, h.momentum, h.weight_decay, t);
  }
  out.final_state = hpo::InnerState{{run.w(), run.v()}};
  return out;
}

}  // namespace

TEST_CASE("SGD with momentum: reverse (3 policies) and forward mode agree to 1e-10, and with finite differences") {
  ToySpec spec;  // lr schedule (3 blocks), momentum, weight decay, per-tensor L2, per-example weights
  const hpo::ClassificationTask task = toy_task(spec);
  const hpo::BilevelProblem& p = task.problem;
  const Tensor th = p.hyper.initial();
  REQUIRE(p.hyper.size() == 3 + 1 + 1 + 2 + 24);

  const hpo::Hypergradient store = reverse(p, th, hpo::ReversePolicy::store_all);
  const hpo::Hypergradient ckpt = reverse(p, th, hpo::ReversePolicy::checkpoint);
  const hpo::Hypergradient fwd = run_method("forward", p, th);
  CHECK(rel(ckpt.d_theta, store.d_theta) <= 1e-10);
  CHECK(rel(ckpt.d_w0, store.d_w0) <= 1e-10);
  CHECK(rel(fwd.d_theta, store.d_theta) <= 1e-10);
  CHECK(std::abs(fwd.val_loss - store.val_loss) <= 1e-12);

  // Exact reversal: the same numbers along the (fixed-point) trajectory it actually trained.
  const hpo::Hypergradient exact = reverse(p, th, hpo::ReversePolicy::exact_reversal);
  const ExactTrajectory traj = exact_trajectory(p, th);
  const hpo::Hypergradient along = hpo::reverse_along(p, th, traj.states, traj.grads, traj.final_state);
  CHECK(rel(exact.d_theta, along.d_theta) <= 1e-10);
  CHECK(rel(exact.d_w0, along.d_w0) <= 1e-10);
  // ... which is the float trajectory up to the 2^-44 grid.
  CHECK(rel(exact.d_theta, store.d_theta) <= 1e-8);

  // Against the whole training run, entry by entry.
  const std::vector<double> fd = fd_hypergradient(p, th);
  const double e = rel(store.d_theta, fd);
  MESSAGE("store-all vs finite differences of the whole run: " << e);
  CHECK(e <= 1e-6);
  for (int g = 0; g < static_cast<int>(p.hyper.count()); ++g) {  // each group on its own, too
    const std::int64_t off = p.hyper.offset(g), n = p.hyper.group(g).size();
    const std::vector<double> part(fd.begin() + off, fd.begin() + off + n);
    CHECK_MESSAGE(rel(store.d_theta.flat_slice(off, n), part) <= 1e-6, "group " << p.hyper.group(g).name);
  }
  const std::vector<double> fd_w0 = fd_initial_weights(p, th);
  CHECK(rel(store.d_w0, fd_w0) <= 1e-6);
}

TEST_CASE("SGD: one learning rate per step and per-entry L2, full batch, given w0") {
  ToySpec spec;
  spec.horizon = 50;
  spec.lr_blocks = 50;
  spec.l2 = ToySpec::L2::per_entry;
  spec.example_weights = false;
  spec.batch_size = 0;
  hpo::ClassificationTask task = toy_task(spec);
  hpo::BilevelProblem& p = task.problem;
  p.w0 = Tensor::from(std::vector<double>(static_cast<std::size_t>(p.num_params()), 0.05), p.w0.shape(), DType::f64);
  for (std::int64_t i = 0; i < p.num_params(); i += 2) p.w0.flat_slice(i, 1).fill(-0.1 + 0.003 * static_cast<double>(i));
  const Tensor th = p.hyper.initial();
  const hpo::Hypergradient store = reverse(p, th, hpo::ReversePolicy::store_all);
  const hpo::Hypergradient fwd = run_method("forward", p, th);
  const hpo::Hypergradient ckpt = reverse(p, th, hpo::ReversePolicy::checkpoint);
  CHECK(rel(fwd.d_theta, store.d_theta) <= 1e-10);
  CHECK(rel(ckpt.d_theta, store.d_theta) <= 1e-10);
  CHECK(rel(store.d_theta, fd_hypergradient(p, th)) <= 1e-6);
}

TEST_CASE("Adam: store-all, checkpoint and forward mode agree, and with finite differences") {
  ToySpec spec;
  spec.optimizer = nn::OptimizerKind::adam;
  spec.momentum = 0.8;
  spec.l2 = ToySpec::L2::global;
  const hpo::ClassificationTask task = toy_task(spec);
  const hpo::BilevelProblem& p = task.problem;
  const Tensor th = p.hyper.initial();
  const hpo::Hypergradient store = reverse(p, th, hpo::ReversePolicy::store_all);
  const hpo::Hypergradient ckpt = reverse(p, th, hpo::ReversePolicy::checkpoint);
  const hpo::Hypergradient fwd = run_method("forward", p, th);
  CHECK(rel(ckpt.d_theta, store.d_theta) <= 1e-10);
  CHECK(rel(fwd.d_theta, store.d_theta) <= 1e-10);
  const double e = rel(store.d_theta, fd_hypergradient(p, th));
  MESSAGE("Adam: store-all vs finite differences: " << e);
  CHECK(e <= 1e-6);
  CHECK(rel(store.d_w0, fd_initial_weights(p, th)) <= 1e-6);
  REQUIRE_FALSE(store.notes.empty());
  CHECK(std::any_of(store.notes.begin(), store.notes.end(),
                    [](const std::string& n) { return n.find("eps inside the square root") != std::string::npos; }));
  CHECK_THROWS_WITH_AS(reverse(p, th, hpo::ReversePolicy::exact_reversal),
                       doctest::Contains("exact reversal runs SGD with momentum backwards"), Error);
}

TEST_CASE("forward mode: one K-direction pass equals K single-direction passes") {
  ToySpec spec;
  spec.example_weights = false;
  const hpo::ClassificationTask task = toy_task(spec);
  const Tensor th = task.problem.hyper.initial();
  const hpo::Hypergradient a = run_method("forward", task.problem, th);
  const hpo::Hypergradient b = run_method("forward", task.problem, th, {{"single-direction", "true"}});
  CHECK(rel(a.d_theta, b.d_theta) <= 1e-12);
  CHECK(a.cost.fwd_over_rev_passes == task.problem.horizon - 0);  // one per step (θ seeds L2 from step 0)
  CHECK(b.cost.fwd_over_rev_passes == task.problem.horizon * task.problem.hyper.size());
}

TEST_CASE("a dropped recurrence term is caught: forward mode without the velocity tangent C (Eq. 7)") {
  // The same recursion as forward.cpp, written out with C_t forced to zero: the hypergradient
  // must then disagree with finite differences, or the comparison above could not fail.
  ToySpec spec;
  spec.example_weights = false;
  spec.l2 = ToySpec::L2::none;
  const hpo::ClassificationTask task = toy_task(spec);
  const hpo::BilevelProblem& p = task.problem;
  const Tensor th = p.hyper.initial();
  hpo::Unroll u(p, th);
  hpo::InnerState s = u.initial_state();
  std::vector<Tensor> Z(2);
  for (std::int64_t t = 0; t < p.horizon; ++t) {
    const hpo::LossPass lp = u.loss_pass(s.w(), t, Z[0], Tensor(), false);
    hpo::StepJvp j = u.step_jvp(s, {Z[0], Tensor()}, lp.grad, Z[0].defined() ? lp.grad_tangent : Tensor(), t);
    s = j.next;
    Z = j.tangents;
  }
  const hpo::Unroll::ValPass val = u.validation(s.w());
  std::vector<double> broken(static_cast<std::size_t>(p.hyper.size()));
  for (std::int64_t k = 0; k < p.hyper.size(); ++k)
    broken[static_cast<std::size_t>(k)] = hpo::dot(Z[0].flat_slice(k * p.num_params(), p.num_params()), val.grad_w);
  const std::vector<double> fd = fd_hypergradient(p, th);
  const double e = fd::rel_error(broken, fd);
  MESSAGE("without C: relative error " << e);
  CHECK(e > 1e-2);
  CHECK(rel(run_method("forward", p, th).d_theta, fd) <= 1e-6);
}
