// Inner optimizers and schedules.
//
// Step formulas are checked against values worked out by hand in this file (PyTorch's
// torch.optim.SGD / Adam update rules written out line by line), never against the code under
// test. The differentiable steps (Vars on a tape) go through check_ad, and must agree with the
// fast path to rounding.
#include "../engine/check_ad.h"

#include <cmath>

#include <gradhpo/engine/ops.h>
#include <gradhpo/nn/nn.h>

using namespace gradhpo;
using namespace gradhpo::testing;
namespace nn = gradhpo::nn;

namespace {

void check_close(const Tensor& got, const std::vector<double>& want, double tol, const char* what) {
  REQUIRE(got.numel() == static_cast<std::int64_t>(want.size()));
  for (std::size_t i = 0; i < want.size(); ++i)
    CHECK_MESSAGE(std::abs(got.at(static_cast<std::int64_t>(i)) - want[i]) <= tol * std::max(1.0, std::abs(want[i])),
                  what << "[" << i << "]: got " << got.at(static_cast<std::int64_t>(i)) << ", want " << want[i]);
}

Tensor vec(std::vector<double> v, DType dt = DType::f64) {
  const auto n = static_cast<std::int64_t>(v.size());
  return Tensor::from(v, Shape{n}, dt);
}

}  // namespace

TEST_CASE("SGD with momentum and weight decay: two steps by hand") {
  // w = (1, −2), lr 0.1, momentum 0.9, weight decay 0.01.
  // Step 1, g = (0.5, 0.25):  d = g + 0.01 w = (0.51, 0.23);  v = d;
  //                           w = w − 0.1 v = (0.949, −2.023).
  // Step 2, g = (−0.1, 0.4):  d = (−0.1 + 0.00949, 0.4 − 0.02023) = (−0.09051, 0.37977);
  //                           v = 0.9 (0.51, 0.23) + d = (0.36849, 0.58677);
  //                           w = (0.949 − 0.036849, −2.023 − 0.058677) = (0.912151, −2.081677).
  for (DType dt : {DType::f64, DType::f32}) {
    const double tol = dt == DType::f64 ? 1e-15 : 1e-6;
    nn::Sgd sgd;
    Tensor w = vec({1.0, -2.0}, dt);
    const nn::SgdHyper h{0.1, 0.9, 0.01};
    sgd.step(w, vec({0.5, 0.25}, dt), h);
    check_close(w, {0.949, -2.023}, tol, "w1");
    check_close(sgd.velocity, {0.51, 0.23}, tol, "v1");
    sgd.step(w, vec({-0.1, 0.4}, dt), h);
    check_close(sgd.velocity, {0.36849, 0.58677}, tol, "v2");
    check_close(w, {0.912151, -2.081677}, tol, "w2");
  }
}

TEST_CASE("SGD: plain (no momentum) and a weight-decay mask") {
  // No momentum: w = 2 − 0.5 (3 + 0.1·2) = 0.4; masked element: w = 2 − 0.5·3 = 0.5.
  nn::Sgd sgd;
  sgd.decay_mask = vec({1.0, 0.0});
  Tensor w = vec({2.0, 2.0});
  sgd.step(w, vec({3.0, 3.0}), nn::SgdHyper{0.5, 0.0, 0.1});
  check_close(w, {0.4, 0.5}, 1e-15, "w");
}

TEST_CASE("Adam (L2 form) and AdamW: two steps by hand") {
  // lr 0.1, β1 0.9, β2 0.999, ε 1e-8, weight decay 0.1, w0 = 1, g1 = 0.5, g2 = −0.2.
  const double lr = 0.1, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.1;
  // L2 form. Step 1: d = 0.5 + 0.1 = 0.6; m = 0.1·0.6 = 0.06; v = 0.001·0.36 = 0.00036;
  //   bc1 = 0.1, bc2 = 0.001: w1 = 1 − (0.1/0.1)·0.06/(√0.00036/√0.001 + ε) = 1 − 0.06/(0.6 + ε).
  const double w1 = 1.0 - 0.06 / (0.6 + eps);
  //   Step 2: d = −0.2 + 0.1 w1; m = 0.9·0.06 + 0.1 d; v = 0.999·0.00036 + 0.001 d²;
  //   bc1 = 1 − 0.81 = 0.19, bc2 = 1 − 0.998001 = 0.001999.
  const double d2 = -0.2 + 0.1 * w1;
  const double m2 = 0.054 + 0.1 * d2, v2 = 0.999 * 0.00036 + 0.001 * d2 * d2;
  const double w2 = w1 - (0.1 / 0.19) * m2 / (std::sqrt(v2) / std::sqrt(0.001999) + eps);
  {
    nn::Adam adam;
    Tensor w = vec({1.0});
    const nn::AdamHyper h{lr, b1, b2, eps, wd, false};
    adam.step(w, vec({0.5}), h);
    check_close(w, {w1}, 1e-14, "adam w1");
    check_close(adam.m, {0.06}, 1e-14, "adam m1");
    check_close(adam.v, {0.00036}, 1e-14, "adam v1");
    adam.step(w, vec({-0.2}), h);
    check_close(w, {w2}, 1e-14, "adam w2");
    CHECK(adam.steps() == 2);
  }
  // AdamW. Step 1: w ← 1·(1 − 0.01) = 0.99; d = 0.5; m = 0.05; v = 0.00025;
  //   w1 = 0.99 − 1·0.05/(0.5 + ε).
  const double a1 = 0.99 - 0.05 / (0.5 + eps);
  //   Step 2: w ← a1·0.99; d = −0.2; m = 0.045 − 0.02 = 0.025; v = 0.999·0.00025 + 0.001·0.04.
  const double am2 = 0.025, av2 = 0.999 * 0.00025 + 0.00004;
  const double a2 = a1 * 0.99 - (0.1 / 0.19) * am2 / (std::sqrt(av2) / std::sqrt(0.001999) + eps);
  {
    nn::Adam adam;
    Tensor w = vec({1.0});
    const nn::AdamHyper h{lr, b1, b2, eps, wd, true};
    adam.step(w, vec({0.5}), h);
    check_close(w, {a1}, 1e-14, "adamw w1");
    adam.step(w, vec({-0.2}), h);
    check_close(w, {a2}, 1e-14, "adamw w2");
  }
}

TEST_CASE("schedules: constant, step, multistep, cosine, table") {
  CHECK(nn::Schedule::constant(0.3).at(1000) == 0.3);
  const nn::Schedule st = nn::Schedule::step(0.1, 10, 0.5);
  CHECK(st.at(0) == 0.1);
  CHECK(st.at(9) == 0.1);
  CHECK(std::abs(st.at(10) - 0.05) <= 1e-17);
  CHECK(std::abs(st.at(25) - 0.025) <= 1e-17);
  const nn::Schedule ms = nn::Schedule::multistep(1.0, {30, 10}, 0.1);
  CHECK(ms.at(9) == 1.0);
  CHECK(std::abs(ms.at(10) - 0.1) <= 1e-16);
  CHECK(std::abs(ms.at(30) - 0.01) <= 1e-16);
  const nn::Schedule cs = nn::Schedule::cosine(0.2, 100, 0.02);
  CHECK(std::abs(cs.at(0) - 0.2) <= 1e-16);
  CHECK(std::abs(cs.at(50) - 0.11) <= 1e-15);  // 0.02 + 0.5·0.18·(1 + cos π/2)
  CHECK(std::abs(cs.at(100) - 0.02) <= 1e-16);
  CHECK(std::abs(cs.at(500) - 0.02) <= 1e-16);
  const nn::Schedule tb = nn::Schedule::table({0.5, 0.4, 0.3});
  CHECK(tb.at(1) == 0.4);
  CHECK(tb.at(7) == 0.3);
  CHECK_THROWS_AS(nn::Schedule::constant(std::nan("")).validate("learning rate"), Error);
  CHECK_THROWS_AS(nn::Schedule::constant(INFINITY).validate("learning rate"), Error);
  CHECK_THROWS_AS(nn::Schedule::constant(-0.1).validate("learning rate"), Error);
  CHECK_THROWS_AS(nn::parse_schedule_kind("linear"), Error);
}

TEST_CASE("Optimizer: schedule per step and validation") {
  nn::OptimizerConfig c;
  c.lr = nn::Schedule::table({1.0, 0.5});
  nn::Optimizer opt(c);
  Tensor w = vec({0.0});
  opt.step(w, vec({1.0}));  // w = −1
  opt.step(w, vec({1.0}));  // w = −1.5
  opt.step(w, vec({1.0}));  // w = −2
  check_close(w, {-2.0}, 1e-15, "w");
  CHECK(opt.steps() == 3);
  nn::OptimizerConfig bad = c;
  bad.lr = nn::Schedule::constant(std::nan(""));
  CHECK_THROWS_WITH_AS(nn::Optimizer{bad}, doctest::Contains("learning rate"), Error);
  bad = c;
  bad.momentum = INFINITY;
  CHECK_THROWS_WITH_AS(nn::Optimizer{bad}, doctest::Contains("momentum"), Error);
  bad = c;
  bad.kind = nn::OptimizerKind::adam;
  bad.beta1 = 1.0;
  CHECK_THROWS_AS(nn::Optimizer{bad}, Error);
  CHECK_THROWS_AS(nn::parse_optimizer("rmsprop"), Error);
}

TEST_CASE("differentiable SGD step: check_ad in (w, v, g) and (lr, momentum, weight decay)") {
  // w = [w0 (4), v0 (4), g (4)], λ = (lr, momentum, weight decay). The state after two steps
  // (the second gradient a fixed nonlinear function of the first iterate) is wrapped.
  const Tensor w = random_tensor(Shape{12}, 21);
  const Tensor lam = Tensor::from({0.1, 0.9, 0.05}, Shape{3}, DType::f64);
  check_ad("sgd_step", [](const Var& w, const Var& lam) {
    const nn::SgdVars h{slice(lam, 0, Shape{}), slice(lam, 1, Shape{}), slice(lam, 2, Shape{})};
    nn::SgdVarState s{slice(w, 0, Shape{4}), slice(w, 4, Shape{4})};
    s = nn::sgd_step(s, slice(w, 8, Shape{4}), h);
    s = nn::sgd_step(s, tanh(s.w) * s.w, h);  // g₂ = ∇ of a loss at w₁ (here any function of w₁)
    return wrap(s.w) + wrap(s.v, 5);
  }, w, lam);
}

TEST_CASE("differentiable SGD step with per-parameter learning rates and weight decay") {
  const Tensor w = random_tensor(Shape{12}, 22);
  const Tensor lam = random_tensor(Shape{8}, 23, 0.05, 0.2);  // lr (4), weight decay (4)
  check_ad("sgd_step per parameter", [](const Var& w, const Var& lam) {
    const Tensor mom = Tensor::scalar(0.9, w.dtype());
    const nn::SgdVars h{slice(lam, 0, Shape{4}), w.tape().constant(mom), slice(lam, 4, Shape{4})};
    nn::SgdVarState s{slice(w, 0, Shape{4}), slice(w, 4, Shape{4})};
    s = nn::sgd_step(s, slice(w, 8, Shape{4}), h);
    s = nn::sgd_step(s, tanh(s.w) * s.w, h);
    return wrap(s.w) + wrap(s.v, 5);
  }, w, lam);
}

TEST_CASE("differentiable Adam step: check_ad in (w, m, v, g) and (lr, β1, β2, ε, weight decay)") {
  // w = [w0 (4), m0 (4), r (4), g (4)] with v0 = r² + 0.1 > 0 (√v is smooth there); t0 = 2.
  const Tensor w = random_tensor(Shape{16}, 24);
  const Tensor lam = Tensor::from({0.1, 0.9, 0.99, 0.01, 0.05}, Shape{5}, DType::f64);
  for (bool decoupled : {false, true}) {
    check_ad(decoupled ? "adamw_step" : "adam_step", [decoupled](const Var& w, const Var& lam) {
      nn::AdamVars h{slice(lam, 0, Shape{}), slice(lam, 1, Shape{}), slice(lam, 2, Shape{}), slice(lam, 3, Shape{}),
                     slice(lam, 4, Shape{}), decoupled};
      const Var r = slice(w, 8, Shape{4});
      nn::AdamVarState s{slice(w, 0, Shape{4}), slice(w, 4, Shape{4}), r * r + 0.1, 2};
      s = nn::adam_step(s, slice(w, 12, Shape{4}), h);
      s = nn::adam_step(s, tanh(s.w) * s.w, h);
      CHECK(s.t == 4);
      return wrap(s.w) + wrap(s.m, 5) + wrap(s.v, 7);
    }, w, lam);
  }
}

TEST_CASE("the differentiable steps and the fast path give the same numbers") {
  const Tensor w0 = random_tensor(Shape{6}, 25), g1 = random_tensor(Shape{6}, 26), g2 = random_tensor(Shape{6}, 27);
  {
    const nn::SgdHyper h{0.1, 0.9, 0.01};
    nn::Sgd sgd;
    Tensor w = w0.clone();
    sgd.step(w, g1, h);
    sgd.step(w, g2, h);
    Tape t;
    const nn::SgdVars hv = nn::constant_vars(t, h, DType::f64);
    nn::SgdVarState s{t.variable(w0), t.constant(Tensor::zeros(Shape{6}, DType::f64))};
    s = nn::sgd_step(s, t.constant(g1), hv);
    s = nn::sgd_step(s, t.constant(g2), hv);
    CHECK(rel_error(s.w.value().to_vector(), w.to_vector()) <= 1e-15);
    CHECK(rel_error(s.v.value().to_vector(), sgd.velocity.to_vector()) <= 1e-15);
  }
  for (bool decoupled : {false, true}) {
    const nn::AdamHyper h{0.01, 0.9, 0.999, 1e-8, 0.1, decoupled};
    nn::Adam adam;
    Tensor w = w0.clone();
    adam.step(w, g1, h);
    adam.step(w, g2, h);
    Tape t;
    const nn::AdamVars hv = nn::constant_vars(t, h, DType::f64);
    const Tensor zero = Tensor::zeros(Shape{6}, DType::f64);
    nn::AdamVarState s{t.variable(w0), t.constant(zero), t.constant(zero), 0};
    s = nn::adam_step(s, t.constant(g1), hv);
    s = nn::adam_step(s, t.constant(g2), hv);
    CHECK(rel_error(s.w.value().to_vector(), w.to_vector()) <= 1e-14);
    CHECK(rel_error(s.m.value().to_vector(), adam.m.to_vector()) <= 1e-14);
    CHECK(rel_error(s.v.value().to_vector(), adam.v.to_vector()) <= 1e-14);
  }
}

TEST_CASE("Adam in PyTorch's form (sqrt(v_hat) + eps) differentiates where v stays exactly 0: check_ad, no NaN") {
  // w = [w0 (4)], λ = (lr, β1, β2, ε, weight decay); AdamW (decoupled), three steps from m = v = 0
  // with g_t = c ⊙ tanh(w_t), c₃ = 0: w₃'s gradient is exactly 0 at every step, so v₃ stays
  // exactly 0 for every (w, λ) and every derivative through √v₃ is truly 0 (PyTorch's autograd
  // gives ∞ · 0 = NaN there). Every derivative check_ad makes — gradients, J v, H v, the mixed
  // product, float32 — is against central differences of the run.
  const Tensor w = random_tensor(Shape{4}, 31);
  const Tensor lam = Tensor::from({0.1, 0.9, 0.99, 0.01, 0.05}, Shape{5}, DType::f64);
  auto run = [](const Var& w, const Var& lam) {
    nn::AdamVars h{slice(lam, 0, Shape{}), slice(lam, 1, Shape{}), slice(lam, 2, Shape{}), slice(lam, 3, Shape{}),
                   slice(lam, 4, Shape{}), /*decoupled=*/true, /*eps_inside_sqrt=*/false};
    const Tensor c = Tensor::from({1.0, -0.5, 2.0, 0.0}, Shape{4}, w.dtype());
    const Tensor zero = Tensor::zeros(Shape{4}, w.dtype());
    nn::AdamVarState s{w, w.tape().constant(zero), w.tape().constant(zero), 0};
    for (int t = 0; t < 3; ++t) s = nn::adam_step(s, tanh(s.w) * c, h);
    CHECK(s.v.value().at(3) == 0.0);
    return wrap(s.w) + wrap(s.m, 5) + wrap(s.v, 7);
  };
  check_ad("adamw_step, v3 = 0", run, w, lam);
  // And the gradient itself is finite where PyTorch's is NaN.
  Tape t;
  const Var W = t.variable(w), L = t.variable(lam);
  Request r;
  r.output = run(W, L);
  r.gradients = {W, L};
  t.differentiate(r);
  for (const Var& v : {W, L})
    for (double x : t.adjoint(v).value.to_vector()) CHECK(std::isfinite(x));
}

TEST_CASE("adam_sqrt_v: sqrt's value bits, derivative 1/(2 sqrt(v)) where v > 0 and 0 where v = 0") {
  const Tensor v = Tensor::from({0.0, 0.25, 2.0, 0.0}, Shape{4}, DType::f64);
  Tape t;
  const Var V = t.variable(v);
  const Var y = adam_sqrt_v(V);
  const Var plain = sqrt(V);
  for (std::int64_t i = 0; i < 4; ++i) CHECK(y.value().at(i) == plain.value().at(i));
  // Reverse mode: d/dv Σ y.
  Request r;
  r.output = sum(y);
  r.gradients = {V};
  t.differentiate(r);
  const Tensor g = t.adjoint(V).value;
  CHECK(g.at(0) == 0.0);
  CHECK(g.at(1) == 1.0);
  CHECK(g.at(2) == 0.5 / std::sqrt(2.0));
  CHECK(g.at(3) == 0.0);
  // Forward mode: a tangent that is 0 where v = 0 gives 0 there.
  Request f;
  f.output = y;
  f.output_tangent = true;
  f.tangents = {{V, Tensor::from({0.0, 1.0, 1.0, 0.0}, Shape{4}, DType::f64)}};
  t.differentiate(f);
  const Tensor ty = t.tangent(y);
  CHECK(ty.at(0) == 0.0);
  CHECK(ty.at(1) == 1.0);
  CHECK(ty.at(3) == 0.0);
  // Plain mode (values only) is sqrt itself.
  Tape p;
  p.set_recording(false);
  CHECK(adam_sqrt_v(p.variable(v)).value().at(2) == std::sqrt(2.0));
}

TEST_CASE("the differentiable Adam step and the fast path agree where some v stays 0") {
  const Tensor w0 = random_tensor(Shape{5}, 32);
  const Tensor g = Tensor::from({0.3, 0.0, -0.2, 0.0, 0.1}, Shape{5}, DType::f64);
  const nn::AdamHyper h{0.01, 0.9, 0.999, 1e-8, 0.1, true};
  nn::Adam adam;
  Tensor w = w0.clone();
  adam.step(w, g, h);
  adam.step(w, g, h);
  Tape t;
  const nn::AdamVars hv = nn::constant_vars(t, h, DType::f64);
  const Tensor zero = Tensor::zeros(Shape{5}, DType::f64);
  nn::AdamVarState s{t.variable(w0), t.constant(zero), t.constant(zero), 0};
  s = nn::adam_step(s, t.constant(g), hv);
  s = nn::adam_step(s, t.constant(g), hv);
  CHECK(rel_error(s.w.value().to_vector(), w.to_vector()) <= 1e-14);  // the tolerance of the test above
  CHECK(rel_error(s.v.value().to_vector(), adam.v.to_vector()) <= 1e-14);
  for (std::int64_t i : {1, 3}) {
    CHECK(s.v.value().at(i) == 0.0);
    CHECK(adam.v.at(i) == 0.0);
    CHECK(std::abs(s.w.value().at(i) - w.at(i)) <= 1e-15 * std::abs(w.at(i)));  // only the decay moved it
  }
}
