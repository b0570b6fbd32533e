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

TEST_CASE("channel affine, bias, scale and sum on images and on features") {
  compare_on_gpu("channel", [](const Var& w, const Var& lam, Device) {
    const Var x = mat(w, 0, Shape{2, 3, 2, 2}), f = mat(w, 24, Shape{4, 3});
    const Var scale = slice(lam, 0, Shape{3}), shift = slice(w, 36, Shape{3});
    return concat({channel_affine(x, scale, shift), channel_bias(f, shift), channel_scale(x, shift), channel_sum(x),
                   channel_sum(channel_scale(x, scale))});
  }, Shape{39}, Shape{3});
}

TEST_CASE("conv2d: padded, strided, 1x1, with bias, tangents in images and filters") {
  compare_on_gpu("conv2d", [](const Var& w, const Var& lam, Device) {
    const Var x = mat(w, 0, Shape{2, 3, 6, 6});          // 216
    const Var f = mat(w, 216, Shape{4, 3, 3, 3});        // 108
    const Var p = mat(w, 324, Shape{2, 4, 1, 1});        // 8
    const Var bias = reshape(lam, Shape{4});
    const Var y1 = conv2d(x, f, bias, 1, 1);             // [2, 4, 6, 6]
    const Var y2 = conv2d(x, f, 2, 0);                   // [2, 4, 2, 2]
    const Var y3 = conv2d(tanh(y1), p);                  // pointwise: [2, 2, 6, 6]
    return concat({y1, y2, y3});
  }, Shape{332}, Shape{4});
}

TEST_CASE("max pooling (2x2 stride 2, 3x3 stride 2 overlapping), average pooling, global average pooling") {
  compare_on_gpu("pool", [](const Var& w, const Var& lam, Device) {
    const Var x = reshape(w * lam, Shape{2, 2, 7, 7});
    return concat({max_pool2d(x, 2, 2), max_pool2d(x, 3, 2), avg_pool2d(x, 2, 2), avg_pool2d(x, 3, 2),
                   global_avg_pool(x)});
  }, Shape{196}, Shape{196});
}

TEST_CASE("batch norm in training mode (through the batch statistics) and in eval mode") {
  const Tensor running_mean = Tensor::from({0.1, -0.2, 0.3}, Shape{3}, DType::f64);
  const Tensor running_var = Tensor::from({0.5, 1.5, 2.0}, Shape{3}, DType::f64);
  compare_on_gpu("batch norm", [&](const Var& w, const Var& lam, Device d) {
    const Var x = mat(w, 0, Shape{4, 3, 3, 3}), f = mat(w, 108, Shape{5, 3});
    const Var gamma = slice(lam, 0, Shape{3}), beta = slice(w, 123, Shape{3});
    const DType dt = w.dtype();
    return concat({batch_norm_train(x, gamma, beta, 1e-5), batch_norm_train(f, gamma, beta, 1e-5),
                   batch_norm_eval(x, gamma, beta, running_mean.to(dt).to(d), running_var.to(dt).to(d), 1e-5)});
  }, Shape{126}, Shape{3});
}

}  // TEST_SUITE
