// Every primitive of engine/ops on the GPU against the CPU: value, J V (K = 2), uᵀJ, and for a
// scalar wrapper of the output the gradient, H v and the mixed product (device_test.h).
// w carries the op's differentiated inputs; λ enters as a second operand where the op has one,
// so that the mixed product ∂_λ(v·∇_w) crosses the op.
#include <doctest/doctest.h>

#include <gradhpo/engine/ops.h>

#include "device_test.h"

using namespace gradhpo;
using namespace gradhpo::testing;

namespace {
Var mat(const Var& w, std::int64_t start, const Shape& s) { return slice(w, start, s); }
}  // namespace

TEST_SUITE("device") {

TEST_CASE("add, sub, mul, div: equal shapes, a trailing-shape operand, a scalar operand") {
  compare_on_gpu("binary", [](const Var& w, const Var& lam, Device) {
    const Var a = mat(w, 0, Shape{3, 4}), b = mat(w, 12, Shape{3, 4});
    const Var row = reshape(lam, Shape{4});
    const Var s = sum(lam);
    return concat({reshape(a + b, Shape{12}), reshape(a - row, Shape{12}), reshape(row * a, Shape{12}),
                   reshape(a / (row + 1.0), Shape{12}), reshape(s / (b + 3.0), Shape{12})});
  }, Shape{24}, Shape{4});
}

TEST_CASE("affine maps by constants") {
  compare_on_gpu("affine", [](const Var& w, const Var& lam, Device) { return 3.0 * w - 1.0 + (2.0 - w) * lam; },
                 Shape{10}, Shape{10});
}

TEST_CASE("unary functions and their first and second derivatives") {
  compare_on_gpu("unary", [](const Var& w, const Var& lam, Device) {
    const Var x = w * lam;                   // λ in [0.1, 0.5]: x in (-0.5, 0.5)
    const Var p = affine(x, 0.5, 1.0);       // positive, for log, sqrt, reciprocal
    return concat({exp(x), log(p), tanh(x), sigmoid(x), relu(x), softplus(x), square(x), sqrt(p), reciprocal(p)});
  }, Shape{7}, Shape{7});
}

TEST_CASE("sum and mean: of everything, per axis, and dot") {
  compare_on_gpu("reduce", [](const Var& w, const Var& lam, Device) {
    const Var x = reshape(w, Shape{3, 4, 5});
    return concat({reshape(sum(x), Shape{1}), reshape(mean(x), Shape{1}), reshape(sum(x, 0), Shape{20}),
                   reshape(mean(x, 1), Shape{15}), reshape(sum(x, 2), Shape{12}), reshape(dot(w, lam), Shape{1})});
  }, Shape{60}, Shape{60});
}

TEST_CASE("a row sum longer than one block of threads") {
  compare_on_gpu("long sum", [](const Var& w, const Var&, Device) { return sum(reshape(w, Shape{2, 700}), 1); },
                 Shape{1400}, Shape{1});
}

TEST_CASE("matmul with every transpose, tangents in both operands") {
  compare_on_gpu("matmul", [](const Var& w, const Var& lam, Device) {
    const Var a = mat(w, 0, Shape{3, 4}), b = mat(w, 12, Shape{4, 5});
    const Var at = mat(w, 32, Shape{4, 3}), bt = mat(w, 44, Shape{5, 4});
    const Var l = reshape(lam, Shape{5, 2});
    return concat({reshape(matmul(a, b), Shape{15}), reshape(matmul(at, b, true, false), Shape{15}),
                   reshape(matmul(a, bt, false, true), Shape{15}), reshape(matmul(at, bt, true, true), Shape{15}),
                   reshape(matmul(matmul(a, b), l), Shape{6})});
  }, Shape{64}, Shape{10});
}

TEST_CASE("slice, concat, reshape") {
  compare_on_gpu("shape", [](const Var& w, const Var& lam, Device) {
    return concat({slice(w, 3, Shape{2, 2}), slice(w * lam, 0, Shape{5}), reshape(w, Shape{2, 5})});
  }, Shape{10}, Shape{10});
}

TEST_CASE("log_softmax and cross-entropy with labels") {
  const Tensor labels = Tensor::from_labels({2, 0, 1, 4});
  compare_on_gpu("softmax", [&](const Var& w, const Var& lam, Device d) {
    const Var logits = reshape(w, Shape{4, 5}) * reshape(lam, Shape{5});
    return concat({reshape(log_softmax(logits), Shape{20}), reshape(cross_entropy(logits, labels.to(d)), Shape{1}),
                   cross_entropy_per_example(logits, labels)});
  }, Shape{20}, Shape{5});
}

}  // TEST_SUITE
