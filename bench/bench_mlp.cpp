// MLP 784-256-256-10, batch 128, float32: forward, gradient, JVP, HVP, mixed product and K = 8
// HVPs on 1 and 2 threads, with ratios measured in the same run (bench_common.h) and, for
// every mode, gemm_fraction: how close it runs to the bare speed of its own products.
//
// Targets (issue 9): HVP ≤ 2.5× gradient, JVP ≤ 2.5× forward, K = 8 HVPs ≤ 0.6× eight single
// HVPs, mixed product ≤ 1.2× gradient, gradient gemm_fraction ≥ 0.7.
#include <random>
#include <vector>

#include <gradhpo/engine/autodiff.h>

#include "bench_common.h"

using namespace gradhpo;

namespace {

constexpr std::int64_t kBatch = 128;
const std::vector<std::int64_t> kWidths = {784, 256, 256, 10};


struct Problem {
  std::int64_t n = 0;  // parameters
  Tensor x, labels, w, lam, v, V8;

  Problem() {
    for (std::size_t l = 0; l + 1 < kWidths.size(); ++l) n += kWidths[l] * kWidths[l + 1] + kWidths[l + 1];
    x = bench::random_normal(Shape{kBatch, kWidths[0]}, 1.0, 1);
    std::vector<std::int32_t> y(kBatch);
    for (std::int64_t i = 0; i < kBatch; ++i) y[static_cast<std::size_t>(i)] = static_cast<std::int32_t>(i % 10);
    labels = Tensor::from_labels(y);
    w = bench::random_normal(Shape{n}, 0.05, 2);
    lam = Tensor::full(Shape{n}, 1e-3, DType::f32);
    v = bench::random_normal(Shape{n}, 1.0, 3);
    V8 = bench::random_normal(Shape{8, n}, 1.0, 4);
  }

  // logits = W3ᵀ relu(W2ᵀ relu(W1ᵀ x + b1) + b2) + b3, weights sliced from the flat w.
  Var logits(const Var& w) const {
    Var h = w.tape().constant(x);
    std::int64_t off = 0;
    for (std::size_t l = 0; l + 1 < kWidths.size(); ++l) {
      const std::int64_t in = kWidths[l], out = kWidths[l + 1];
      const Var W = slice(w, off, Shape{in, out});
      off += in * out;
      const Var b = slice(w, off, Shape{out});
      off += out;
      h = matmul(h, W) + b;
      if (l + 2 < kWidths.size()) h = relu(h);
    }
    return h;
  }
  Var loss(const Var& w) const { return cross_entropy(logits(w), labels); }
  // Per-parameter L2: L(w, λ) = CE + ½ Σ λ_i w_i², as nn::l2_penalty writes it (one primitive).
  Var regularised(const Var& w, const Var& lam) const { return loss(w) + weighted_l2(w, lam); }
};

const Problem& problem() {
  static const Problem p;
  return p;
}

double gradient_flops() {
  // Forward: every layer's product. Backward: every layer's weight gradient, and the input
  // gradient of every layer but the first (its input is data).
  double f = 0;
  for (std::size_t l = 0; l + 1 < kWidths.size(); ++l) {
    const double mnk = 2.0 * kBatch * static_cast<double>(kWidths[l] * kWidths[l + 1]);
    f += mnk * (l == 0 ? 2 : 3);
  }
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  gradhpo::bench::register_all_modes("mlp", problem, {1, 2}, gradient_flops());
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
