// Every nn layer and loss, checked in float64 by check_ad (gradient, JVP, HVP and mixed product
// against finite differences at 1e-6; symmetry; K directions; dense Hessian; float32 vs float64).
//
// Each check is a scalar f(w, λ): w holds the layer's parameters followed by its input, λ
// scales the input (or is the loss's hyperparameter), and the layer's output y is wrapped as
// Σ c⊙y + ½ Σ (d⊙y)² so that its second-order behaviour is exercised, not only its first
// derivative.
#include "../engine/check_ad.h"

#include <gradhpo/engine/ops.h>
#include <gradhpo/nn/nn.h>

using namespace gradhpo;
using namespace gradhpo::testing;
namespace nn = gradhpo::nn;

namespace {

// Elements [offset, offset + shape.numel()) of w viewed as `shape`, times λ on the trailing axis.
Var scaled_input(const Var& w, const Var& lam, std::int64_t offset, const Shape& shape) {
  return slice(w, offset, shape) * lam;
}

}  // namespace

TEST_CASE("Linear: weight, bias and input") {
  nn::ParamLayout layout;
  const nn::Linear fc = nn::Linear::create(layout, "fc", 3, 4);
  REQUIRE(layout.numel() == 16);
  const Tensor w = away_from_zero(Shape{16 + 6}, 1);  // parameters, then x [2, 3]
  const Tensor lam = random_tensor(Shape{3}, 2, 0.5, 1.5);
  check_ad("linear", [&](const Var& w, const Var& lam) {
    return wrap(fc(w, scaled_input(w, lam, 16, Shape{2, 3})));
  }, w, lam);
  // Without a bias, and the functional form with weights coming from λ as well.
  nn::ParamLayout nobias;
  const nn::Linear fc2 = nn::Linear::create(nobias, "fc", 3, 4, /*with_bias=*/false);
  REQUIRE(nobias.numel() == 12);
  check_ad("linear without bias", [&](const Var& w, const Var& lam) {
    return wrap(fc2(w, scaled_input(w, lam, 16, Shape{2, 3})));
  }, w, lam);
}

TEST_CASE("activations (relu, tanh) and flatten") {
  const Tensor w = away_from_zero(Shape{16}, 3);
  const Tensor lam = random_tensor(Shape{2}, 4, 0.5, 1.5);
  for (nn::Activation a : {nn::Activation::relu, nn::Activation::tanh}) {
    check_ad(nn::activation_name(a), [a](const Var& w, const Var& lam) {
      const Var x = scaled_input(w, lam, 0, Shape{2, 2, 2, 2});  // [N, C, H, W], λ on W
      return wrap(nn::flatten(nn::activate(x, a)));
    }, w, lam);
  }
  CHECK(nn::parse_activation("tanh") == nn::Activation::tanh);
  CHECK_THROWS_AS(nn::parse_activation("gelu"), Error);
}

TEST_CASE("cross-entropy: mean, per example, and weighted by a hyperparameter per example") {
  const Tensor labels = Tensor::from_labels({2, 0, 3});
  const Tensor w = random_tensor(Shape{12}, 5);
  const Tensor lam4 = random_tensor(Shape{4}, 6, 0.5, 1.5);
  check_ad("cross_entropy", [&](const Var& w, const Var& lam) {
    return nn::cross_entropy(scaled_input(w, lam, 0, Shape{3, 4}) * 2.0, labels);
  }, w, lam4);
  check_ad("cross_entropy_per_example", [&](const Var& w, const Var& lam) {
    return wrap(nn::cross_entropy_per_example(scaled_input(w, lam, 0, Shape{3, 4}) * 2.0, labels));
  }, w, lam4);
  // Data hyper-cleaning: (1/B) Σ σ(λ_i) ℓ_i with one λ per example.
  const Tensor lam3 = random_tensor(Shape{3}, 7);
  check_ad("weighted_cross_entropy", [&](const Var& w, const Var& lam) {
    return nn::weighted_cross_entropy(reshape(w, Shape{3, 4}) * 2.0, labels, sigmoid(lam));
  }, w, lam3);
}

TEST_CASE("weighted cross-entropy equals the mean when every weight is 1") {
  Tape t;
  const Var z = t.variable(random_tensor(Shape{3, 4}, 8));
  const Tensor labels = Tensor::from_labels({1, 1, 2});
  const double a = nn::weighted_cross_entropy(z, labels, t.constant(Tensor::full(Shape{3}, 1.0, DType::f64))).item();
  const double b = nn::cross_entropy(z, labels).item();
  CHECK(std::abs(a - b) <= 1e-15);
}

TEST_CASE("L2 penalties: global, per parameter, per tensor, per layer, weights only") {
  nn::ParamLayout layout;
  nn::Linear::create(layout, "fc1", 3, 2);  // fc1.weight [2, 3], fc1.bias [2]
  nn::Linear::create(layout, "fc2", 2, 2);  // fc2.weight [2, 2], fc2.bias [2]
  REQUIRE(layout.numel() == 14);
  const Tensor w = random_tensor(Shape{14}, 9);

  // Values by hand: ½ Σ λ_i w_i² computed element by element here.
  {
    const std::vector<double> wv = w.to_vector();
    double sq = 0, fc1w = 0, fc2w = 0;
    for (std::size_t i = 0; i < wv.size(); ++i) {
      sq += wv[i] * wv[i];
      if (i < 6) fc1w += wv[i] * wv[i];              // fc1.weight: elements 0..5
      if (i >= 8 && i < 12) fc2w += wv[i] * wv[i];   // fc2.weight: elements 8..11
    }
    Tape t;
    const Var W = t.variable(w);
    CHECK(std::abs(nn::l2_penalty(W, 0.3).item() - 0.15 * sq) <= 1e-14);
    CHECK(std::abs(nn::l2_penalty(W, t.constant(Tensor::scalar(0.3, DType::f64))).item() - 0.15 * sq) <= 1e-14);
    // Per layer: groups fc1 (weight + bias) and fc2 (weight + bias).
    std::vector<std::string> names;
    const std::vector<int> groups = nn::layer_groups(layout, &names);
    CHECK(groups == std::vector<int>{0, 0, 1, 1});
    CHECK(names == std::vector<std::string>{"fc1", "fc2"});
    // Weights only, λ = (2, 4): ½ (2 ‖fc1.weight‖² + 4 ‖fc2.weight‖²).
    const std::vector<int> wg = nn::weight_groups(layout);
    CHECK(wg == std::vector<int>{0, -1, 1, -1});
    const Var lw = t.constant(Tensor::from({2.0, 4.0}, Shape{2}, DType::f64));
    CHECK(std::abs(nn::l2_penalty_grouped(layout, W, lw, wg).item() - (fc1w + 2.0 * fc2w)) <= 1e-14);
  }

  const Tensor lam1 = random_tensor(Shape{1}, 10, 0.5, 1.5);
  check_ad("l2 global", [](const Var& w, const Var& lam) { return nn::l2_penalty(w, lam) + wrap(w * w, 3); }, w, lam1);
  const Tensor lamn = random_tensor(Shape{14}, 11, 0.5, 1.5);
  check_ad("l2 per parameter", [](const Var& w, const Var& lam) { return nn::l2_penalty(w, lam) + wrap(w * w, 3); }, w,
           lamn);
  const Tensor lamt = random_tensor(Shape{4}, 12, 0.5, 1.5);
  check_ad("l2 per tensor", [&](const Var& w, const Var& lam) {
    return nn::l2_penalty_per_tensor(layout, w, lam) + wrap(w * w, 3);
  }, w, lamt);
  const Tensor laml = random_tensor(Shape{2}, 13, 0.5, 1.5);
  check_ad("l2 per layer", [&](const Var& w, const Var& lam) {
    return nn::l2_penalty_grouped(layout, w, lam, nn::layer_groups(layout)) + wrap(w * w, 3);
  }, w, laml);

  Tape t;
  CHECK_THROWS_AS(nn::l2_penalty(t.variable(w), t.variable(Tensor::zeros(Shape{3}, DType::f64))), Error);
  CHECK_THROWS_AS(nn::l2_penalty_grouped(layout, t.variable(w), t.variable(Tensor::zeros(Shape{1}, DType::f64)),
                                         {0, 0, 1, 1}),
                  Error);
}

TEST_CASE("MLP: whole model through check_ad (cross-entropy + per-tensor L2 as λ)") {
  // Input 1×2×3 (6 features) -> 4 -> 3 classes: 6·4 + 4 + 4·3 + 3 = 43 parameters.
  for (nn::Activation a : {nn::Activation::relu, nn::Activation::tanh}) {
    nn::MlpOptions o;
    o.hidden = {4};
    o.activation = a;
    const nn::Mlp mlp(Shape{1, 2, 3}, 3, o);
    REQUIRE(mlp.num_params() == 43);
    const Tensor x = random_tensor(Shape{5, 1, 2, 3}, 14);
    const Tensor y = Tensor::from_labels({0, 2, 1, 1, 0});
    const Tensor w = mlp.init(3, nn::InitScheme::pytorch, DType::f64);
    const Tensor lam = random_tensor(Shape{4}, 15, 0.1, 0.5);
    check_ad(std::string("mlp ") + nn::activation_name(a), [&](const Var& w, const Var& lam) {
      const Var logits = mlp.forward(w, x.to(w.dtype()), nn::Context::train());
      return nn::cross_entropy(logits, y) + nn::l2_penalty_per_tensor(mlp.layout(), w, lam);
    }, w, lam);
  }
}
