// hpo/'s hypergradient methods with the weights and the data on the GPU, against the same run on
// the CPU (float64): reverse mode (store-all, checkpointing, exact reversal, which runs its
// fixed-point arithmetic on the host and copies per step), forward mode, DrMAD, Adam, and the
// IFT (Neumann, CG). The host-emulated device (tests/hpo/test_device.cpp) already checks that
// every method dispatches and gives the CPU's bits through the seam; here only the kernels'
// summation order differs, so the hypergradients agree to float64 rounding: relative ≤ 1e-12
// for an MLP, ≤ 1e-11 for LeNet-5 (the models' bound in test_models.cpp: more ops in a chain).
#include <doctest/doctest.h>

#include <gradhpo/hpo/methods/drmad.h>
#include <gradhpo/hpo/methods/forward.h>
#include <gradhpo/hpo/methods/implicit.h>
#include <gradhpo/hpo/methods/reverse.h>

#include "device_test.h"
#include "hpo_problem.h"

using namespace gradhpo;
using namespace gradhpo::testing;

namespace {

using Method = std::function<hpo::Hypergradient(const hpo::BilevelProblem&, const Tensor&)>;

void compare_method(const std::string& what, std::shared_ptr<const nn::Model> model, ModelProblemSpec spec,
                    const Method& method, double tol) {
  INFO(what);
  spec.device = Device::cpu;
  const hpo::BilevelProblem cpu = model_problem(model, spec);
  spec.device = Device::cuda;
  const hpo::BilevelProblem gpu = model_problem(model, spec);
  const Tensor theta = cpu.hyper.initial(DType::f64);
  const hpo::Hypergradient want = method(cpu, theta), got = method(gpu, theta);
  CHECK(got.d_theta.device() == Device::cpu);
  CHECK(got.final_state.w().device() == Device::cuda);
  const double d = relative_difference(got.d_theta.to_vector(), want.d_theta.to_vector());
  MESSAGE(what << ": |GPU - CPU| / |CPU| = " << d << " over " << want.d_theta.numel() << " hyperparameters");
  CHECK(d <= tol);
  CHECK(relative_difference({got.val_loss}, {want.val_loss}) <= tol);
  CHECK(relative_difference(got.final_state.w().to_vector(), want.final_state.w().to_vector()) <= tol);
  if (want.d_w0.defined()) CHECK(relative_difference(got.d_w0.to_vector(), want.d_w0.to_vector()) <= tol);
}

std::shared_ptr<const nn::Model> small_mlp() {
  nn::MlpOptions o;
  o.hidden = {16};
  o.activation = nn::Activation::tanh;
  return std::make_shared<nn::Mlp>(Shape{1, 4, 4}, 3, o);
}

Method reverse(hpo::ReversePolicy p) {
  return [p](const hpo::BilevelProblem& problem, const Tensor& theta) {
    hpo::ReverseOptions o;
    o.policy = p;
    o.checkpoint_every = 3;
    return hpo::reverse_hypergradient(problem, theta, o);
  };
}

Method forward() {
  return [](const hpo::BilevelProblem& problem, const Tensor& theta) { return hpo::forward_hypergradient(problem, theta, {}); };
}

}  // namespace

TEST_SUITE("device") {

TEST_CASE("hypergradients on the GPU: reverse mode (store-all, checkpoint, exact reversal), forward mode, DrMAD") {
  const auto model = small_mlp();
  const ModelProblemSpec spec;
  compare_method("reverse store-all", model, spec, reverse(hpo::ReversePolicy::store_all), 1e-12);
  compare_method("reverse checkpoint", model, spec, reverse(hpo::ReversePolicy::checkpoint), 1e-12);
  compare_method("reverse exact reversal", model, spec, reverse(hpo::ReversePolicy::exact_reversal), 1e-12);
  compare_method("forward", model, spec, forward(), 1e-12);
  compare_method("DrMAD", model, spec, [](const hpo::BilevelProblem& p, const Tensor& th) {
    return hpo::drmad_hypergradient(p, th);
  }, 1e-12);
}

TEST_CASE("hypergradients on the GPU: Adam (reverse and forward)") {
  ModelProblemSpec spec;
  spec.optimizer = nn::OptimizerKind::adam;
  spec.lr = 0.01;
  compare_method("Adam reverse", small_mlp(), spec, reverse(hpo::ReversePolicy::store_all), 1e-12);
  compare_method("Adam forward", small_mlp(), spec, forward(), 1e-12);
}

TEST_CASE("hypergradients on the GPU: IFT with Neumann and CG") {
  ModelProblemSpec spec;
  spec.learn_optimizer = false;  // the IFT learns loss-defining groups only
  for (hpo::ImplicitSolver s : {hpo::ImplicitSolver::neumann, hpo::ImplicitSolver::cg}) {
    compare_method(s == hpo::ImplicitSolver::cg ? "IFT CG" : "IFT Neumann", small_mlp(), spec,
                   [s](const hpo::BilevelProblem& p, const Tensor& th) {
                     hpo::ImplicitOptions o;
                     o.solver = s;
                     o.iterations = 8;
                     return hpo::ift_hypergradient(p, th, o);
                   },
                   1e-12);
  }
}

TEST_CASE("hypergradients on the GPU: LeNet-5 (conv, pooling), reverse and forward mode") {
  const auto lenet = std::make_shared<nn::LeNet5>(Shape{1, 28, 28}, 10);
  ModelProblemSpec spec;
  spec.horizon = 4;
  spec.batch = 8;
  spec.train_size = 32;
  spec.val_size = 16;
  spec.lr = 0.05;
  compare_method("LeNet-5 reverse", lenet, spec, reverse(hpo::ReversePolicy::store_all), 1e-11);
  compare_method("LeNet-5 forward", lenet, spec, forward(), 1e-11);
}

}  // TEST_SUITE
