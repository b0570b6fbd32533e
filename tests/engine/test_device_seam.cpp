// The device seam (engine/backend.h) on a machine without a GPU: a host-emulated device is
// registered in the Device::cuda slot; its memory is host memory and its kernels copy to the
// CPU, run the CPU kernel and copy back. Every op that forgets its operands' device (allocates
// on the CPU, reads device memory from host code, skips the dispatch) then fails or differs
// here, before any GPU session: this is the engine's half of issue 10, tested everywhere.
// (Each TEST_CASE is its own process under ctest, so registering the emulator is local to it.)
// The emulator itself is in emulated_device.h (tests/hpo/test_device.cpp uses it too).
#include <doctest/doctest.h>

#include <cstdlib>
#include <cstring>

#include <gradhpo/engine/backend.h>
#include <gradhpo/engine/kernels/gemm.h>
#include <gradhpo/engine/kernels/math.h>
#include <gradhpo/engine/ops.h>

#include "device_compare.h"
#include "emulated_device.h"

using namespace gradhpo;
using namespace gradhpo::testing;

namespace {

// A 4-3-2 tanh MLP with a squared-error loss, per-parameter L2 through λ, and a slice/concat.
constexpr std::int64_t kParams = 4 * 3 + 3 + 3 * 2 + 2;  // 23
Var mlp(const Var& w, const Var& lam, Device d) {
  Tape& t = w.tape();
  const Var x = t.constant(seeded(Shape{5, 4}, 7, w.dtype()).to(d));
  const Var W1 = slice(w, 0, Shape{4, 3}), b1 = slice(w, 12, Shape{3});
  const Var W2 = slice(w, 15, Shape{3, 2}), b2 = slice(w, 21, Shape{2});
  const Var h = tanh(matmul(x, W1) + b1);
  const Var out = matmul(h, W2) + b2;
  const Var both = concat({reshape(out, Shape{10}), sigmoid(slice(w, 0, Shape{3}))});
  return both * 0.5 + sum(lam * square(w)) + sum(mean(softplus(out), 0)) + sum(exp(out) / 4.0);
}

}  // namespace

TEST_CASE("without a device backend a device tensor cannot be made, and the error says why") {
  try {
    (void)Tensor::empty(Shape{3}, DType::f32, Device::cuda);
    FAIL("expected an error");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("no cuda backend") != std::string::npos);
  }
}

TEST_CASE("host code cannot read a device tensor, and ops reject operands on different devices") {
  use_emulator();
  const Tensor a = Tensor::full(Shape{4}, 2.0, DType::f64, Device::cuda);
  CHECK_THROWS_WITH_AS((void)a.data<double>(), doctest::Contains("the tensor is on cuda"), Error);
  CHECK(a.to_vector() == std::vector<double>{2, 2, 2, 2});  // reads go through copies
  CHECK(a.rows(1, 1).item() == 2.0);
}

TEST_CASE("operands on different devices are an error naming the op") {
  use_emulator();
  const Tensor a = Tensor::full(Shape{4}, 2.0, DType::f64, Device::cuda);
  const Tensor b = Tensor::full(Shape{4}, 1.0, DType::f64);
  CHECK_THROWS_WITH_AS(kernels::binary(kernels::BinaryOp::add, a, b), doctest::Contains("add: operands are on different devices"), Error);
}

TEST_CASE("Tensor::to moves data both ways and views keep their offsets") {
  use_emulator();
  const Tensor h = Tensor::from({1, 2, 3, 4, 5, 6}, Shape{2, 3}, DType::f32);
  const Tensor d = h.to(Device::cuda);
  CHECK(d.device() == Device::cuda);
  CHECK(d.shape() == h.shape());
  CHECK(d.rows(1, 1).to_vector() == std::vector<double>{4, 5, 6});
  CHECK(d.at(4) == 5.0);
  CHECK(d.clone().to(Device::cpu).to_vector() == h.to_vector());
  CHECK(d.to(DType::f64).device() == Device::cuda);
}

TEST_CASE("every mode of an MLP on the emulated device equals the CPU exactly") {
  use_emulator();
  for (DType dt : {DType::f64, DType::f32})
    compare_devices("mlp", mlp, Shape{kParams}, Shape{kParams}, dt, Device::cuda, 0.0);
  CHECK(g_kernel_calls > 0);
}

Var convnet_5x5(const Var& w, const Var& lam, Device d) { return convnet(w, lam, d, 5); }

// Not bit for bit: without the value the emulated tangent GEMMs stack fewer filter banks than
// the CPU's fused value-and-tangent product, so Eigen blocks them differently.
TEST_CASE("every mode of a small convolutional network on the emulated device equals the CPU to rounding") {
  use_emulator();
  compare_devices("convnet", convnet_5x5, Shape{kConvParams}, Shape{4}, DType::f64, Device::cuda, 1e-15);
  compare_devices("convnet", convnet_5x5, Shape{kConvParams}, Shape{4}, DType::f32, Device::cuda, 1e-7);
  CHECK(g_kernel_calls > 0);
}

TEST_CASE("the pool caches device blocks apart from host blocks: a repeated step allocates nothing") {
  use_emulator();
  const Tensor w = seeded(Shape{kParams}, 1, DType::f32).to(Device::cuda);
  const Tensor lam = seeded(Shape{kParams}, 2, DType::f32).to(Device::cuda);
  const Tensor v = seeded(Shape{kParams}, 3, DType::f32).to(Device::cuda);
  Tape tape;
  auto f = [&](const Var& W, const Var& L) { return sum(mlp(W, L, Device::cuda)); };
  for (int i = 0; i < 3; ++i) mixed_vjp(tape, f, w, lam, v, true);  // warm up
  const std::size_t device_before = pool_stats(Device::cuda).heap_allocations;
  for (int i = 0; i < 5; ++i) mixed_vjp(tape, f, w, lam, v, true);
  CHECK(pool_stats(Device::cuda).heap_allocations == device_before);
  CHECK(pool_stats(Device::cuda).live_bytes > 0);
}
