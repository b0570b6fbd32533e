// Small float64 bilevel problems on formula-generated data, shared by the hpo tests: a tanh
// MLP (smooth, so central differences of the whole training run are accurate to ~1e-10) on a
// 3-class problem whose labels come from a fixed formula of the inputs.
#pragma once

#include <cmath>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include <gradhpo/data/dataset.h>
#include <gradhpo/engine/finite_diff.h>
#include <gradhpo/hpo/tasks/classification.h>
#include <gradhpo/hpo/inner_run.h>
#include <gradhpo/hpo/registry.h>
#include <gradhpo/engine/ops.h>
#include <gradhpo/nn/loss.h>

namespace gradhpo::testing {

/// n examples of 2×2 "images" x_i (4 features from sines of i) with label argmax(A x_i).
inline data::Dataset formula_data(std::int64_t n, std::int64_t offset, const std::string& name) {
  data::Dataset d;
  d.name = name;
  d.num_classes = 3;
  std::vector<double> x(static_cast<std::size_t>(n * 4));
  for (std::int64_t i = 0; i < n; ++i) {
    double score[3] = {0, 0, 0};
    for (int j = 0; j < 4; ++j) {
      const double v = std::sin(0.7 * static_cast<double>(i + offset) * (j + 1) + 0.3 * j);
      x[static_cast<std::size_t>(i * 4 + j)] = v;
      for (int c = 0; c < 3; ++c) score[c] += v * std::cos(1.3 * (c + 1) * (j + 1));
    }
    int best = 0;
    for (int c = 1; c < 3; ++c)
      if (score[c] > score[best]) best = c;
    d.labels.push_back(best);
  }
  d.images = Tensor::from(x, Shape{n, 1, 2, 2}, DType::f32);
  return d;
}

struct ToySpec {
  nn::OptimizerKind optimizer = nn::OptimizerKind::sgd;
  std::int64_t horizon = 60;
  std::int64_t batch_size = 8;   // 0: full batch
  std::int64_t train_size = 24;
  std::int64_t lr_blocks = 3;
  bool learn_lr = true, learn_momentum = true, learn_weight_decay = true;
  enum class L2 { none, global, per_tensor, per_entry } l2 = L2::per_tensor;
  bool example_weights = true;
  double lr = 0.3, momentum = 0.9, weight_decay = 1e-3;
  std::uint64_t batch_seed = 0, init_seed = 0;
  std::int64_t hidden = 5;
  Device device = Device::cpu;  // where w and the data live (tests/hpo/test_device.cpp)
  int shard_count = 1, shard_rank = 0;  // data-parallel: this process's shard of every batch (tests/mpi)
};

/// A learning-rate schedule of 4 blocks and the momentum, nothing loss-defining: the outer
/// loop's and hpo::solve's toy problem.
inline ToySpec schedule_spec() {
  ToySpec spec;
  spec.lr = 0.05;
  spec.lr_blocks = 4;
  spec.learn_weight_decay = false;
  spec.l2 = ToySpec::L2::none;
  spec.example_weights = false;
  spec.momentum = 0.5;
  return spec;
}

inline hpo::ClassificationTask toy_task(const ToySpec& s) {
  nn::MlpOptions mo;
  mo.hidden = {s.hidden};
  mo.activation = nn::Activation::tanh;
  auto model = std::make_shared<nn::Mlp>(Shape{1, 2, 2}, 3, mo);
  hpo::Hyperparameters h;
  const bool adam = s.optimizer == nn::OptimizerKind::adam;
  if (s.learn_lr) h.add(hpo::Hyperparameters::learning_rate(s.lr_blocks, adam ? 0.05 : s.lr));
  if (s.learn_momentum) h.add(hpo::Hyperparameters::momentum(1, s.momentum, hpo::Transform::sigmoid));
  if (s.learn_weight_decay) h.add(hpo::Hyperparameters::weight_decay(1, s.weight_decay));
  switch (s.l2) {
    case ToySpec::L2::none: break;
    case ToySpec::L2::global: h.add(hpo::Hyperparameters::l2_global(1e-2)); break;
    case ToySpec::L2::per_tensor: {
      std::vector<std::string> names;
      const std::vector<int> groups = nn::layer_groups(model->layout(), &names);
      h.add(hpo::Hyperparameters::l2_per_tensor(groups, names, 1e-2));
      break;
    }
    case ToySpec::L2::per_entry: h.add(hpo::Hyperparameters::l2_per_entry(model->num_params(), 1e-2)); break;
  }
  if (s.example_weights) h.add(hpo::Hyperparameters::example_weights(s.train_size, 0.8));
  nn::OptimizerConfig opt;
  opt.kind = s.optimizer;
  opt.lr = nn::Schedule::constant(adam ? 0.05 : s.lr);
  opt.momentum = s.momentum;
  opt.beta1 = s.momentum;
  opt.weight_decay = s.weight_decay;
  opt.eps_inside_sqrt = true;
  hpo::ClassificationOptions co;
  co.batch_size = s.batch_size;
  co.batch_seed = s.batch_seed;
  co.init_seed = s.init_seed;
  co.dtype = DType::f64;
  co.device = s.device;
  co.shard_count = s.shard_count;
  co.shard_rank = s.shard_rank;
  return hpo::make_classification_task(model, formula_data(s.train_size, 0, "formula:train"),
                                       formula_data(16, 1000, "formula:val"), std::move(h), opt, s.horizon, co);
}

/// Central differences (with Richardson extrapolation) of L_val after the whole training run,
/// with respect to every entry of θ. The step is 1e-4, not fd's default 1e-3: L_val moves fast
/// in the weight decay (its hypergradient is ~300 here, so h = 1e-3 is off by 3e-5 relative).
constexpr double kFdStep = 1e-4;
inline std::vector<double> fd_hypergradient(const hpo::BilevelProblem& p, const Tensor& theta) {
  std::vector<double> out;
  const std::vector<double> base = theta.to_vector();
  for (std::size_t i = 0; i < base.size(); ++i) {
    out.push_back(fd::derivative([&](double eps) {
      std::vector<double> th = base;
      th[i] += eps;
      return hpo::run_inner(p, Tensor::from(th, theta.shape(), DType::f64)).val_loss;
    }, kFdStep));
  }
  return out;
}

/// The same with respect to the initial weights.
inline std::vector<double> fd_initial_weights(hpo::BilevelProblem p, const Tensor& theta) {
  std::vector<double> out;
  const Tensor w0 = p.w0.clone();
  const std::vector<double> base = w0.to_vector();
  for (std::size_t i = 0; i < base.size(); ++i) {
    out.push_back(fd::derivative([&](double eps) {
      std::vector<double> w = base;
      w[i] += eps;
      p.w0 = Tensor::from(w, w0.shape(), DType::f64);
      return hpo::run_inner(p, theta).val_loss;
    }, kFdStep));
  }
  return out;
}

/// An offline method made by name from the global registry (registered on first use).
inline std::unique_ptr<hpo::Method> make_method(const std::string& name, const std::map<std::string, std::string>& options = {}) {
  hpo::register_builtin_methods();
  return hpo::Registry::global().make_offline(name, options);
}
/// compute() of that method over the whole run (or a segment).
inline hpo::Hypergradient run_method(const std::string& name, const hpo::BilevelProblem& p, const Tensor& theta,
                                     const std::map<std::string, std::string>& options = {}, const hpo::Segment* segment = nullptr) {
  return make_method(name, options)->compute(p, theta, segment);
}

inline double rel(const Tensor& a, const std::vector<double>& b) { return fd::rel_error(a.to_vector(), b); }
inline double rel(const Tensor& a, const Tensor& b) { return fd::rel_error(a.to_vector(), b.to_vector()); }

/// The message of the Error `f` throws ("(no error)" when it throws none).
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}
inline bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

/// A user's own hyperparameter: a plain value the losses read by name.
inline hpo::HyperGroup user_value(const std::string& name, double init) {
  hpo::HyperGroup g;
  g.name = name;
  g.kind = hpo::HyperKind::loss;
  g.init = {init};
  return g;
}

/// A one-element Var as a scalar.
inline Var scalar(const Var& v) { return reshape(v, Shape{}); }

/// A toy bilevel problem with a known answer: L_train = (w − α)², L_val = αw − 2α + 1. Training drives w
/// to w*(α) = α, so L_val(w*(α)) = (α − 1)², minimized at α = 1 (hypergradient 2(α − 1)).
/// SGD with lr 0.25 from w₀ = 0 contracts (w − α) by 1/2 per step: after T = 40 steps w_T = α
/// to 1e-12.
inline hpo::BilevelProblem toy_alpha_problem() {
  hpo::BilevelProblem p;
  p.hyper.add(user_value("alpha", 0.0));
  p.train_loss = [](const Var& w, const hpo::HyperValues& h, std::int64_t) { return sum(square(w - h["alpha"])); };
  p.val_loss = [](const Var& w, const hpo::HyperValues& h) {
    const Var a = scalar(h["alpha"]);
    return a * scalar(w) - 2.0 * a + 1.0;
  };
  p.optimizer.lr = nn::Schedule::constant(0.25);
  p.horizon = 40;
  p.w0 = Tensor::zeros(Shape{1}, DType::f64);
  p.description = "toy: L_train = (w - alpha)^2, L_val = alpha w - 2 alpha + 1";
  return p;
}

}  // namespace gradhpo::testing
