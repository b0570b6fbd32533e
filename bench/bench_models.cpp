// LeNet-5 (batch 128, 1×28×28) and WRN-16-1 (batch 128, 3×32×32, batch norm in training mode),
// float32, 1 and 2 threads: forward (plain mode), gradient, JVP, HVP, mixed product and K = 8
// HVPs of the cross-entropy loss, each reusing one Tape across iterations, on random data of the
// right shape. Same conventions as bench_mlp.cpp: names "<model>/<mode>/threads:<n>", ms, manual
// time excluding setup; the ratios and gemm_fraction are described at
// bench::register_all_modes (bench_common.h).
//
// bench/pytorch_compare.py runs the same problems in PyTorch and prints ours/PyTorch.
#include <random>
#include <vector>

#include <gradhpo/engine/autodiff.h>
#include <gradhpo/nn/nn.h>

#include "bench_common.h"

using namespace gradhpo;

namespace {

constexpr std::int64_t kBatch = 128;
constexpr std::int64_t kClasses = 10;


/// One model with its data, weights, per-parameter λ and directions.
struct Problem {
  std::unique_ptr<nn::Model> model;
  std::int64_t n = 0;
  Tensor x, labels, w, lam, v, V8;

  Problem(const std::string& name, const Shape& input) : model(nn::make_model(name, input, kClasses)) {
    n = model->num_params();
    x = bench::random_normal(Shape{kBatch, input[0], input[1], input[2]}, 1.0, 1);
    std::mt19937_64 rng(2);
    std::vector<std::int32_t> y(kBatch);
    for (auto& label : y) label = static_cast<std::int32_t>(rng() % kClasses);
    labels = Tensor::from_labels(y);
    w = model->init(3);
    lam = Tensor::full(Shape{n}, 1e-3, DType::f32);
    v = bench::random_normal(Shape{n}, 1.0, 4);
    V8 = bench::random_normal(Shape{8, n}, 1.0, 5);
  }

  // Batch norm in training mode (batch statistics); running statistics are left alone.
  Var loss(const Var& w_) const {
    return cross_entropy(model->forward(w_, x, nn::Context::train()), labels);
  }
  // Per-parameter L2: L(w, λ) = CE + ½ Σ λ_i w_i².
  Var regularised(const Var& w_, const Var& lam_) const { return loss(w_) + nn::l2_penalty(w_, lam_); }
};

const Problem& lenet5() {
  static const Problem p("lenet5", Shape{1, 28, 28});
  return p;
}
const Problem& wrn16() {
  static const Problem p("wrn16", Shape{3, 32, 32});
  return p;
}

}  // namespace

int main(int argc, char** argv) {
  gradhpo::bench::register_all_modes("lenet5", lenet5, {1, 2});
  gradhpo::bench::register_all_modes("wrn16", wrn16, {1, 2});
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
