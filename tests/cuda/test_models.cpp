// Whole models on the GPU against the CPU, every mode: an MLP, LeNet-5 and a small WRN-16 (train
// and eval mode), with cross-entropy and a per-parameter L2 whose λ the mixed product crosses.
// Tolerances are looser than the ops' (float64 1e-11, float32 1e-4): a model chains dozens of
// ops whose sums run in different orders on the two devices (cuBLAS vs Eigen blocking), and in
// float32 a relu or max-pool decision can flip on a value within rounding of its kink.
#include <doctest/doctest.h>

#include <gradhpo/engine/kernels/math.h>
#include <gradhpo/nn/loss.h>
#include <gradhpo/nn/models.h>

#include "device_test.h"

using namespace gradhpo;
using namespace gradhpo::testing;

namespace {

constexpr double kModelTolF64 = 1e-11;
constexpr double kModelTolF32 = 1e-4;

void compare_model(const nn::Model& model, std::int64_t batch, bool training) {
  const Shape in = model.input_shape();
  const Tensor x = seeded(Shape{batch, in[0], in[1], in[2]}, 31, DType::f64);
  std::vector<std::int32_t> l(static_cast<std::size_t>(batch));
  for (std::size_t i = 0; i < l.size(); ++i) l[i] = static_cast<std::int32_t>(i % model.num_classes());
  const Tensor labels = Tensor::from_labels(l);
  const DeviceFn loss = [&](const Var& w, const Var& lam, Device d) {
    nn::ModelState state = model.init_state(w.dtype());
    // Running statistics away from the batch's (mean 0.1, variance 1.5), moved to the device.
    for (Tensor& t : state.running_mean) t = kernels::affine(t, 1.0, 0.1).to(d);
    for (Tensor& t : state.running_var) t = kernels::affine(t, 1.5, 0.0).to(d);
    const nn::Context ctx = training ? nn::Context::train() : nn::Context::eval(state);
    const Var logits = model.forward(w, x.to(w.dtype()).to(d), ctx);
    return cross_entropy(logits, labels.to(d)) + 0.5 * sum(lam * square(w));
  };
  const std::string what = model.describe() + (training ? " train" : " eval");
  const Shape p{model.num_params()};
  // Weights at the model's own initialization scale, not uniform in [-1, 1].
  for (DType dt : {DType::f64, DType::f32}) {
    const Tensor w = model.init(5, nn::InitScheme::pytorch, dt);
    const Tensor lam = seeded(p, 2, dt, 0.001, 0.01);
    const Tensor V = seeded(Shape{2, p[0]}, 3, dt, -0.1, 0.1);
    const ModeResults ref = run_modes(loss, w, lam, V, Device::cpu);
    const ModeResults got = run_modes(loss, w, lam, V, Device::cuda);
    check_same(what + " (" + dtype_name(dt) + ")", ref, got, dt == DType::f64 ? kModelTolF64 : kModelTolF32);
  }
}

}  // namespace

TEST_SUITE("device") {

TEST_CASE("MLP 1x8x8 -> 32 -> 16 -> 10") {
  nn::MlpOptions o;
  o.hidden = {32, 16};
  compare_model(nn::Mlp(Shape{1, 8, 8}, 10, o), 16, true);
}

TEST_CASE("LeNet-5 on 1x28x28 images") { compare_model(nn::LeNet5(Shape{1, 28, 28}, 10), 8, true); }

TEST_CASE("WRN-16 (widths 4, 4, 8, 16) on 3x8x8 images, train and eval mode") {
  nn::WideResNetOptions o;
  o.base_width = 4;
  const nn::WideResNet wrn(Shape{3, 8, 8}, 10, o);
  compare_model(wrn, 8, true);
  compare_model(wrn, 8, false);
}

}  // TEST_SUITE
