// Implicit methods (issue 7): IFT with the Neumann series and with conjugate gradients, and HOAG,
// each against its own definition in float64 with dense algebra the engine did not do:
//   - Neumann with k terms = α Σ_{j≤k} (I − αH)^j b from dense matrix powers (1e-10 relative)
//   - CG with P iterations on a P-dimensional SPD problem = the dense LDLT solve (1e-10)
//   - the IFT's indirect term = −(∂²L/∂θ∂w) q from the engine's mixed_vjp (1e-10)
//   - IFT at the end of a long run on a strongly convex problem = exact reverse mode, to within
//     the distance from the optimum
//   - on the toy bilevel problem every method = the closed form 2(α − 1)
//   - HOAG converges on the toy problem and lowers the validation loss of an L2 problem
//   - refusals: optimizer-defining groups, NaN hyperparameters, budgets of zero.
#include <Eigen/Dense>

#include <gradhpo/engine/autodiff.h>
#include <gradhpo/hpo/tasks/compare.h>
#include <gradhpo/hpo/hoag/hoag.h>
#include <gradhpo/hpo/methods/implicit.h>
#include <gradhpo/hpo/outer.h>
#include <gradhpo/hpo/methods/reverse.h>
#include <gradhpo/hpo/tensor_math.h>

#include "toy.h"

using namespace gradhpo;
using namespace gradhpo::testing;

namespace {

Eigen::VectorXd vec(const Tensor& t) {
  const std::vector<double> v = t.to_vector();
  return Eigen::Map<const Eigen::VectorXd>(v.data(), static_cast<Eigen::Index>(v.size()));
}
Tensor tensor(const Eigen::VectorXd& v) {
  return Tensor::from(std::vector<double>(v.data(), v.data() + v.size()), Shape{v.size()}, DType::f64);
}
double rel(const Eigen::VectorXd& a, const Eigen::VectorXd& b) { return (a - b).norm() / std::max(b.norm(), 1e-300); }

/// ∇²_w L_train(w, λ; t) + μI, dense, by the engine's hessian() (not the Unroll the methods use).
Eigen::MatrixXd dense_hessian(const hpo::BilevelProblem& p, const Tensor& theta, const Tensor& w, std::int64_t t) {
  const Tensor th = theta.to(p.dtype());
  auto f = [&](const Var& W) { return p.train_loss(W, hpo::HyperValues(p.hyper, W.tape().constant(th), t, p.horizon), t); };
  const Tensor H = hessian(f, w);
  const Eigen::Index P = w.numel();
  const std::vector<double> h = H.to_vector();
  Eigen::MatrixXd M = Eigen::Map<const Eigen::MatrixXd>(h.data(), P, P);
  return M + p.optimizer.weight_decay * Eigen::MatrixXd::Identity(P, P);
}

/// ∂_θ(v · ∇_w L_train(w, θ; t)), by the engine's mixed_vjp.
Eigen::VectorXd dense_mixed(const hpo::BilevelProblem& p, const Tensor& theta, const Tensor& w, const Tensor& v,
                            std::int64_t t) {
  auto f = [&](const Var& W, const Var& Th) { return p.train_loss(W, hpo::HyperValues(p.hyper, Th, t, p.horizon), t); };
  return vec(mixed_vjp(f, w, theta.to(p.dtype()), v.to(p.dtype())).mixed);
}

hpo::LinearOperator dense_operator(const Eigen::MatrixXd& H) {
  return [H](const Tensor& x) { return tensor(H * vec(x)); };
}

/// Softmax regression with a global L2 coefficient λ = e^θ, full batch: strongly convex in w.
hpo::ClassificationTask logistic_task(std::int64_t horizon, double l2 = 0.1) {
  nn::MlpOptions mo;
  mo.hidden = {};
  auto model = std::make_shared<nn::Mlp>(Shape{1, 2, 2}, 3, mo);
  hpo::Hyperparameters h;
  h.add(hpo::Hyperparameters::l2_global(l2));
  nn::OptimizerConfig opt;
  opt.lr = nn::Schedule::constant(0.5);
  hpo::ClassificationOptions co;
  co.batch_size = 0;
  co.dtype = DType::f64;
  co.init_seed = 3;
  return hpo::make_classification_task(model, formula_data(24, 0, "formula:train"), formula_data(16, 1000, "formula:val"),
                                       std::move(h), opt, horizon, co);
}

/// The toy bilevel problem: L_train = (w − α)², L_val = αw − 2α + 1, so w*(α) = α and
/// dL_val/dα = (w − 2) + α·dw*/dα = 2(α − 1) at the optimum. SGD with lr 1/4 halves w − α each
/// step: after T = 80 steps w_T = α up to 2⁻⁸⁰.
hpo::BilevelProblem toy_bilevel(double alpha0, hpo::Transform transform = hpo::Transform::identity) {
  hpo::BilevelProblem p;
  hpo::HyperGroup g;
  g.name = "alpha";
  g.kind = hpo::HyperKind::loss;
  g.transform = transform;
  g.spread = hpo::Spread::free;
  g.init = {alpha0};  // λ; add() inverts it through the transform
  p.hyper.add(g);
  p.train_loss = [](const Var& w, const hpo::HyperValues& h, std::int64_t) { return sum(square(w - h["alpha"])); };
  p.val_loss = [](const Var& w, const hpo::HyperValues& h) {
    const Var a = h["alpha"];
    return sum(a * w - 2.0 * a) + 1.0;
  };
  p.optimizer.lr = nn::Schedule::constant(0.25);
  p.horizon = 80;
  p.w0 = Tensor::zeros(Shape{1}, DType::f64);
  return p;
}

Tensor trained_weights(const hpo::BilevelProblem& p, const Tensor& theta) {
  return hpo::run_inner(p, theta).final_state.w();
}

}  // namespace

TEST_CASE("Neumann with k terms equals alpha * sum_{j<=k} (I - alpha H)^j b from dense matrix powers") {
  const hpo::ClassificationTask task = logistic_task(40);
  const hpo::BilevelProblem& p = task.problem;
  const Tensor th = p.hyper.initial();
  const Tensor w = trained_weights(p, th);
  const std::int64_t t = p.horizon - 1;
  const Eigen::MatrixXd H = dense_hessian(p, th, w, t);
  hpo::Unroll u(p, th);
  const Eigen::VectorXd b = vec(u.validation(w).grad_w);
  const double alpha = 0.3;
  for (int k : {1, 2, 7, 25}) {
    // The definition, term by term as matrices: A = Σ_{j=0}^{k} (I − αH)^j, q = α A b.
    const Eigen::MatrixXd M = Eigen::MatrixXd::Identity(H.rows(), H.cols()) - alpha * H;
    Eigen::MatrixXd power = Eigen::MatrixXd::Identity(H.rows(), H.cols()), A = power;
    for (int j = 1; j <= k; ++j) {
      power = power * M;
      A += power;
    }
    const Eigen::VectorXd expected = alpha * A * b;
    const hpo::LinearSolve s = hpo::neumann_solve(dense_operator(H), tensor(b), alpha, k);
    CHECK(s.operator_calls == k);
    CHECK_MESSAGE(rel(vec(s.q), expected) <= 1e-10, "k = " << k);

    // And through the problem's own HVPs, with the IFT's indirect term from the engine's mixed_vjp.
    hpo::ImplicitOptions o;
    o.solver = hpo::ImplicitSolver::neumann;
    o.iterations = k;
    o.neumann_alpha = alpha;
    hpo::Unroll fresh(p, th);
    const hpo::ImplicitResult r = hpo::implicit_at(fresh, w, o);
    CHECK(rel(vec(r.solve.q), expected) <= 1e-10);
    const Eigen::VectorXd expected_hg = vec(r.hypergradient.direct) - dense_mixed(p, th, w, tensor(expected), t);
    CHECK(rel(vec(r.hypergradient.d_theta), expected_hg) <= 1e-10);
    CHECK(r.hypergradient.cost.fwd_over_rev_passes == k + 1);  // k HVPs + the final mixed product
  }
}

TEST_CASE("CG with P iterations on a P-dimensional SPD problem equals the dense LDLT solve") {
  const hpo::ClassificationTask task = logistic_task(40);
  const hpo::BilevelProblem& p = task.problem;
  const Tensor th = p.hyper.initial();
  const Tensor w = trained_weights(p, th);
  const std::int64_t t = p.horizon - 1, P = p.num_params();
  const Eigen::MatrixXd H = dense_hessian(p, th, w, t);
  REQUIRE(H.ldlt().isPositive());
  hpo::Unroll u(p, th);
  const Eigen::VectorXd b = vec(u.validation(w).grad_w);
  const Eigen::VectorXd direct = H.ldlt().solve(b);

  hpo::CgOptions cg;
  cg.tolerance = 0;  // run exactly P iterations
  cg.max_iterations = static_cast<int>(P);
  const hpo::LinearSolve s = hpo::cg_solve(dense_operator(H), tensor(b), cg);
  CHECK(s.iterations == P);
  MESSAGE("CG after P = " << P << " iterations vs LDLT: " << rel(vec(s.q), direct));
  CHECK(rel(vec(s.q), direct) <= 1e-10);

  // A warm start from the answer: one product to find the residual, and nothing left to do.
  cg.tolerance = 1e-12 * b.norm();
  const hpo::LinearSolve warm = hpo::cg_solve(dense_operator(H), tensor(b), cg, tensor(direct));
  CHECK(warm.iterations == 0);
  CHECK(warm.operator_calls == 1);

  // Through the problem's HVPs: the IFT hypergradient with the exact solve.
  hpo::ImplicitOptions o;
  o.solver = hpo::ImplicitSolver::cg;
  o.iterations = static_cast<int>(P);
  o.cg_tolerance = 0;
  const hpo::ImplicitResult r = hpo::implicit_at(u, w, o);
  CHECK(rel(vec(r.solve.q), direct) <= 1e-10);
  const Eigen::VectorXd expected_hg = vec(r.hypergradient.direct) - dense_mixed(p, th, w, tensor(direct), t);
  CHECK(rel(vec(r.hypergradient.d_theta), expected_hg) <= 1e-10);
  CHECK(r.residual <= 1e-10 * b.norm());
}

TEST_CASE("the Hessian's batches: the mean over one epoch's steps is the full-batch objective") {
  ToySpec spec;  // 24 examples in batches of 8: steps 0, 1, 2 are one epoch, covering the set once
  spec.learn_lr = spec.learn_momentum = spec.learn_weight_decay = false;
  spec.example_weights = false;
  const hpo::ClassificationTask mini = toy_task(spec);
  spec.batch_size = 0;
  const hpo::ClassificationTask full = toy_task(spec);
  const Tensor th = mini.problem.hyper.initial();
  const Tensor w = trained_weights(mini.problem, th), v = tensor(Eigen::VectorXd::LinSpaced(w.numel(), -1, 1));
  hpo::Unroll um(mini.problem, th), uf(full.problem, th);
  hpo::InnerObjective epoch(um, hpo::InnerBatches{{0, 1, 2}}, "test"), whole(uf, hpo::InnerBatches{{0}}, "test");
  const auto a = epoch.products(w, v, true), b = whole.products(w, v, true);
  CHECK(rel(a.hvp, b.hvp) <= 1e-12);
  CHECK(rel(a.mixed, b.mixed) <= 1e-12);
  CHECK(std::abs(epoch.value_and_gradient(w).value - whole.value_and_gradient(w).value) <= 1e-12);
  CHECK(um.counts.fwd_over_rev == 3);  // one pass per batch of the set
  // The last step's batch alone is a different (noisier) Hessian.
  hpo::InnerObjective last(um, hpo::InnerBatches{}, "test");
  CHECK(last.steps() == std::vector<std::int64_t>{mini.problem.horizon - 1});
  CHECK(rel(last.products(w, v, false).hvp, b.hvp) > 1e-3);
}

TEST_CASE("CG stops at a direction of non-positive curvature and says so") {
  Eigen::MatrixXd H = Eigen::MatrixXd::Identity(3, 3);
  H(2, 2) = -1;
  hpo::CgOptions cg;
  const hpo::LinearSolve s = hpo::cg_solve(dense_operator(H), tensor(Eigen::VectorXd::Ones(3)), cg);
  CHECK_FALSE(s.converged);
  CHECK(s.stop_reason.find("non-positive curvature") != std::string::npos);
}

// Why the bound: at the optimum w* of a strongly convex h the IFT is exact, and both sides
// converge to it as training does. To first order each side moves with w by at most about
// ‖∇_w L_val‖ per unit distance: here ∂_θ(q · ∇_w h) = λ q·w (λ = e^θ the L2 coefficient), and
// λ‖q‖ = λ‖H⁻¹∇_w L_val‖ ≤ ‖∇_w L_val‖ because H ⪰ λI. So we check
//     |IFT(w_T) − reverse_T| ≤ ‖∇_w L_val‖ · ‖w_T − w*‖
// at every horizon, and agreement to 1e-10 once training has converged to machine precision.
TEST_CASE("IFT at the end of a long run on L2-regularized logistic regression agrees with exact reverse mode") {
  // w*: Newton's method on the dense Hessian, to machine precision.
  const hpo::ClassificationTask base = logistic_task(1);
  const Tensor th = base.problem.hyper.initial();
  Eigen::VectorXd w_star = vec(base.problem.w0);
  double val_grad = 0;
  {
    hpo::Unroll u(base.problem, th);
    for (int it = 0; it < 30; ++it) {
      const Tensor w = tensor(w_star);
      w_star -= dense_hessian(base.problem, th, w, 0).ldlt().solve(vec(u.gradient(w, 0).grad));
    }
    CHECK(vec(u.gradient(tensor(w_star), 0).grad).norm() <= 1e-13);
    val_grad = vec(u.validation(tensor(w_star)).grad_w).norm();
  }
  const auto cg = make_method("ift", {{"cg-tolerance", "1e-12"}});  // CG to 1e-12
  for (std::int64_t T : {30, 60, 120, 200, 300, 600}) {
    const hpo::ClassificationTask task = logistic_task(T);
    const hpo::Hypergradient exact = run_method("reverse", task.problem, th);
    const hpo::Hypergradient ift = cg->compute(task.problem, th);
    const double distance = (vec(ift.final_state.w()) - w_star).norm();
    const double error = std::abs(ift.d_theta.at(0) - exact.d_theta.at(0));
    MESSAGE("T = " << T << ": |w_T - w*| = " << distance << ", |IFT - reverse| = " << error << " (bound "
                   << val_grad * distance << "); IFT " << ift.d_theta.at(0) << ", reverse " << exact.d_theta.at(0));
    CHECK(error <= val_grad * distance + 1e-15);
    if (T == 600) CHECK(rel(vec(ift.d_theta), vec(exact.d_theta)) <= 1e-10);
  }
}

TEST_CASE("toy bilevel problem: every implicit method equals the closed form 2(alpha - 1)") {
  for (double alpha : {0.3, 1.0, 2.5}) {
    const hpo::BilevelProblem p = toy_bilevel(alpha);
    const Tensor th = p.hyper.initial();
    const double closed = 2 * (alpha - 1);
    auto error = [&](const hpo::Hypergradient& h) { return std::abs(h.d_theta.at(0) - closed); };

    // Neumann: H = 2, so α_N = 1/4 halves the error per term. CG: P = 1, one iteration is exact.
    const hpo::Hypergradient hn = run_method("ift", p, th, {{"solver", "neumann"}, {"neumann-alpha", "0.25"}, {"iterations", "60"}});
    const hpo::Hypergradient hc = run_method("ift", p, th, {{"iterations", "1"}});
    const hpo::Hypergradient he = run_method("ift", p, th, {{"solver", "exact"}});
    const hpo::Hypergradient hr = run_method("reverse", p, th);
    hpo::HoagOptions ho;
    ho.max_iterations = 1;
    const hpo::HoagRun hoag = hpo::run_hoag(p, ho);
    const double hoag_hg = hoag.iterations.at(0).hypergradient.at(0);
    MESSAGE("alpha = " << alpha << ": closed form " << closed << "; |error| of IFT-Neumann (k = 60) " << error(hn)
                       << ", IFT-CG (1 iteration) " << error(hc) << ", HOAG (first iteration) "
                       << std::abs(hoag_hg - closed) << ", reverse (T = 80) " << error(hr));
    CHECK(error(hn) <= 1e-12);
    CHECK(error(hc) <= 1e-12);
    CHECK(error(he) <= 1e-12);
    CHECK(error(hr) <= 1e-12);
    CHECK(std::abs(hoag_hg - closed) <= 1e-6);  // HOAG's w_1 is only ε₁-accurate
    CHECK(std::abs(hn.direct.at(0) - (alpha - 2)) <= 1e-12);  // ∂_α L_val = w − 2 at w = α
  }
}

TEST_CASE("IFT as the outer loop's hypergradient method (Lorraine et al.'s Algorithm 1 with a fixed inner run)") {
  const hpo::ClassificationTask task = logistic_task(300, 1e-3);
  const Tensor th0 = task.problem.hyper.initial();
  const Eigen::MatrixXd H = dense_hessian(task.problem, th0, trained_weights(task.problem, th0), 0);
  const double top = Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd>(H).eigenvalues().maxCoeff();
  MESSAGE("lambda_max(H) = " << top);
  REQUIRE(top < 0.2);  // so the Neumann series with α = 10 converges (it needs α < 2/λ_max)
  const auto method = make_method("ift", {{"solver", "neumann"}, {"neumann-alpha", "10"}, {"iterations", "100"}});
  hpo::OuterOptions o;
  o.kind = hpo::OuterKind::adam;
  o.step = {0.5};
  o.max_steps = 8;
  const hpo::OuterRun run = hpo::run_outer(task.problem, *method, o);
  MESSAGE("outer loop with IFT (Neumann): L_val " << run.steps.front().val_loss << " -> " << run.steps.back().val_loss);
  CHECK(run.steps.back().val_loss < run.steps.front().val_loss - 0.3);
}

TEST_CASE("HOAG's tolerance sequences: exponential, quadratic, cubic") {
  hpo::HoagOptions o;
  o.tolerance_init = 0.1;
  CHECK(hpo::hoag_tolerance(o, 3) == doctest::Approx(0.1 * 0.9 * 0.9 * 0.9).epsilon(1e-14));
  o.decrease = hpo::ToleranceDecrease::quadratic;
  CHECK(hpo::hoag_tolerance(o, 4) == doctest::Approx(0.1 / 16).epsilon(1e-14));
  o.decrease = hpo::parse_decrease("cubic");
  CHECK(hpo::hoag_tolerance(o, 10) == doctest::Approx(1e-4).epsilon(1e-14));
  CHECK(hpo::hoag_tolerance(o, 100000) == o.tolerance_floor);
  CHECK_THROWS_WITH_AS(hpo::parse_decrease("linear"), doctest::Contains("unknown tolerance decrease"), Error);
}

TEST_CASE("HOAG converges to alpha = 1 on the toy bilevel problem (log space), with each tolerance sequence") {
  const hpo::BilevelProblem p = toy_bilevel(3.0, hpo::Transform::exp);
  for (hpo::ToleranceDecrease d :
       {hpo::ToleranceDecrease::exponential, hpo::ToleranceDecrease::quadratic, hpo::ToleranceDecrease::cubic}) {
    hpo::HoagOptions o;
    o.decrease = d;
    o.max_iterations = 60;
    const hpo::HoagRun run = hpo::run_hoag(p, o);
    MESSAGE("HOAG on the toy problem from alpha = 3, " << std::string(hpo::decrease_name(d)) << " tolerances:\n"
                                                       << run.table(p.hyper));
    // HOAG is as accurate as its tolerance: ‖∇h‖ = 2|w − α| ≤ 6ε, and p = α(w − 2 + α) = 0 at its fixed
    // point, so |α − 1| = |w − α|/2 ≤ 1.5ε there; and L_val = (α − 1)² + α(w − α).
    const double alpha = std::exp(run.theta.at(0)), eps = run.iterations.back().epsilon;
    MESSAGE("alpha - 1 = " << alpha - 1 << " after " << run.iterations.size() << " iterations (final eps " << eps << ")");
    CHECK(std::abs(alpha - 1) <= 1e-4);
    CHECK(std::abs(alpha - 1) <= 3 * eps);
    CHECK(std::abs(run.iterations.back().val_loss) <= 4 * eps);
    for (const hpo::HoagIteration& it : run.iterations) {
      // Step (i)'s tolerance, relative to the first gradient norm ‖∇h(w⁰ = 0)‖ = 2α₀ = 6.
      CHECK(it.inner_grad_norm <= it.epsilon * 6.0 * (1 + 1e-12));
      CHECK(it.cg_residual <= it.epsilon * 3.0 * (1 + 1e-9) + 1e-15);  // ‖∇_w L_val(w_1)‖ = α₀ = 3
      CHECK(it.cost.gradient_evals >= 1);
    }
  }
}

TEST_CASE("HOAG as a comparison row: passes charged to the inner-step budget, stopped before it overruns") {
  const hpo::BilevelProblem p = toy_bilevel(3.0, hpo::Transform::exp);
  hpo::HoagOptions o;
  o.max_iterations = 1000;
  hpo::ComparisonOptions co;
  co.budget.inner_steps = 3 * p.horizon;
  const hpo::Comparison c = hpo::compare(p, {hpo::hoag_method("HOAG", o)}, co);
  const hpo::MethodResult& r = c.results.at(0);
  MESSAGE(c.table());
  // What it was charged is every pass it made (no HOAG pass is free), and it stayed in budget.
  CHECK(r.inner_steps == r.cost.gradient_evals + r.cost.fwd_over_rev_passes);
  CHECK(r.inner_steps <= co.budget.inner_steps);
  CHECK(r.evaluations >= 2);
  CHECK(r.evaluations < 1000);
  CHECK(r.stop_reason.find("pass budget (240)") != std::string::npos);
  // Scored like every method: L_val of T training steps at the θ it reports.
  CHECK(r.best_val_loss == hpo::run_inner(p, r.theta).val_loss);
  CHECK(std::abs(r.hyperparameters.at(0).second - 1) <= 0.2);
  // The refusal a user gets for an optimizer-defining group is the method's own.
  ToySpec spec;
  CHECK_THROWS_WITH_AS(hpo::compare(toy_task(spec).problem, {hpo::hoag_method("HOAG", o)}, co),
                       doctest::Contains("HOAG"), Error);
}

TEST_CASE("HOAG lowers the validation loss of L2-regularized logistic regression") {
  const hpo::ClassificationTask task = logistic_task(1, 1e-3);  // λ = 1e-3: under-regularized
  hpo::HoagOptions o;
  o.max_iterations = 15;
  const hpo::HoagRun run = hpo::run_hoag(task.problem, o);
  MESSAGE("HOAG, global L2 of softmax regression from lambda = 1e-3:\n" << run.table(task.problem.hyper));
  REQUIRE(run.iterations.size() == 15);
  const double first = run.iterations.front().val_loss, last = run.iterations.back().val_loss;
  CHECK(last <= first - 0.5);
  // The optimum: the IFT hypergradient vanishes there (to the last iteration's tolerance).
  CHECK(std::abs(run.iterations.back().hypergradient.at(0)) <= 1e-3);
  for (const hpo::HoagIteration& it : run.iterations) CHECK(it.inner_status.find("code") == std::string::npos);
}

TEST_CASE("implicit methods refuse optimizer-defining groups, NaN hyperparameters and budgets of zero") {
  ToySpec spec;  // learns lr, momentum, weight decay, per-tensor L2 and example weights
  const hpo::ClassificationTask task = toy_task(spec);
  const Tensor th = task.problem.hyper.initial();
  CHECK_THROWS_WITH_AS(run_method("ift", task.problem, th), doctest::Contains("ift cannot differentiate hyperparameter group 'lr'"),
                       Error);
  CHECK_THROWS_WITH_AS(hpo::run_hoag(task.problem), doctest::Contains("HOAG cannot learn hyperparameter group 'lr'"), Error);
  spec.learn_lr = false;
  CHECK_THROWS_WITH_AS(run_method("ift", toy_task(spec).problem, toy_task(spec).problem.hyper.initial()),
                       doctest::Contains("group 'momentum' (momentum)"), Error);

  const hpo::BilevelProblem p = toy_bilevel(2.0);
  const Tensor nan = Tensor::from({std::nan("")}, Shape{1}, DType::f64);
  CHECK_THROWS_WITH_AS(run_method("ift", p, nan), doctest::Contains("ift: hyperparameter alpha is nan"), Error);
  CHECK_THROWS_WITH_AS(hpo::run_hoag(p, {}, nan), doctest::Contains("HOAG: hyperparameter alpha is nan"), Error);

  // CG with no iterations is refused when the method is made; Neumann with k = 0 is the identity
  // approximation (tested below).
  CHECK_THROWS_WITH_AS(make_method("ift", {{"iterations", "0"}}), doctest::Contains("budget of zero"), Error);
  hpo::ImplicitOptions negative;
  negative.solver = hpo::ImplicitSolver::neumann;
  negative.iterations = -1;
  CHECK_THROWS_WITH_AS(hpo::ImplicitMethod{negative}, doctest::Contains("budget of zero"), Error);
  hpo::HoagOptions no_outer;
  no_outer.max_iterations = 0;
  CHECK_THROWS_WITH_AS(hpo::run_hoag(p, no_outer), doctest::Contains("budget of zero outer iterations"), Error);
  hpo::CgOptions no_cg;
  no_cg.max_iterations = 0;
  CHECK_THROWS_WITH_AS(hpo::cg_solve(dense_operator(Eigen::MatrixXd::Identity(1, 1)), tensor(Eigen::VectorXd::Ones(1)), no_cg),
                       doctest::Contains("max_iterations = 0"), Error);
  hpo::ImplicitOptions bad_steps;
  bad_steps.hessian_batches.steps = {80};
  CHECK_THROWS_WITH_AS(hpo::ImplicitMethod(bad_steps).compute(p, p.hyper.initial()), doctest::Contains("outside [0, T = 80)"),
                       Error);
}

TEST_CASE("the exact solve: the dense solve where H is invertible, the minimum-norm solution where it is singular") {
  const hpo::ClassificationTask task = logistic_task(40);
  const hpo::BilevelProblem& p = task.problem;
  const Tensor th = p.hyper.initial();
  const Tensor w = trained_weights(p, th);
  const std::int64_t t = p.horizon - 1, P = p.num_params();
  const Eigen::MatrixXd H = dense_hessian(p, th, w, t);
  hpo::Unroll u(p, th);
  const Eigen::VectorXd b = vec(u.validation(w).grad_w);
  const hpo::LinearSolve s = hpo::exact_solve(dense_operator(H), tensor(b));
  CHECK(s.operator_calls == P);
  CHECK(rel(vec(s.q), H.ldlt().solve(b)) <= 1e-10);

  // Through the problem's HVPs, one trained state: the IFT hypergradient with q = H⁻¹ b.
  hpo::ImplicitOptions o;
  o.solver = hpo::ImplicitSolver::exact;
  const hpo::ImplicitResult r = hpo::implicit_at(u, w, o);
  const Eigen::VectorXd expected_hg = vec(r.hypergradient.direct) - dense_mixed(p, th, w, tensor(H.ldlt().solve(b)), t);
  CHECK(rel(vec(r.hypergradient.d_theta), expected_hg) <= 1e-10);
  CHECK(r.residual <= 1e-10 * b.norm());

  // Singular H (rank 2 of 3), b partly outside its range: q = H⁺ b, the pseudo-inverse's answer.
  Eigen::MatrixXd S(3, 3);
  S << 2, 1, 0, 1, 2, 0, 0, 0, 0;
  const Eigen::VectorXd c = Eigen::Vector3d(1, -2, 5);
  const Eigen::VectorXd pinv = S.completeOrthogonalDecomposition().pseudoInverse() * c;
  const hpo::LinearSolve m = hpo::exact_solve(dense_operator(S), tensor(c));
  CHECK(rel(vec(m.q), pinv) <= 1e-12);
  CHECK(std::abs(m.q.at(2)) <= 1e-15);  // no component along the null space
  CHECK(m.stop_reason.find("rank 2 of 3") != std::string::npos);

  // Too large for a dense Hessian: refused before any product, naming P and the other solvers.
  int calls = 0;
  const hpo::LinearOperator count = [&](const Tensor& x) { ++calls; return x; };
  CHECK_THROWS_WITH_AS(hpo::exact_solve(count, Tensor::zeros(Shape{4097}, DType::f64)),
                       doctest::Contains("P = 4097"), Error);
  CHECK(calls == 0);
  ToySpec big;
  big.learn_lr = big.learn_momentum = big.learn_weight_decay = false;
  big.hidden = 1000;  // P = 8003
  const hpo::ClassificationTask large = toy_task(big);
  const std::string message = [&] {
    try {
      run_method("ift", large.problem, large.problem.hyper.initial(), {{"solver", "exact"}});
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  }();
  CHECK(message.find("P = 8003") != std::string::npos);
  CHECK(message.find("solver=cg") != std::string::npos);
}

TEST_CASE("Neumann with k = 0 is the identity approximation q = alpha grad_w L_val") {
  const hpo::ClassificationTask task = logistic_task(40);
  const hpo::BilevelProblem& p = task.problem;
  const Tensor th = p.hyper.initial();
  const Tensor w = trained_weights(p, th);
  const std::int64_t t = p.horizon - 1;
  hpo::Unroll u(p, th);
  const Eigen::VectorXd b = vec(u.validation(w).grad_w);
  int calls = 0;
  const hpo::LinearOperator H = [&](const Tensor& x) { ++calls; return x; };
  const hpo::LinearSolve s = hpo::neumann_solve(H, tensor(b), 0.3, 0);
  CHECK(calls == 0);
  CHECK(rel(vec(s.q), 0.3 * b) <= 1e-15);
  // The method: dL_val/dθ ≈ ∂_θ L_val − α ∂_θ(∇_w L_val · ∇_w L_train), one mixed product.
  const hpo::Hypergradient h = run_method("ift", p, th, {{"solver", "neumann"}, {"iterations", "0"}, {"neumann-alpha", "0.3"}});
  const Eigen::VectorXd expected = vec(h.direct) - dense_mixed(p, th, w, tensor(0.3 * b), t);
  CHECK(rel(vec(h.d_theta), expected) <= 1e-10);
  CHECK(h.cost.fwd_over_rev_passes == 1);
}

TEST_CASE("several IFT solvers on one trained state: ImplicitMethod::at gives compute()'s bits without retraining") {
  ToySpec spec;  // loss-defining groups only: per-tensor L2 and example weights, mini-batches
  spec.learn_lr = spec.learn_momentum = spec.learn_weight_decay = false;
  const hpo::ClassificationTask task = toy_task(spec);
  const hpo::BilevelProblem& p = task.problem;
  const Tensor th = p.hyper.initial();
  const Tensor w = hpo::run_inner(p, th).final_state.w();  // trained once
  for (const char* solver : {"cg", "neumann", "exact"}) {
    const auto m = make_method("ift", {{"solver", solver}});
    const auto& ift = dynamic_cast<const hpo::ImplicitMethod&>(*m);
    const hpo::ImplicitResult at = ift.at(p, th, w);
    const hpo::Hypergradient full = m->compute(p, th);
    CHECK_MESSAGE(hpo::same_bits(at.hypergradient.d_theta, full.d_theta), solver);
    CHECK(at.hypergradient.cost.gradient_evals == 1);  // L_val only: no training
  }
}
