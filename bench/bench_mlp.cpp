// MLP 784-256-256-10, batch 128, float32: forward, gradient, JVP, HVP, mixed product and K = 8
// HVPs on 1 and 2 threads, with ratios measured in the same run (bench_common.h) and the
// gradient's GEMM throughput against a bare Eigen product of the same shapes.
//
// Targets (engine foundation issue): HVP ≤ 2.5× gradient, JVP ≤ 2.5× forward, K = 8 HVPs ≤
// 0.75× eight single HVPs, mixed product alone ≤ 1.3× gradient, gradient ≥ 70% of the GEMM
// ceiling at these shapes.
#include <random>
#include <vector>

#include <gradhpo/engine/autodiff.h>
#include <gradhpo/engine/kernels/math.h>

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
  // Per-parameter L2: L(w, λ) = CE + ½ Σ λ_i w_i².
  Var regularised(const Var& w, const Var& lam) const { return loss(w) + 0.5 * sum(lam * square(w)); }
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

using Runner = gradhpo::bench::ModeRunner<Problem>;

// The gradient's products done by bare Eigen on preallocated buffers: the GEMM ceiling.
void gemm_ceiling(benchmark::State& state) {
  std::vector<Eigen::MatrixXf> acts, grads, weights, wgrads;
  for (std::size_t l = 0; l < kWidths.size(); ++l) {
    acts.push_back(Eigen::MatrixXf::Random(kBatch, kWidths[l]));
    grads.push_back(Eigen::MatrixXf::Random(kBatch, kWidths[l]));
  }
  for (std::size_t l = 0; l + 1 < kWidths.size(); ++l) {
    weights.push_back(Eigen::MatrixXf::Random(kWidths[l], kWidths[l + 1]));
    wgrads.push_back(Eigen::MatrixXf::Zero(kWidths[l], kWidths[l + 1]));
  }
  auto products = [&] {
    for (std::size_t l = 0; l + 1 < kWidths.size(); ++l) acts[l + 1].noalias() = acts[l] * weights[l];
    for (std::size_t l = kWidths.size() - 1; l-- > 0;) {
      wgrads[l].noalias() = acts[l].transpose() * grads[l + 1];
      if (l > 0) grads[l].noalias() = grads[l + 1] * weights[l].transpose();
    }
  };
  gradhpo::bench::timed(state, products);
  state.counters["GFLOPs"] = benchmark::Counter(gradient_flops() * static_cast<double>(state.iterations()) / 1e9,
                                                benchmark::Counter::kIsRate);
}

void register_all() {
  using gradhpo::bench::register_modes;
  using gradhpo::bench::timed;
  using gradhpo::bench::timed_pair;
  const auto threads = {1, 2};
  register_modes("mlp", "forward", [](benchmark::State& s) { Runner r(problem()); timed(s, [&] { r.forward(); }); }, threads);
  register_modes("mlp", "gradient", [](benchmark::State& s) {
    Runner r(problem());
    // Paired with the bare-Eigen products of the same shapes: gemm_fraction = ceiling / ours.
    timed(s, [&] { r.gradient(); });
    s.counters["GFLOPs"] = benchmark::Counter(gradient_flops() * static_cast<double>(s.iterations()) / 1e9,
                                              benchmark::Counter::kIsRate);
  }, threads);
  register_modes("mlp", "gemm_ceiling", gemm_ceiling, threads);
  register_modes("mlp", "jvp", [](benchmark::State& s) {
    Runner r(problem());
    timed_pair(s, [&] { r.jvp1(); }, [&] { r.forward(); }, "jvp_vs_forward");
  }, threads);
  register_modes("mlp", "hvp", [](benchmark::State& s) {
    Runner r(problem());
    timed_pair(s, [&] { r.hvp1(); }, [&] { r.gradient(); }, "hvp_vs_grad");
  }, threads);
  register_modes("mlp", "mixed", [](benchmark::State& s) {
    Runner r(problem());
    // Baseline: the gradient of the same regularised loss L(w, λ) (what one training step pays).
    timed_pair(s, [&] { r.mixed(); }, [&] { r.gradient_regularised(); }, "mixed_vs_grad");
  }, threads);
  register_modes("mlp", "hvp_k8", [](benchmark::State& s) {
    Runner r(problem());
    timed_pair(s, [&] { r.hvp8(); }, [&] { for (int k = 0; k < 8; ++k) r.hvp1(); }, "k8_vs_8x_hvp");
  }, threads);
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
