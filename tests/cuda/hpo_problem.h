// A bilevel problem over an nn::Model written as a user loss (no data/ library: the GPU machine's
// build has none), with its weights and synthetic data on a chosen device: what tests/cuda's
// hypergradient checks and bench/gpu/bench_gpu_hypergradient.cpp run.
//
//   L_train(w, λ; t) = cross-entropy of batch t (rows t·B mod n, ...) + ½ λ_l2 ‖w‖²
//   L_val(w)         = cross-entropy on a held-out synthetic set
// with λ_l2 (exp) learned, and optionally the optimizer's lr (2 blocks), momentum (sigmoid) and
// weight decay. Images are N(0, 1) noise, labels a fixed formula of the image (so training
// makes progress); the same seeds give the same problem on every device.
#pragma once

#include <memory>
#include <random>
#include <vector>

#include <gradhpo/engine/ops.h>
#include <gradhpo/hpo/problem.h>
#include <gradhpo/nn/loss.h>
#include <gradhpo/nn/models.h>

namespace gradhpo::testing {

struct ModelProblemSpec {
  std::int64_t horizon = 8;
  std::int64_t batch = 16;
  std::int64_t train_size = 64;
  std::int64_t val_size = 32;
  DType dtype = DType::f64;
  Device device = Device::cpu;
  nn::OptimizerKind optimizer = nn::OptimizerKind::sgd;
  bool learn_optimizer = true;  ///< lr, momentum and weight decay as hyperparameters too
  double lr = 0.1;
};

/// n images of the model's input shape and their labels (the argmax of a fixed projection).
inline void synthetic_set(const nn::Model& model, std::int64_t n, std::uint64_t seed, DType dtype, Device device,
                          Tensor& x, Tensor& y) {
  const Shape in = model.input_shape();
  const std::int64_t d = in.numel(), C = model.num_classes();
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<double> v(static_cast<std::size_t>(n * d));
  for (double& e : v) e = normal(rng);
  std::vector<std::int32_t> labels(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    std::int64_t best = 0;
    double best_score = -1e300;
    for (std::int64_t c = 0; c < C; ++c) {
      double s = 0;
      for (std::int64_t j = 0; j < d; j += 3) s += v[static_cast<std::size_t>(i * d + j)] * std::sin(1.7 * (c + 1) * (j + 1));
      if (s > best_score) best_score = s, best = c;
    }
    labels[static_cast<std::size_t>(i)] = static_cast<std::int32_t>(best);
  }
  x = Tensor::from(v, Shape{n, in[0], in[1], in[2]}, dtype).to(device);
  y = Tensor::from_labels(labels).to(device);
}

inline hpo::BilevelProblem model_problem(std::shared_ptr<const nn::Model> model, const ModelProblemSpec& s) {
  hpo::BilevelProblem p;
  p.hyper.add(hpo::Hyperparameters::l2_global(1e-3));
  if (s.learn_optimizer) {
    p.hyper.add(hpo::Hyperparameters::learning_rate(2, s.lr));
    p.hyper.add(hpo::Hyperparameters::momentum(1, 0.9, hpo::Transform::sigmoid));
    p.hyper.add(hpo::Hyperparameters::weight_decay(1, 1e-4));
  }
  p.optimizer.kind = s.optimizer;
  p.optimizer.lr = nn::Schedule::constant(s.lr);
  p.optimizer.momentum = 0.9;
  p.optimizer.beta1 = 0.9;
  p.optimizer.weight_decay = 1e-4;
  p.optimizer.eps_inside_sqrt = true;
  p.horizon = s.horizon;
  p.w0 = model->init(3, nn::InitScheme::pytorch, s.dtype).to(s.device);
  p.layout = &model->layout();
  Tensor tx, ty, vx, vy;
  synthetic_set(*model, s.train_size, 11, s.dtype, s.device, tx, ty);
  synthetic_set(*model, s.val_size, 12, s.dtype, s.device, vx, vy);
  const std::int64_t B = s.batch, n = s.train_size;
  p.train_loss = [model, tx, ty, B, n](const Var& w, const hpo::HyperValues& h, std::int64_t t) {
    const std::int64_t start = (t * B) % (n - B + 1);
    const Var logits = model->forward(w, tx.rows(start, B), nn::Context::train());
    return cross_entropy(logits, ty.rows(start, B)) + nn::l2_penalty(w, h["l2"]);
  };
  p.val_loss = [model, vx, vy](const Var& w, const hpo::HyperValues&) {
    return cross_entropy(model->forward(w, vx, nn::Context::train()), vy);
  };
  p.description = "synthetic " + model->describe();
  return p;
}

}  // namespace gradhpo::testing
