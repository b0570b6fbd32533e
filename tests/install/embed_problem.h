// An embedder's own bilevel problem, shared by the consumer's programs: a user-written loss on
// Vars over the user's own tensors (least squares with an L2 hyperparameter, full batch, 12
// training and 6 validation examples, 3 features), no nn model.
#pragma once

#include <gradhpo/engine/ops.h>
#include <gradhpo/hpo/problem.h>

#include <cmath>
#include <memory>
#include <vector>

namespace consumer {

struct Data {
  gradhpo::Tensor X, Y, Xv, Yv;
};

inline std::shared_ptr<const Data> make_data() {
  using namespace gradhpo;
  std::vector<double> x, y, xv, yv;
  for (int i = 0; i < 18; ++i) {
    double target = 0;
    for (int j = 0; j < 3; ++j) {
      const double v = std::sin(1.1 * i + 0.7 * j);
      (i < 12 ? x : xv).push_back(v);
      target += v * (j + 1);
    }
    (i < 12 ? y : yv).push_back(target + 0.1 * std::cos(3.0 * i));
  }
  auto d = std::make_shared<Data>();
  d->X = Tensor::from(x, Shape{12, 3}, DType::f64);
  d->Y = Tensor::from(y, Shape{12, 1}, DType::f64);
  d->Xv = Tensor::from(xv, Shape{6, 3}, DType::f64);
  d->Yv = Tensor::from(yv, Shape{6, 1}, DType::f64);
  return d;
}

/// An L2 coefficient (λ = e^θ) and, with `learn_lr`, two learning rates shared over halves of
/// the run, for SGD with momentum 0.9 over `horizon` steps.
inline gradhpo::hpo::BilevelProblem make_problem(bool learn_lr = true, std::int64_t horizon = 40) {
  using namespace gradhpo;
  const std::shared_ptr<const Data> d = make_data();
  hpo::BilevelProblem p;
  p.hyper.add(hpo::Hyperparameters::l2_global(0.1));
  if (learn_lr) p.hyper.add(hpo::Hyperparameters::learning_rate(2, 0.05));
  p.train_loss = [d](const Var& w, const hpo::HyperValues& h, std::int64_t) {
    const Var r = matmul(d->X, reshape(w, Shape{3, 1})) - d->Y;
    return mean(square(r)) + 0.5 * reshape(h["l2"], Shape{}) * dot(w, w);
  };
  p.val_loss = [d](const Var& w, const hpo::HyperValues&) {
    return mean(square(matmul(d->Xv, reshape(w, Shape{3, 1})) - d->Yv));
  };
  p.optimizer.momentum = 0.9;
  if (!learn_lr) p.optimizer.lr = nn::Schedule::constant(0.05);
  p.horizon = horizon;
  p.w0 = Tensor::zeros(Shape{3}, DType::f64);
  return p;
}

}  // namespace consumer
