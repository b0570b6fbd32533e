// hpo/'s hypergradient methods with the weights and the data on the GPU, against the same run on
// the CPU (float64): reverse mode (store-all, checkpointing, exact reversal, which runs its
// fixed-point arithmetic on the host and copies per step), forward mode, DrMAD, Adam, and the
// IFT (Neumann, CG). The host-emulated device (tests/hpo/test_device.cpp) already checks that
// every method dispatches and gives the CPU's bits through the seam; here only the kernels'
// summation order differs, so the hypergradients agree to float64 rounding: relative ≤ 1e-12
// for an MLP, ≤ 1e-11 for LeNet-5 (the models' bound in test_models.cpp: more ops in a chain).
#include <doctest/doctest.h>

#include <map>

#include <gradhpo/hpo/registry.h>

#include "device_test.h"
#include "hpo_problem.h"

using namespace gradhpo;
using namespace gradhpo::testing;

namespace {

/// A method made by name from the registry.
std::unique_ptr<hpo::Method> make(const std::string& name, const std::map<std::string, std::string>& options = {}) {
  hpo::register_builtin_methods();
  return hpo::Registry::global().make_offline(name, options);
}

void compare_method(const std::string& what, std::shared_ptr<const nn::Model> model, ModelProblemSpec spec,
                    const std::unique_ptr<hpo::Method>& m, double tol) {
  INFO(what);
  spec.device = Device::cpu;
  const hpo::BilevelProblem cpu = model_problem(model, spec);
  spec.device = Device::cuda;
  const hpo::BilevelProblem gpu = model_problem(model, spec);
  const Tensor theta = cpu.hyper.initial(DType::f64);
  const hpo::Hypergradient want = m->compute(cpu, theta), got = m->compute(gpu, theta);
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

std::unique_ptr<hpo::Method> reverse(const char* policy) { return make("reverse", {{"policy", policy}, {"checkpoint-every", "3"}}); }

}  // namespace

TEST_SUITE("device") {

TEST_CASE("hypergradients on the GPU: reverse mode (store-all, checkpoint, exact reversal), forward mode, DrMAD") {
  const auto model = small_mlp();
  const ModelProblemSpec spec;
  compare_method("reverse store-all", model, spec, reverse("store-all"), 1e-12);
  compare_method("reverse checkpoint", model, spec, reverse("checkpoint"), 1e-12);
  compare_method("reverse exact reversal", model, spec, reverse("exact-reversal"), 1e-12);
  compare_method("forward", model, spec, make("forward"), 1e-12);
  compare_method("DrMAD", model, spec, make("drmad"), 1e-12);
}

TEST_CASE("hypergradients on the GPU: Adam (reverse and forward)") {
  ModelProblemSpec spec;
  spec.optimizer = nn::OptimizerKind::adam;
  spec.lr = 0.01;
  compare_method("Adam reverse", small_mlp(), spec, reverse("store-all"), 1e-12);
  compare_method("Adam forward", small_mlp(), spec, make("forward"), 1e-12);
}

TEST_CASE("hypergradients on the GPU: IFT with Neumann and CG") {
  ModelProblemSpec spec;
  spec.learn_optimizer = false;  // the IFT learns loss-defining groups only
  for (const char* s : {"neumann", "cg"})
    compare_method(std::string("IFT ") + s, small_mlp(), spec, make("ift", {{"solver", s}, {"iterations", "8"}}), 1e-12);
}

TEST_CASE("hypergradients on the GPU: LeNet-5 (conv, pooling), reverse and forward mode") {
  const auto lenet = std::make_shared<nn::LeNet5>(Shape{1, 28, 28}, 10);
  ModelProblemSpec spec;
  spec.horizon = 4;
  spec.batch = 8;
  spec.train_size = 32;
  spec.val_size = 16;
  spec.lr = 0.05;
  compare_method("LeNet-5 reverse", lenet, spec, reverse("store-all"), 1e-11);
  compare_method("LeNet-5 forward", lenet, spec, make("forward"), 1e-11);
}

}  // TEST_SUITE
