// Device memory: the caching pool makes no cudaMalloc in steady state (counted, as the CPU tape
// test counts host blocks), a failed allocation is a gradhpo::Error naming the call and the
// code, and float32 products are exact float32 (TF32 off by default).
#include <doctest/doctest.h>

#include <gradhpo/cuda/cuda.h>
#include <gradhpo/engine/ops.h>

#include "device_test.h"

using namespace gradhpo;
using namespace gradhpo::testing;

TEST_SUITE("device") {

TEST_CASE("a repeated forward-over-reverse step makes no new device allocation") {
  const Tensor x = seeded(Shape{32, 16}, 5, DType::f32).to(Device::cuda);
  const Tensor labels = Tensor::from_labels(std::vector<std::int32_t>(32, 3)).to(Device::cuda);
  const Tensor w = seeded(Shape{16 * 8}, 6, DType::f32).to(Device::cuda);
  const Tensor lam = seeded(Shape{16 * 8}, 7, DType::f32, 0.01, 0.1).to(Device::cuda);
  const Tensor v = seeded(Shape{16 * 8}, 8, DType::f32).to(Device::cuda);
  auto f = [&](const Var& W, const Var& L) {
    const Var logits = matmul(x, reshape(W, Shape{16, 8}));
    return cross_entropy(tanh(logits), labels) + 0.5 * sum(L * square(W));
  };
  Tape tape;
  for (int i = 0; i < 3; ++i) mixed_vjp(tape, f, w, lam, v, true);  // warm up
  const std::size_t before = pool_stats(Device::cuda).heap_allocations;
  for (int i = 0; i < 10; ++i) mixed_vjp(tape, f, w, lam, v, true);
  CHECK(pool_stats(Device::cuda).heap_allocations == before);
}

TEST_CASE("an allocation the device cannot satisfy is an Error naming cudaMalloc and the code") {
  CHECK_THROWS_WITH_AS((void)Tensor::empty(Shape{std::int64_t{1} << 50}, DType::f32, Device::cuda),
                       doctest::Contains("cudaMalloc(&block, bytes) failed: cudaErrorMemoryAllocation"), Error);
  CHECK(Tensor::full(Shape{4}, 1.5, DType::f32, Device::cuda).to_vector() == std::vector<double>(4, 1.5));
}

TEST_CASE("float32 GEMMs are exact float32 products: TF32 is off by default") {
  // Uniform entries use all 24 bits; TF32 keeps 10, which gives relative errors near 1e-3, float32
  // sums of 256 products in another order stay near 1e-7.
  const Tensor a = seeded(Shape{64, 256}, 9, DType::f32), b = seeded(Shape{256, 32}, 10, DType::f32);
  Tape tape;
  const std::vector<double> cpu = matmul(tape.constant(a), tape.constant(b)).value().to_vector();
  const std::vector<double> gpu = matmul(tape.constant(a.to(Device::cuda)), tape.constant(b.to(Device::cuda))).value().to_vector();
  CHECK(relative_difference(gpu, cpu) <= 1e-5);
}

}  // TEST_SUITE
