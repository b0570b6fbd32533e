// A composed model end to end: a 2-hidden-layer MLP with cross-entropy and per-parameter L2
// hyperparameters, through the same checks as every primitive.
#include "check_ad.h"

#include <gradhpo/engine/ops.h>

using namespace gradhpo;
using namespace gradhpo::testing;

namespace {

// 5-4-3-3 MLP, tanh then relu hidden layers, batch 6; w holds W1 b1 W2 b2 W3 b3.
constexpr std::int64_t kWidths[] = {5, 4, 3, 3};
constexpr std::int64_t kParams = 5 * 4 + 4 + 4 * 3 + 3 + 3 * 3 + 3;  // 51

Var mlp_logits(const Var& w, const Tensor& x) {
  Var h = w.tape().constant(x.to(w.dtype()));
  std::int64_t off = 0;
  for (int l = 0; l < 3; ++l) {
    const Var W = slice(w, off, Shape{kWidths[l], kWidths[l + 1]});
    off += kWidths[l] * kWidths[l + 1];
    const Var b = slice(w, off, Shape{kWidths[l + 1]});
    off += kWidths[l + 1];
    h = matmul(h, W) + b;
    if (l == 0) h = tanh(h);
    if (l == 1) h = relu(h);
  }
  return h;
}

}  // namespace

TEST_CASE("2-hidden-layer MLP with per-parameter L2: gradient, JVP, HVP, mixed product") {
  const Tensor x = random_tensor(Shape{6, 5}, 21);
  const Tensor labels = Tensor::from_labels({0, 2, 1, 1, 0, 2});
  const Tensor w = random_tensor(Shape{kParams}, 22, -0.8, 0.8);
  const Tensor lam = random_tensor(Shape{kParams}, 23, 0.01, 0.1);
  check_ad("mlp + per-parameter L2", [&](const Var& W, const Var& Lam) {
    return cross_entropy(mlp_logits(W, x), labels) + 0.5 * sum(Lam * square(W));
  }, w, lam);
}

TEST_CASE("MLP with per-example weights (data hyper-cleaning) and a global L2 in log space") {
  const Tensor x = random_tensor(Shape{6, 5}, 31);
  const Tensor labels = Tensor::from_labels({2, 2, 0, 1, 0, 1});
  const Tensor w = random_tensor(Shape{kParams}, 32, -0.8, 0.8);
  const Tensor lam = random_tensor(Shape{7}, 33, -1.0, 1.0);  // 6 example weights + log L2
  check_ad("weighted examples", [&](const Var& W, const Var& Lam) {
    const Var weights = sigmoid(slice(Lam, 0, Shape{6}));
    const Var l2 = exp(slice(Lam, 6, Shape{}) + (-4.0));
    return sum(weights * cross_entropy_per_example(mlp_logits(W, x), labels)) / 6.0 + l2 * dot(W, W);
  }, w, lam);
}
