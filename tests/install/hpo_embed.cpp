// An embedder's own bilevel problem through the installed package: a user-written loss on Vars
// over the user's own tensors (least squares with an L2 hyperparameter, full batch), no nn model.
// Reverse mode (store-all, exact reversal, checkpointing) and forward mode must agree, a
// Bayesian optimization over its L2 coefficient must run, and the implicit methods link (HOAG
// needs libLBFGS through the package config).
#include <gradhpo/engine/ops.h>
#include <gradhpo/hpo/methods/forward.h>
#include <gradhpo/hpo/hoag/hoag.h>
#include <gradhpo/hpo/methods/reverse.h>
#include <gradhpo/hpo/search/bayesian/bayesian.h>

#include <cmath>
#include <cstdio>

using namespace gradhpo;

int run_hpo_embed() {
  // y = X w* + noise, 12 examples, 3 features; validation on 6 others.
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
  const Tensor X = Tensor::from(x, Shape{12, 3}, DType::f64), Y = Tensor::from(y, Shape{12, 1}, DType::f64);
  const Tensor Xv = Tensor::from(xv, Shape{6, 3}, DType::f64), Yv = Tensor::from(yv, Shape{6, 1}, DType::f64);

  hpo::BilevelProblem p;
  p.hyper.add(hpo::Hyperparameters::l2_global(0.1));
  p.hyper.add(hpo::Hyperparameters::learning_rate(2, 0.05));
  p.train_loss = [&](const Var& w, const hpo::HyperValues& h, std::int64_t) {
    const Var r = matmul(X, reshape(w, Shape{3, 1})) - Y;
    return mean(square(r)) + 0.5 * reshape(h["l2"], Shape{}) * dot(w, w);
  };
  p.val_loss = [&](const Var& w, const hpo::HyperValues&) {
    return mean(square(matmul(Xv, reshape(w, Shape{3, 1})) - Yv));
  };
  p.optimizer.momentum = 0.9;
  p.horizon = 40;
  p.w0 = Tensor::zeros(Shape{3}, DType::f64);

  const Tensor th = p.hyper.initial();
  const hpo::Hypergradient store = hpo::reverse_hypergradient(p, th);
  hpo::ReverseOptions o;
  o.policy = hpo::ReversePolicy::exact_reversal;
  const hpo::Hypergradient exact = hpo::reverse_hypergradient(p, th, o);
  o.policy = hpo::ReversePolicy::checkpoint;
  const hpo::Hypergradient ckpt = hpo::reverse_hypergradient(p, th, o);
  const hpo::Hypergradient fwd = hpo::forward_hypergradient(p, th);
  double worst = 0;
  for (std::int64_t i = 0; i < th.numel(); ++i) {
    const double ref = store.d_theta.at(i);
    for (const hpo::Hypergradient* h : {&exact, &ckpt, &fwd})
      worst = std::max(worst, std::abs(h->d_theta.at(i) - ref) / std::max(1e-12, std::abs(ref)));
    std::printf("dL_val/d%s = %.10g\n", p.hyper.entry_name(i).c_str(), ref);
  }
  std::printf("largest relative disagreement between the four exact methods: %.3g\n", worst);

  // The black-box side links GSL (Sobol design) and NLopt (GP fit, EI) through the package:
  // Bayesian optimization over the L2 coefficient must do at least as well as its start.
  hpo::BayesianOptions bo;
  bo.box = {{"l2", 1e-4, 10, true}};
  bo.budget.inner_steps = 8 * p.horizon;
  const hpo::SearchRun run = hpo::bayesian_optimization(p, bo);
  std::printf("%s\n", run.brief().c_str());
  const bool searched = run.trials.size() == 8 && run.best_val_loss() <= store.val_loss + 1e-12;

  // The implicit methods learn only the L2 coefficient: the same problem without the lr group.
  hpo::BilevelProblem implicit = p;
  implicit.hyper = hpo::Hyperparameters();
  implicit.hyper.add(hpo::Hyperparameters::l2_global(0.1));
  implicit.optimizer.lr = nn::Schedule::constant(0.05);
  implicit.horizon = 400;
  const hpo::Hypergradient ift = hpo::ift_hypergradient(implicit, implicit.hyper.initial());
  hpo::HoagOptions ho;
  ho.max_iterations = 5;
  const hpo::HoagRun hoag = hpo::run_hoag(implicit, ho);
  std::printf("IFT (CG): dL_val/dl2 = %.10g; HOAG: L_val %.6g -> %.6g in %zu iterations\n", ift.d_theta.at(0),
              hoag.iterations.front().val_loss, hoag.iterations.back().val_loss, hoag.iterations.size());
  const bool implicit_ran =
      std::isfinite(ift.d_theta.at(0)) && hoag.iterations.back().val_loss <= hoag.iterations.front().val_loss;
  return worst <= 1e-8 && searched && implicit_ran ? 0 : 1;
}
