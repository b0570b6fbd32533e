// Models: parameter layouts and counts (computed by hand below), initializers, batch-norm state,
// the conv layers through check_ad, and whole-model second-order checks (H v and the mixed
// product against finite differences of the gradient) on tiny LeNet-5 and WRN instances.
#include "../engine/check_ad.h"

#include <cmath>
#include <set>

#include <gradhpo/engine/ops.h>
#include <gradhpo/nn/nn.h>

using namespace gradhpo;
using namespace gradhpo::testing;
namespace nn = gradhpo::nn;

namespace {

std::vector<double> unit(std::vector<double> v) {
  const double n = norm(v);
  for (double& x : v) x /= n;
  return v;
}

// A cheaper version of check_ad for whole models (thousands of parameters), in float64:
// along unit random directions u, v in w-space,
//   u·∇_w f   against the difference of f along u,
//   J v       (forward mode) against the difference of f along v,
//   H v       against the difference of ∇_w f along v,
//   ∂_λ(v·∇_w f) against differences of v·∇_w f, one λ coordinate at a time,
//   ∇_λ f     against differences of f, one λ coordinate at a time,
// plus uᵀ(H v) = vᵀ(H u). Steps are small (h = 1e-5 on unit directions) so that no ReLU or
// max-pool switch is crossed; Richardson extrapolation keeps truncation far below 1e-6.
void check_model_second_order(const std::string& name, const Fn& f, const Tensor& w, const Tensor& lam,
                              double tol = 1e-6, double h = 1e-5) {
  INFO("model: " << name);
  const Shape ws = w.shape(), ls = lam.shape();
  const std::vector<double> w0 = w.to_vector(), l0 = lam.to_vector();
  auto T = [](const std::vector<double>& x, const Shape& s) { return Tensor::from(x, s, DType::f64); };
  auto value = [&](const std::vector<double>& wv, const std::vector<double>& lv) {
    Tape t;
    return f(t.variable(T(wv, ws)), t.variable(T(lv, ls))).item();
  };
  auto grads = [&](const std::vector<double>& wv, const std::vector<double>& lv) {
    Tape t;
    const Var W = t.variable(T(wv, ws)), L = t.variable(T(lv, ls));
    Request r;
    r.output = f(W, L);
    r.gradients = {W, L};
    t.differentiate(r);
    return std::make_pair(t.adjoint(W).value.to_vector(), t.adjoint(L).value.to_vector());
  };
  const std::vector<double> u = unit(random_tensor(ws, 101).to_vector());
  const std::vector<double> v = unit(random_tensor(ws, 102).to_vector());
  const auto [gw, gl] = grads(w0, l0);
  auto dotv = [](const std::vector<double>& a, const std::vector<double>& b) {
    double s = 0;
    for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
    return s;
  };

  const double fd_ug = fd::derivative([&](double s) { return std::vector<double>{value(axpy(w0, s, u), l0)}; }, h)[0];
  CHECK_MESSAGE(std::abs(dotv(u, gw) - fd_ug) <= tol * std::max(1e-3, std::abs(fd_ug)),
                "u·∇f " << dotv(u, gw) << " vs " << fd_ug);

  auto fw = [&](const Var& W) { return f(W, W.tape().constant(lam)); };
  const double jv = jvp(fw, w, T(v, ws)).tangent.item();
  const double fd_jv = fd::derivative([&](double s) { return std::vector<double>{value(axpy(w0, s, v), l0)}; }, h)[0];
  CHECK_MESSAGE(std::abs(jv - fd_jv) <= tol * std::max(1e-3, std::abs(fd_jv)), "jvp " << jv << " vs " << fd_jv);

  const MixedResult mx = mixed_vjp(f, w, lam, T(v, ws), /*with_hvp=*/true);
  const auto fd_hv = fd::derivative([&](double s) { return grads(axpy(w0, s, v), l0).first; }, h);
  CHECK_MESSAGE(rel_error(mx.hvp.to_vector(), fd_hv) <= tol, "hvp: rel error " << rel_error(mx.hvp.to_vector(), fd_hv));
  CHECK_MESSAGE(rel_error(mx.grad_w.to_vector(), gw) <= 1e-12, "the HVP pass's gradient differs");

  std::vector<double> fd_mx(l0.size()), fd_gl(l0.size());
  for (std::size_t j = 0; j < l0.size(); ++j) {
    fd_mx[j] = fd::derivative([&](double s) {
      auto x = l0;
      x[j] += s;
      return std::vector<double>{dotv(v, grads(w0, x).first)};
    }, h)[0];
    fd_gl[j] = fd::derivative([&](double s) {
      auto x = l0;
      x[j] += s;
      return std::vector<double>{value(w0, x)};
    }, h)[0];
  }
  CHECK_MESSAGE(rel_error(mx.mixed.to_vector(), fd_mx) <= tol, "mixed: rel error " << rel_error(mx.mixed.to_vector(), fd_mx));
  CHECK_MESSAGE(rel_error(gl, fd_gl) <= tol, "∇_λ: rel error " << rel_error(gl, fd_gl));

  const double uHv = dotv(u, mx.hvp.to_vector());
  const double vHu = dotv(v, hvp(fw, w, T(u, ws)).hvp.to_vector());
  CHECK_MESSAGE(std::abs(uHv - vHu) <= 1e-10 * std::max({1.0, std::abs(uHv)}), "uᵀHv " << uHv << " vs vᵀHu " << vHu);
}

}  // namespace

TEST_CASE("parameter counts, each computed by hand") {
  // MLP 784-256-128-10: 784·256 + 256 + 256·128 + 128 + 128·10 + 10 = 200960 + 32896 + 1290.
  CHECK(nn::Mlp(Shape{1, 28, 28}, 10).num_params() == 235146);
  // LeNet-5 on 1×28×28: conv1 1·6·25 + 6 = 156; conv2 6·16·25 + 16 = 2416; after two pools the
  // map is 16×5×5 = 400; fc1 400·120 + 120 = 48120; fc2 120·84 + 84 = 10164; fc3 84·10 + 10 = 850.
  // Total 156 + 2416 + 48120 + 10164 + 850 = 61706.
  CHECK(nn::LeNet5(Shape{1, 28, 28}, 10).num_params() == 61706);
  // LeNet-5 on 3×32×32 (no padding): conv1 3·6·25 + 6 = 456, the rest as above: 62006.
  CHECK(nn::LeNet5(Shape{3, 32, 32}, 10).num_params() == 62006);
  // WRN-16-1 on 3×32×32 (convs without bias; a BN has 2C parameters):
  //   conv1 3·16·9 = 432
  //   group 1 (16 -> 16, 2 blocks, identity shortcuts): per block 32 + 2304 + 32 + 2304 = 4672; 9344
  //   group 2 (16 -> 32): block 1 32 + 4608 + 64 + 9216 + 1×1 shortcut 512 = 14432;
  //                       block 2 64 + 9216 + 64 + 9216 = 18560; 32992
  //   group 3 (32 -> 64): block 1 64 + 18432 + 128 + 36864 + 2048 = 57536;
  //                       block 2 128 + 36864 + 128 + 36864 = 73984; 131520
  //   final BN 128, fc 64·10 + 10 = 650
  //   total 432 + 9344 + 32992 + 131520 + 128 + 650 = 175066
  CHECK(nn::WideResNet(Shape{3, 32, 32}, 10).num_params() == 175066);
  // WRN-16-4 (widths 16, 64, 128, 256): 432 + 121248 + 525184 + 2098944 + 512 + 2570 = 2748890
  // (the paper's table 1 lists 2.7M).
  nn::WideResNetOptions k4;
  k4.widen = 4;
  CHECK(nn::WideResNet(Shape{3, 32, 32}, 10, k4).num_params() == 2748890);
}

TEST_CASE("layout: contiguous named tensors, lookups, masks, errors") {
  const nn::WideResNet wrn(Shape{3, 32, 32}, 10);
  const nn::ParamLayout& L = wrn.layout();
  std::int64_t next = 0;
  std::set<std::string> names;
  for (const nn::ParamInfo& p : L.params()) {
    CHECK(p.offset == next);
    next += p.numel();
    names.insert(p.name);
  }
  CHECK(next == L.numel());
  CHECK(names.size() == L.params().size());
  CHECK(L.batch_norms().size() == 13);  // 2 per block × 6 blocks + the final one
  CHECK(L[L.index("group2.block1.shortcut.weight")].shape == Shape{32, 16, 1, 1});
  CHECK(L.find("group1.block1.shortcut.weight") == -1);  // 16 -> 16, stride 1: identity
  CHECK(L[L.index("fc.weight")].shape == Shape{10, 64});
  CHECK_THROWS_WITH_AS(L.index("nope"), doctest::Contains("conv1.weight"), Error);
  nn::ParamLayout dup;
  dup.add("a", Shape{2}, nn::ParamRole::bias, 1, 1);
  CHECK_THROWS_AS(dup.add("a", Shape{2}, nn::ParamRole::bias, 1, 1), Error);

  const nn::LeNet5 lenet(Shape{1, 28, 28}, 10);
  const Tensor mask = lenet.layout().mask({nn::ParamRole::weight}, DType::f64);
  double ones = 0;
  for (double m : mask.to_vector()) ones += m;
  CHECK(ones == 61706 - (6 + 16 + 120 + 84 + 10));  // everything but the biases
  CHECK_THROWS_AS(nn::make_model("resnet50", Shape{1, 28, 28}, 10), Error);
  CHECK(nn::make_model("wrn16", Shape{3, 32, 32}, 10)->num_params() == 175066);
  CHECK_THROWS_WITH_AS(nn::LeNet5(Shape{1, 8, 8}, 10), doctest::Contains("too small"), Error);
}

TEST_CASE("initializers: deterministic, and each distribution where it should be") {
  const nn::LeNet5 lenet(Shape{1, 28, 28}, 10);
  const nn::ParamLayout& L = lenet.layout();
  const Tensor a = lenet.init(42), b = lenet.init(42), c = lenet.init(43);
  CHECK(a.to_vector() == b.to_vector());
  CHECK(a.to_vector() != c.to_vector());
  CHECK(a.dtype() == DType::f32);
  // float64 draws the same numbers (rounded differently).
  const Tensor a64 = lenet.init(42, nn::InitScheme::pytorch, DType::f64);
  CHECK(std::abs(a64.at(100) - a.at(100)) <= 1e-7);

  auto stats = [](const Tensor& t) {
    double s = 0, s2 = 0, mx = 0;
    for (double x : t.to_vector()) {
      s += x;
      s2 += x * x;
      mx = std::max(mx, std::abs(x));
    }
    const double n = static_cast<double>(t.numel());
    return std::array<double, 3>{s / n, std::sqrt(s2 / n - (s / n) * (s / n)), mx};
  };
  // PyTorch default, fc1 (fan_in 400): U(±1/20), std = 0.05/√3; its bias U(±1/20) too.
  {
    const auto st = stats(L.ref(L.index("fc1.weight")).view(a));
    CHECK(st[2] <= 0.05);
    CHECK(st[2] >= 0.0495);
    CHECK(std::abs(st[1] - 0.05 / std::sqrt(3.0)) <= 0.0005);
    CHECK(std::abs(st[0]) <= 0.0005);
    CHECK(stats(L.ref(L.index("fc1.bias")).view(a))[2] <= 0.05);
    // conv2 (fan_in 6·25 = 150): U(±1/√150).
    CHECK(stats(L.ref(L.index("conv2.weight")).view(a))[2] <= 1 / std::sqrt(150.0));
  }
  // Kaiming normal, fc1: std √(2/400) = 0.0707; biases zero.
  {
    const Tensor k = lenet.init(7, nn::InitScheme::kaiming_normal);
    const auto st = stats(L.ref(L.index("fc1.weight")).view(k));
    CHECK(std::abs(st[1] - std::sqrt(2.0 / 400)) <= 0.001);
    CHECK(std::abs(st[0]) <= 0.001);
    CHECK(stats(L.ref(L.index("fc1.bias")).view(k))[2] == 0.0);
  }
  // Glorot uniform, fc1 (400 -> 120): U(±√(6/520)).
  {
    const Tensor g = lenet.init(7, nn::InitScheme::glorot_uniform);
    const double bound = std::sqrt(6.0 / 520);
    const auto st = stats(L.ref(L.index("fc1.weight")).view(g));
    CHECK(st[2] <= bound);
    CHECK(st[2] >= 0.99 * bound);
  }
  // Batch norm: γ = 1, β = 0 under every scheme.
  const nn::WideResNet wrn(Shape{3, 32, 32}, 10);
  const nn::ParamLayout& WL = wrn.layout();
  for (nn::InitScheme s : {nn::InitScheme::pytorch, nn::InitScheme::kaiming_normal, nn::InitScheme::glorot_uniform}) {
    const Tensor w = wrn.init(1, s);
    for (double x : WL.ref(WL.index("group3.block2.bn1.gamma")).view(w).to_vector()) CHECK(x == 1.0);
    for (double x : WL.ref(WL.index("bn.beta")).view(w).to_vector()) CHECK(x == 0.0);
  }
  CHECK(nn::parse_init_scheme("kaiming") == nn::InitScheme::kaiming_normal);
  CHECK_THROWS_AS(nn::parse_init_scheme("orthogonal"), Error);
}

TEST_CASE("Conv2d layer (with and without bias, stride, padding) through check_ad") {
  struct Case {
    int stride, padding;
    bool bias;
  };
  for (const Case c : {Case{1, 0, true}, Case{2, 1, false}, Case{1, 1, true}}) {
    nn::ParamLayout layout;
    const nn::Conv2d conv = nn::Conv2d::create(layout, "conv", 2, 3, 3, c.stride, c.padding, c.bias);
    const std::int64_t np = layout.numel();  // 54 (+ 3)
    const Tensor w = away_from_zero(Shape{np + 2 * 2 * 4 * 4}, 31);  // then x [2, 2, 4, 4]
    const Tensor lam = random_tensor(Shape{4}, 32, 0.5, 1.5);
    check_ad("conv stride " + std::to_string(c.stride) + " pad " + std::to_string(c.padding) +
                 (c.bias ? " bias" : ""),
             [&](const Var& w, const Var& lam) {
               return wrap(conv(w, slice(w, np, Shape{2, 2, 4, 4}) * lam));
             },
             w, lam, AdCheckOptions{.dense_hessian = false});
  }
}

TEST_CASE("BatchNorm2d layer in training mode (batch statistics) and eval mode, through check_ad") {
  nn::ParamLayout layout;
  const nn::BatchNorm2d bn = nn::BatchNorm2d::create(layout, "bn", 3);
  REQUIRE(layout.numel() == 6);
  // γ, β away from zero, then x [2, 3, 2, 2].
  const Tensor w = away_from_zero(Shape{6 + 24}, 33);
  const Tensor lam = random_tensor(Shape{2}, 34, 0.5, 1.5);
  check_ad("batch norm train", [&](const Var& w, const Var& lam) {
    return wrap(bn(w, slice(w, 6, Shape{2, 3, 2, 2}) * lam, nn::Context::train()));
  }, w, lam);
  nn::ModelState state = nn::ModelState::for_layout(layout, DType::f64);
  state.running_mean[0] = Tensor::from({0.1, -0.2, 0.3}, Shape{3}, DType::f64);
  state.running_var[0] = Tensor::from({0.5, 1.5, 2.0}, Shape{3}, DType::f64);
  check_ad("batch norm eval", [&](const Var& w, const Var& lam) {
    return wrap(bn(w, slice(w, 6, Shape{2, 3, 2, 2}) * lam, nn::Context::eval(state)));
  }, w, lam);
}

TEST_CASE("BatchNorm2d running statistics: PyTorch's update, by hand") {
  nn::ParamLayout layout;
  const nn::BatchNorm2d bn = nn::BatchNorm2d::create(layout, "bn", 1);
  nn::ModelState state = nn::ModelState::for_layout(layout, DType::f64);
  Tape t;
  const Var W = t.variable(Tensor::from({1.0, 0.0}, Shape{2}, DType::f64));  // γ = 1, β = 0
  // One channel, values 1, 2, 3, 6: mean 3, biased variance (4 + 1 + 0 + 9)/4 = 3.5, unbiased 14/3.
  const Tensor x = Tensor::from({1.0, 2.0, 3.0, 6.0}, Shape{2, 1, 1, 2}, DType::f64);
  const Var y = bn(W, t.constant(x), nn::Context::train(&state));
  // running_mean = 0.9·0 + 0.1·3 = 0.3; running_var = 0.9·1 + 0.1·14/3 = 0.9 + 0.46667.
  CHECK(std::abs(state.running_mean[0].at(0) - 0.3) <= 1e-15);
  CHECK(std::abs(state.running_var[0].at(0) - (0.9 + 1.4 / 3)) <= 1e-15);
  // Training output uses the biased variance: (x − 3)/√(3.5 + 1e-5).
  CHECK(std::abs(y.value().at(3) - 3.0 / std::sqrt(3.5 + 1e-5)) <= 1e-12);
  // Pure training context: statistics untouched.
  const nn::ModelState before = state.clone();
  bn(W, t.constant(x), nn::Context::train());
  CHECK(state.running_mean[0].at(0) == before.running_mean[0].at(0));
  // Eval: (x − 0.3)/√(running_var + eps).
  const Var ye = bn(W, t.constant(x), nn::Context::eval(state));
  CHECK(std::abs(ye.value().at(0) - (1.0 - 0.3) / std::sqrt(0.9 + 1.4 / 3 + 1e-5)) <= 1e-12);
}

TEST_CASE("pooling and flatten inside a model-like chain through check_ad") {
  const Tensor w = away_from_zero(Shape{2 * 2 * 4 * 4}, 35);
  const Tensor lam = random_tensor(Shape{4}, 36, 0.5, 1.5);
  check_ad("max pool, avg pool, global avg pool", [](const Var& w, const Var& lam) {
    const Var x = reshape(w, Shape{2, 2, 4, 4}) * lam;
    return wrap(nn::flatten(max_pool2d(x, 2, 2))) + wrap(avg_pool2d(x, 2, 2), 5) + wrap(global_avg_pool(x), 7);
  }, w, lam, AdCheckOptions{.dense_hessian = false});
}

TEST_CASE("tiny LeNet-5 (16×16 images): H v and mixed product against finite differences") {
  // 1×16×16: conv1 (pad 2) 16×16 -> pool 8×8 -> conv2 4×4 -> pool 2×2 -> 64 -> 120 -> 84 -> 10.
  const Tensor x = random_tensor(Shape{3, 1, 16, 16}, 41);
  const Tensor y = Tensor::from_labels({3, 7, 0});
  const Tensor lam = random_tensor(Shape{3}, 42);  // per-example weights σ(λ_i)
  for (int variant = 0; variant < 2; ++variant) {
    nn::LeNet5Options o;
    if (variant == 0) {
      o.activation = nn::Activation::tanh;
      o.max_pool = false;
    }
    const nn::LeNet5 net(Shape{1, 16, 16}, 10, o);
    CHECK(net.num_params() == 156 + 2416 + (64 * 120 + 120) + 10164 + 850);
    const Tensor w = net.init(5, nn::InitScheme::pytorch, DType::f64);
    check_model_second_order(variant == 0 ? "lenet5 tanh avg-pool" : "lenet5 relu max-pool",
                             [&](const Var& w, const Var& lam) {
                               const Var logits = net.forward(w, x, nn::Context::train());
                               return nn::weighted_cross_entropy(logits, y, sigmoid(lam));
                             },
                             w, lam);
  }
}

TEST_CASE("tiny WRN-16 (widths 4, 4, 8, 16, 8×8 images): H v and mixed product, train and eval mode") {
  nn::WideResNetOptions o;
  o.base_width = 4;
  const nn::WideResNet net(Shape{3, 8, 8}, 10, o);
  const Tensor x = random_tensor(Shape{3, 3, 8, 8}, 43);
  const Tensor y = Tensor::from_labels({1, 4, 9});
  const Tensor w = net.init(6, nn::InitScheme::pytorch, DType::f64);
  // Per-example weights and a per-layer L2 coefficient: λ = (3 example weights, 1 L2 coef).
  const Tensor lam = random_tensor(Shape{4}, 44);
  auto loss = [&](const nn::Context& ctx) {
    return [&, ctx](const Var& w, const Var& lam) {
      const Var logits = net.forward(w, x, ctx);
      return nn::weighted_cross_entropy(logits, y, sigmoid(slice(lam, 0, Shape{3}))) +
             nn::l2_penalty(w, exp(slice(lam, 3, Shape{1})) * 1e-3);
    };
  };
  check_model_second_order("wrn train mode", loss(nn::Context::train()), w, lam);
  // Eval mode with running statistics gathered from two training passes.
  nn::ModelState state = net.init_state(DType::f64);
  for (int i = 0; i < 2; ++i) {
    Tape t;
    net.forward(t.constant(w), x, nn::Context::train(&state));
  }
  check_model_second_order("wrn eval mode", loss(nn::Context::eval(state)), w, lam);
}

TEST_CASE("models: output shapes, dtype checks, train vs eval") {
  nn::WideResNetOptions o;
  o.base_width = 4;
  const nn::WideResNet net(Shape{3, 8, 8}, 10, o);
  const Tensor w = net.init(1);
  Tape t;
  const Var W = t.variable(w);
  const Tensor x = random_tensor(Shape{5, 3, 8, 8}, 2, -1, 1, DType::f32);
  nn::ModelState state = net.init_state();
  const Var logits = net.forward(W, x, nn::Context::train(&state));
  CHECK(logits.shape() == Shape{5, 10});
  CHECK(state.running_mean[0].at(0) != 0.0);  // moved
  const Var le = net.forward(W, x, nn::Context::eval(state));
  CHECK(le.shape() == Shape{5, 10});
  CHECK(le.value().at(0) != logits.value().at(0));
  CHECK_THROWS_WITH_AS(net.forward(W, random_tensor(Shape{5, 1, 8, 8}, 3, -1, 1, DType::f32), nn::Context::train()),
                       doctest::Contains("expected a batch"), Error);
  CHECK_THROWS_WITH_AS(net.forward(W, x.to(DType::f64), nn::Context::train()), doctest::Contains("float"), Error);
  CHECK_THROWS_WITH_AS(net.forward(W, x, nn::Context{false, nullptr, nullptr}), doctest::Contains("running"), Error);
}

TEST_CASE("a batch of one example: every model takes a training step and evaluates") {
  // The [1, C] bias add of a one-example batch used to fail to broadcast (per-example and
  // online hyperparameter methods train with batch 1).
  nn::WideResNetOptions wo;
  wo.base_width = 4;
  const nn::Mlp mlp(Shape{1, 8, 8}, 10, nn::MlpOptions{{16}, nn::Activation::relu});
  const nn::LeNet5 lenet(Shape{1, 28, 28}, 10);
  const nn::WideResNet wrn(Shape{3, 8, 8}, 10, wo);
  const std::pair<const nn::Model*, Shape> cases[] = {
      {&mlp, Shape{1, 1, 8, 8}}, {&lenet, Shape{1, 1, 28, 28}}, {&wrn, Shape{1, 3, 8, 8}}};
  for (const auto& [model, shape] : cases) {
    const Tensor x = random_tensor(shape, 4, -1, 1, DType::f32);
    const Tensor y = Tensor::from_labels({3});
    nn::Trainer trainer(*model, model->init(1), model->init_state(), nn::OptimizerConfig{});
    const nn::StepResult s = trainer.step(x, y);
    CHECK(std::isfinite(s.loss));
    const nn::Evaluation e = nn::evaluate(*model, trainer.weights(), trainer.state(), x, {3}, 1);
    CHECK(e.count == 1);
  }
}
