// Hyperparameter groups (issue 18): found by kind, never by name; a declared loss-defining group
// that no loss reads is refused, never a zero hypergradient; initial values in λ with raw θ as
// the explicit alternative; L2 on chosen parameter tensors.
//
// Hypergradients here come from the Unroll API alone (reverse mode, store-all: by_hand.h), so
// these tests need no registry entry and no method's free function.
#include "by_hand.h"
#include "toy.h"

#include <cmath>

using namespace gradhpo;
using namespace gradhpo::testing;

namespace {

std::shared_ptr<nn::Mlp> toy_model() {
  nn::MlpOptions mo;
  mo.hidden = {5};
  mo.activation = nn::Activation::tanh;
  return std::make_shared<nn::Mlp>(Shape{1, 2, 2}, 3, mo);
}

/// toy.h's problem (tanh MLP, 24 formula examples, batches of 8, float64) with the given groups.
hpo::ClassificationTask task_with(std::shared_ptr<nn::Mlp> model, hpo::Hyperparameters h, std::int64_t horizon = 30,
                                  std::int64_t batch_size = 8) {
  nn::OptimizerConfig opt;
  opt.lr = nn::Schedule::constant(0.3);
  opt.momentum = 0.9;
  hpo::ClassificationOptions co;
  co.batch_size = batch_size;
  co.dtype = DType::f64;
  return hpo::make_classification_task(model, formula_data(24, 0, "formula:train"), formula_data(16, 1000, "formula:val"),
                                       std::move(h), opt, horizon, co);
}

/// Learning rate, momentum, one L2 coefficient and example weights, the L2 and weight groups
/// named as given.
hpo::Hyperparameters toy_groups(const std::string& l2_name, const std::string& weights_name, std::int64_t lr_blocks = 3) {
  hpo::Hyperparameters h;
  h.add(hpo::Hyperparameters::learning_rate(lr_blocks, 0.3));
  h.add(hpo::Hyperparameters::momentum(1, 0.9, hpo::Transform::sigmoid));
  hpo::HyperGroup l2 = hpo::Hyperparameters::l2_global(1e-2);
  l2.name = l2_name;
  h.add(l2);
  hpo::HyperGroup weights = hpo::Hyperparameters::example_weights(24, 0.8);
  weights.name = weights_name;
  h.add(weights);
  return h;
}

/// The toy: L_train = (w − α)², L_val = αw − 2α + 1, plus a second user value `extra`
/// that each test reads (or not) in its own way.
hpo::BilevelProblem toy_alpha(hpo::TrainLoss train, hpo::ValLoss val = nullptr) {
  hpo::BilevelProblem p;
  for (const char* name : {"alpha", "extra"}) {
    hpo::HyperGroup g;
    g.name = name;
    g.kind = hpo::HyperKind::loss;
    g.init = {0.5};
    p.hyper.add(g);
  }
  p.train_loss = std::move(train);
  p.val_loss = val ? std::move(val) : [](const Var& w, const hpo::HyperValues& h) {
    const Var a = reshape(h["alpha"], Shape{});
    return a * reshape(w, Shape{}) - 2.0 * a + 1.0;
  };
  p.optimizer.lr = nn::Schedule::constant(0.25);
  p.horizon = 6;
  p.w0 = Tensor::zeros(Shape{1}, DType::f64);
  return p;
}

Var alpha_loss(const Var& w, const hpo::HyperValues& h) { return sum(square(w - h["alpha"])); }
Var train_alpha(const Var& w, const hpo::HyperValues& h, std::int64_t) { return alpha_loss(w, h); }

}  // namespace

TEST_CASE("groups are found by kind: an L2 group named 'decay' gets the hypergradient of one named 'l2'") {
  // The classification task used to look its groups up by the names "l2" and "weights": a group
  // named otherwise passed validation and got a hypergradient of exactly zero.
  const auto model = toy_model();
  const hpo::ClassificationTask named = task_with(model, toy_groups("l2", "weights"));
  const hpo::ClassificationTask renamed = task_with(model, toy_groups("decay", "cleaning"));
  const Tensor theta = named.problem.hyper.initial();
  REQUIRE(hpo::same_bits(theta, renamed.problem.hyper.initial()));
  const int l2 = renamed.problem.hyper.find(hpo::HyperKind::l2);
  const int weights = renamed.problem.hyper.find(hpo::HyperKind::example_weight);
  REQUIRE(renamed.problem.hyper.group(l2).name == "decay");
  const std::int64_t l2_at = renamed.problem.hyper.offset(l2), weights_at = renamed.problem.hyper.offset(weights);

  // The training loss reads them: its value and both gradients are those of the "l2" problem.
  hpo::Unroll a(named.problem, theta), b(renamed.problem, theta);
  const Tensor w0 = named.problem.w0;
  const hpo::LossPass la = a.gradient(w0, 0), lb = b.gradient(w0, 0);
  CHECK(la.loss == lb.loss);
  CHECK(hpo::same_bits(la.grad, lb.grad));
  const Tensor ta = a.theta_gradient(w0, 0), tb = b.theta_gradient(w0, 0);
  CHECK(hpo::same_bits(ta, tb));
  CHECK(tb.at(l2_at) != 0.0);       // ∂_θ ½ e^θ ‖w‖² = ½ λ ‖w₀‖²
  double weights_norm = 0;
  for (std::int64_t i = 0; i < 24; ++i) weights_norm += std::abs(tb.at(weights_at + i));
  CHECK(weights_norm > 0);
  {
    const double sq = hpo::dot(w0, w0);
    const double lam = std::exp(theta.at(l2_at));
    CHECK(std::abs(tb.at(l2_at) - 0.5 * lam * sq) <= 1e-14 * 0.5 * lam * sq);
  }

  // The whole run's hypergradient: equal bit for bit, the L2 entry non-zero, and right
  // (central differences of the whole training run, as tests/hpo/test_exact.cpp).
  const Tensor ha = reverse_mode(named.problem, theta), hb = reverse_mode(renamed.problem, theta);
  CHECK(hpo::same_bits(ha, hb));
  CHECK(hb.at(l2_at) != 0.0);
  const double fd = fd::derivative([&](double eps) {
    Tensor th = theta.clone();
    th.flat_slice(l2_at, 1).fill(theta.at(l2_at) + eps);
    return hpo::run_inner(renamed.problem, th).val_loss;
  }, kFdStep);
  MESSAGE("dL_val/dθ_decay: reverse mode " << hb.at(l2_at) << ", central differences " << fd);
  CHECK(std::abs(hb.at(l2_at) - fd) <= 1e-6 * std::abs(fd));
}

TEST_CASE("every L2 group of a classification task is read, and groups nothing reads are refused up front") {
  const auto model = toy_model();
  // Two L2 groups (say, weights and biases with their own coefficients) both reach the loss.
  hpo::Hyperparameters h;
  h.add(hpo::Hyperparameters::l2_on(model->layout(), [](const nn::ParamInfo& p) { return p.role == nn::ParamRole::weight; }, 1e-2));
  hpo::HyperGroup biases =
      hpo::Hyperparameters::l2_on(model->layout(), [](const nn::ParamInfo& p) { return p.role == nn::ParamRole::bias; }, 1e-3);
  biases.name = "l2_bias";
  h.add(biases);
  const hpo::ClassificationTask task = task_with(model, h);
  hpo::Unroll u(task.problem, task.problem.hyper.initial());
  const Tensor g = u.theta_gradient(task.problem.w0, 0);
  CHECK(g.at(0) != 0.0);
  CHECK(g.at(1) != 0.0);

  // A user value (kind loss): the task's loss would never read it.
  hpo::Hyperparameters own = toy_groups("l2", "weights");
  hpo::HyperGroup mine;
  mine.name = "temperature";
  mine.init = {1.0};
  own.add(mine);
  const std::string why = error_of([&] { task_with(model, own); });
  CHECK(contains(why, "'temperature'"));
  CHECK(contains(why, "never read"));
  // Two example-weight groups.
  hpo::Hyperparameters twice = toy_groups("l2", "weights");
  hpo::HyperGroup more = hpo::Hyperparameters::example_weights(24, 0.5);
  more.name = "weights2";
  twice.add(more);
  CHECK(contains(error_of([&] { task_with(model, twice); }), "'weights' and 'weights2'"));
}

TEST_CASE("a loss-defining group that no loss reads is refused with its name, never a zero hypergradient") {
  // Declared, never asked for.
  {
    const hpo::BilevelProblem p = toy_alpha(train_alpha);
    const std::string why = error_of([&] { reverse_mode(p, p.hyper.initial()); });
    CHECK(contains(why, "hyperparameter group 'extra' (loss) is never read"));
    CHECK(contains(why, "6 steps"));
  }
  // Asked for, but the value read does not reach the loss: discarded, or taken off the tape as
  // a plain number (a constant has no derivative).
  {
    const hpo::BilevelProblem discarded = toy_alpha([](const Var& w, const hpo::HyperValues& h, std::int64_t) {
      [[maybe_unused]] const Var unused = h["extra"];
      return alpha_loss(w, h);
    });
    CHECK(contains(error_of([&] { reverse_mode(discarded, discarded.hyper.initial()); }), "'extra' (loss) is never read"));
    const hpo::BilevelProblem constant = toy_alpha([](const Var& w, const hpo::HyperValues& h, std::int64_t) {
      return alpha_loss(w, h) * w.tape().constant(h["extra"].value());
    });
    CHECK(contains(error_of([&] { reverse_mode(constant, constant.hyper.initial()); }), "'extra' (loss) is never read"));
  }
  // An L2 group the user's loss does not look up (it reads "l2" by name; the group is "decay").
  {
    hpo::BilevelProblem p = toy_alpha(train_alpha);
    p.hyper = hpo::Hyperparameters();
    hpo::HyperGroup alpha;
    alpha.name = "alpha";
    alpha.init = {0.5};
    p.hyper.add(alpha);
    hpo::HyperGroup decay = hpo::Hyperparameters::l2_global(0.1);
    decay.name = "decay";
    p.hyper.add(decay);
    p.train_loss = [](const Var& w, const hpo::HyperValues& h, std::int64_t) {
      Var loss = alpha_loss(w, h);
      if (h.has("l2")) loss = loss + 0.5 * reshape(h["l2"], Shape{}) * sum(square(w));
      return loss;
    };
    CHECK(contains(error_of([&] { reverse_mode(p, p.hyper.initial()); }), "'decay' (L2) is never read"));
  }
}

TEST_CASE("what counts as read: some step of the horizon, or the validation loss - plain training does not check") {
  // Read at the last step only: read over the horizon, so no error, and a non-zero hypergradient.
  const hpo::BilevelProblem late = toy_alpha([](const Var& w, const hpo::HyperValues& h, std::int64_t t) {
    Var loss = alpha_loss(w, h);
    if (t == 5) loss = loss + sum(square(w - h["extra"]));
    return loss;
  });
  const Tensor d_late = reverse_mode(late, late.hyper.initial());
  CHECK(d_late.at(1) != 0.0);
  // Read by the validation loss only: its direct term ∂_θ L_val = w_T is the hypergradient.
  const hpo::BilevelProblem val_only = toy_alpha(train_alpha, [](const Var& w, const hpo::HyperValues& h) {
    return sum(h["alpha"] * w) + sum(h["extra"] * w);
  });
  hpo::Unroll u(val_only, val_only.hyper.initial());
  hpo::InnerState s = u.initial_state();
  for (std::int64_t t = 0; t < val_only.horizon; ++t) s = u.step(s, u.gradient(s.w(), t).grad, t);
  const Tensor d_val = reverse_mode(val_only, val_only.hyper.initial());
  CHECK(d_val.at(1) == s.w().at(0));
  // Plain training computes no hypergradient: an unread group is no error there.
  const hpo::BilevelProblem unread = toy_alpha(train_alpha);
  CHECK(std::isfinite(hpo::run_inner(unread, unread.hyper.initial()).val_loss));
}

TEST_CASE("example weights of examples no batch draws are legitimately unread") {
  // Two steps of 8 draw 16 of the 24 examples: the group is read, the other 8 have a hypergradient
  // of exactly zero and the drawn ones do not.
  const auto model = toy_model();
  const hpo::ClassificationTask task = task_with(model, toy_groups("l2", "weights", 1), /*horizon=*/2);
  const Tensor theta = task.problem.hyper.initial();
  const Tensor d = reverse_mode(task.problem, theta);
  const int g = task.problem.hyper.find(hpo::HyperKind::example_weight);
  const std::int64_t at = task.problem.hyper.offset(g);
  int zero = 0;
  for (std::int64_t i = 0; i < 24; ++i) zero += d.at(at + i) == 0.0;
  CHECK(zero == 8);
}

TEST_CASE("initial values: init is λ (inverted through the transform), init_raw is θ, never both") {
  hpo::Hyperparameters h;
  hpo::HyperGroup a;
  a.name = "a";
  a.transform = hpo::Transform::exp;
  a.init = {0.5};
  h.add(a);
  hpo::HyperGroup b = a;
  b.name = "b";
  b.init.clear();
  b.init_raw = {std::log(0.5)};
  h.add(b);
  hpo::HyperGroup c;  // per entry: one λ each, sigmoid
  c.name = "c";
  c.transform = hpo::Transform::sigmoid;
  c.spread = hpo::Spread::free;
  c.width = 3;
  c.init = {0.1, 0.5, 0.9};
  h.add(c);
  const Tensor th = h.initial();
  CHECK(th.at(0) == std::log(0.5));
  CHECK(th.at(1) == std::log(0.5));
  CHECK(th.at(2) == hpo::inverse_transform(hpo::Transform::sigmoid, 0.1));
  CHECK(th.at(3) == 0.0);
  CHECK(th.at(4) == hpo::inverse_transform(hpo::Transform::sigmoid, 0.9));
  // The stored groups hold both meanings.
  CHECK(h.group(0).init_raw == std::vector<double>{std::log(0.5)});
  CHECK(h.group(1).init == std::vector<double>{hpo::apply_transform(hpo::Transform::exp, std::log(0.5))});
  // The ready-made groups speak λ as before: the same θ₀ bits.
  hpo::Hyperparameters r;
  r.add(hpo::Hyperparameters::l2_global(1e-2));
  r.add(hpo::Hyperparameters::learning_rate(4, 0.3, hpo::Transform::softplus));
  CHECK(r.initial().at(0) == std::log(1e-2));
  CHECK(r.initial().at(4) == hpo::inverse_transform(hpo::Transform::softplus, 0.3));
  // Refusals name the group.
  hpo::HyperGroup both = a;
  both.name = "both";
  both.init_raw = {0.0};
  CHECK(contains(error_of([&] { h.add(both); }), "'both': both init"));
  hpo::HyperGroup neither = a;
  neither.name = "neither";
  neither.init.clear();
  CHECK(contains(error_of([&] { h.add(neither); }), "'neither': no initial value"));
  hpo::HyperGroup outside = c;
  outside.name = "outside";
  outside.init = {0.5, 1.5, 0.5};
  CHECK(contains(error_of([&] { h.add(outside); }), "'outside': a sigmoid hyperparameter must start in (0, 1), got 1.5"));
  hpo::HyperGroup wrong = c;
  wrong.name = "wrong";
  wrong.init = {0.5, 0.5};
  CHECK(contains(error_of([&] { h.add(wrong); }), "'wrong': 2 initial values for 3 entries"));
  CHECK(h.count() == 3);
}

TEST_CASE("l2_on: L2 on the weights but not the biases, with one, per-tensor or per-entry coefficients") {
  const auto model = toy_model();
  const nn::ParamLayout& layout = model->layout();
  auto is_weight = [](const nn::ParamInfo& p) { return p.role == nn::ParamRole::weight; };
  hpo::Hyperparameters none;
  none.add(hpo::Hyperparameters::learning_rate(1, 0.3));
  const hpo::ClassificationTask plain = task_with(model, none);
  const Tensor w0 = plain.problem.w0;
  const Tensor g_plain = hpo::Unroll(plain.problem, none.initial()).gradient(w0, 0).grad;
  const double lam = 0.25;
  for (hpo::L2Share share : {hpo::L2Share::one, hpo::L2Share::per_tensor, hpo::L2Share::per_entry}) {
    CAPTURE(static_cast<int>(share));
    hpo::Hyperparameters h = none;
    h.add(hpo::Hyperparameters::l2_on(layout, is_weight, lam, share));
    const hpo::HyperGroup& g = h.group(1);
    std::int64_t weights = 0, entries = 0;
    for (const nn::ParamInfo& p : layout.params())
      if (p.role == nn::ParamRole::weight) ++weights, entries += p.numel();
    CHECK(g.width == (share == hpo::L2Share::one ? 1 : share == hpo::L2Share::per_tensor ? weights : entries));
    const hpo::ClassificationTask task = task_with(model, h);
    hpo::Unroll u(task.problem, h.initial());
    const Tensor grad = u.gradient(w0, 0).grad;
    // ∇ ½ λ Σ_weights w² = λ w on the weights, nothing on the biases.
    for (const nn::ParamInfo& p : layout.params()) {
      for (std::int64_t i = p.offset; i < p.offset + p.numel(); ++i) {
        if (p.role == nn::ParamRole::weight) {
          CHECK(std::abs(grad.at(i) - g_plain.at(i) - lam * w0.at(i)) <= 1e-14);
        } else {
          CHECK(grad.at(i) == g_plain.at(i));
        }
      }
    }
    // ∂_θ of the penalty: ½ λ Σ w² over the weights (exp transform: ∂λ/∂θ = λ), per coefficient.
    const Tensor dtheta = u.theta_gradient(w0, 0);
    double total = 0, want = 0;
    for (std::int64_t j = 0; j < g.width; ++j) total += dtheta.at(1 + j);
    for (const nn::ParamInfo& p : layout.params())
      if (p.role == nn::ParamRole::weight)
        for (std::int64_t i = p.offset; i < p.offset + p.numel(); ++i) want += 0.5 * lam * w0.at(i) * w0.at(i);
    CHECK(std::abs(total - want) <= 1e-14 * want);
    CHECK(std::abs(reverse_mode(task.problem, h.initial()).at(1)) > 0);
  }
  // By names: the same group.
  std::vector<std::string> names;
  for (const nn::ParamInfo& p : layout.params())
    if (p.role == nn::ParamRole::weight) names.push_back(p.name);
  const hpo::HyperGroup by_name = hpo::Hyperparameters::l2_on(layout, names, lam, hpo::L2Share::per_tensor);
  const hpo::HyperGroup by_role = hpo::Hyperparameters::l2_on(layout, is_weight, lam, hpo::L2Share::per_tensor);
  CHECK(by_name.tensor_group == by_role.tensor_group);
  CHECK(by_name.labels == names);
  CHECK_THROWS_AS(hpo::Hyperparameters::l2_on(layout, std::vector<std::string>{"no.such.tensor"}, lam), Error);
  CHECK(contains(error_of([&] { hpo::Hyperparameters::l2_on(layout, [](const nn::ParamInfo&) { return false; }, lam); }),
                 "no tensor"));
}
