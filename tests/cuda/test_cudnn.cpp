// The cuDNN convolution path (cuda/cudnn_conv.h) against the im2col + cuBLAS one, both on the
// GPU, every mode (value, JVP, VJP, gradient, HVP, mixed product): a strided, padded and a
// pointwise convolution with a channel bias (float64 ≤ 1e-12, float32 ≤ 1e-5 relative), and
// LeNet-5 (the models' bounds of test_models.cpp, 1e-11 and 1e-4): the two paths sum in
// different orders. Without cuDNN in the build: one message.
#include <doctest/doctest.h>

#include <gradhpo/cuda/cuda.h>
#include <gradhpo/nn/loss.h>
#include <gradhpo/nn/models.h>

#include "device_test.h"

using namespace gradhpo;
using namespace gradhpo::testing;

namespace {

Var convnet_7x7(const Var& w, const Var& lam, Device d) { return convnet(w, lam, d, 7); }

/// f on the GPU through im2col (reference) and through cuDNN, every mode within tol.
void compare_paths(const std::string& what, const DeviceFn& f, const Shape& w_shape, const Shape& lam_shape, DType dt,
                   double tol, const Tensor& w_init = Tensor()) {
  const Tensor w = w_init.defined() ? w_init : seeded(w_shape, 1, dt);
  const Tensor lam = seeded(lam_shape, 2, dt, 0.1, 0.5);
  const Tensor V = seeded(Shape{2, w_shape.numel()}, 3, dt, -0.1, 0.1);
  cuda::set_cudnn(false);
  const ModeResults ref = run_modes(f, w, lam, V, Device::cuda);
  cuda::set_cudnn(true);
  const std::int64_t before = cuda::cudnn_launches();
  const ModeResults got = run_modes(f, w, lam, V, Device::cuda);
  // cuDNN really ran (a geometry without a deterministic algorithm falls back to im2col, and
  // this would compare im2col with itself).
  CHECK(cuda::cudnn_launches() > before);
  check_same(what + " (" + dtype_name(dt) + ", cuDNN vs im2col)", ref, got, tol);
}

}  // namespace

TEST_SUITE("device") {

TEST_CASE("cuDNN convolutions equal im2col + cuBLAS in every mode") {
  if (!cuda::cudnn_available()) {
    MESSAGE("this build has no cuDNN (GRADHPO_CUDNN found none): nothing to compare");
    return;
  }
  for (DType dt : {DType::f64, DType::f32})
    compare_paths("strided, padded and 1x1 convolutions", convnet_7x7, Shape{kConvParams}, Shape{4}, dt,
                  dt == DType::f64 ? kTolF64 : kTolF32);
  const nn::LeNet5 lenet(Shape{1, 28, 28}, 10);
  const Tensor x = seeded(Shape{8, 1, 28, 28}, 31, DType::f64);
  const Tensor labels = Tensor::from_labels({0, 1, 2, 3, 4, 5, 6, 7});
  const DeviceFn loss = [&](const Var& w, const Var& lam, Device d) {
    return cross_entropy(lenet.forward(w, x.to(w.dtype()).to(d), nn::Context::train()), labels.to(d)) +
           0.5 * sum(lam * square(w));
  };
  for (DType dt : {DType::f64, DType::f32})
    compare_paths("LeNet-5", loss, Shape{lenet.num_params()}, Shape{lenet.num_params()}, dt,
                  dt == DType::f64 ? 1e-11 : 1e-4, lenet.init(5, nn::InitScheme::pytorch, dt));
}

}  // TEST_SUITE
