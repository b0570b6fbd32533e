// Every primitive, checked in float64 by check_ad (gradient, JVP, HVP, mixed product against
// finite differences; symmetry; K directions; dense Hessian; float32 vs float64).
//
// Each test builds a scalar function of (w, λ) in which the primitive's inputs depend on both,
// and wraps the primitive's output y as  Σ c⊙y + ½ Σ (d⊙y)²  so that its second-order rules
// (the backward rule's own tangent) are exercised, not only its first derivative.
#include "check_ad.h"

#include <gradhpo/engine/ops.h>

using namespace gradhpo;
using namespace gradhpo::testing;

namespace {

// A [rows, cols] piece of w starting at `offset`, scaled elementwise by the λ row (cols = λ size)
// and shifted: x = w_piece ⊙ λ + shift. Depends on both w and λ.
Var mixed_input(const Var& w, const Var& lam, std::int64_t offset, std::int64_t rows, std::int64_t cols,
                double shift = 0.0) {
  return slice(w, offset, Shape{rows, cols}) * lam + shift;
}

const Tensor kW24 = away_from_zero(Shape{24}, 1);
const Tensor kLam4 = random_tensor(Shape{4}, 2, 0.5, 1.5);

}  // namespace

TEST_CASE("add, sub, mul, div: same shapes") {
  for (const char* op : {"add", "sub", "mul", "div"}) {
    check_ad(op, [op](const Var& w, const Var& lam) {
      const Var a = mixed_input(w, lam, 0, 3, 4);
      const Var b = mixed_input(w, lam, 12, 3, 4, 3.0);  // in [2, 4]: safe to divide by
      const std::string o = op;
      return wrap(o == "add" ? a + b : o == "sub" ? a - b : o == "mul" ? a * b : a / b);
    }, kW24, kLam4);
  }
}

TEST_CASE("add, sub, mul, div: broadcasting a bias row and a scalar, on either side") {
  for (const char* op : {"add", "sub", "mul", "div"}) {
    for (int form = 0; form < 3; ++form) {
      check_ad(std::string(op) + " form " + std::to_string(form), [op, form](const Var& w, const Var& lam) {
        const Var a = mixed_input(w, lam, 0, 3, 4, 3.0);
        const Var row = slice(w, 12, Shape{4}) * lam + 3.0;       // [4]
        const Var scalar = sum(slice(w, 16, Shape{4}) * lam) + 5.0;  // []
        const Var small = form == 1 ? scalar : row;
        const std::string o = op;
        auto apply = [&](const Var& x, const Var& y) {
          return o == "add" ? x + y : o == "sub" ? x - y : o == "mul" ? x * y : x / y;
        };
        return wrap(form == 2 ? apply(row, a) : apply(a, small));
      }, kW24, kLam4);
    }
  }
}

TEST_CASE("add, sub, mul, div: a batch of one, [1, C] with a [C] row on either side") {
  // The bias add of a one-example batch: equal sizes that differ by a leading 1.
  for (const char* op : {"add", "sub", "mul", "div"}) {
    check_ad(std::string(op) + " [1, 4] and [4]", [op](const Var& w, const Var& lam) {
      const Var a = mixed_input(w, lam, 0, 1, 4, 3.0);          // [1, 4]
      const Var row = slice(w, 12, Shape{4}) * lam + 3.0;       // [4]
      const std::string o = op;
      auto apply = [&](const Var& x, const Var& y) {
        return o == "add" ? x + y : o == "sub" ? x - y : o == "mul" ? x * y : x / y;
      };
      const Var left = apply(a, row), right = apply(row, a);
      CHECK(left.shape() == Shape{1, 4});
      CHECK(right.shape() == Shape{1, 4});
      return wrap(left) + wrap(right, 21);
    }, kW24, kLam4);
  }
  Tape t;
  const Var col = t.variable(Tensor::zeros(Shape{4, 1}, DType::f64));
  const Var row = t.variable(Tensor::zeros(Shape{4}, DType::f64));
  CHECK_THROWS_AS(add(col, row), Error);  // [4, 1] and [4] are not a leading-1 pair
}

TEST_CASE("affine and the scalar operators") {
  check_ad("x*2.5 - 1, 3 - x, x/4, 2/x", [](const Var& w, const Var& lam) {
    const Var x = mixed_input(w, lam, 0, 3, 4, 3.0);
    return wrap(x * 2.5 - 1.0) + wrap(3.0 - x, 21) + wrap(x / 4.0, 31) + wrap(2.0 / x, 41) + wrap(-x, 51);
  }, kW24, kLam4);
}

TEST_CASE("unary functions") {
  struct Case {
    const char* name;
    Var (*f)(const Var&);
    double shift;  // keeps the argument in the function's domain
  };
  const Case cases[] = {{"exp", exp, 0.0},        {"log", log, 3.0},          {"tanh", tanh, 0.0},
                        {"sigmoid", sigmoid, 0.0}, {"relu", relu, 0.0},       {"softplus", softplus, 0.0},
                        {"square", square, 0.0},  {"sqrt", sqrt, 3.0},        {"reciprocal", reciprocal, 3.0}};
  for (const Case& c : cases)
    check_ad(c.name, [&c](const Var& w, const Var& lam) { return wrap(c.f(mixed_input(w, lam, 0, 6, 4, c.shift))); },
             kW24, kLam4);
}

TEST_CASE("matmul: all four transpose cases") {
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb) {
      check_ad("matmul ta=" + std::to_string(ta) + " tb=" + std::to_string(tb), [ta, tb](const Var& w, const Var& lam) {
        // op(A) is [3, 4], op(B) is [4, 2].
        const Var A = ta ? reshape(mixed_input(w, lam, 0, 3, 4), Shape{4, 3}) : mixed_input(w, lam, 0, 3, 4);
        const Var Bs = slice(w, 12, Shape{2, 4}) * lam;  // [2, 4]
        const Var B = tb ? Bs : reshape(Bs, Shape{4, 2});
        return wrap(matmul(A, B, ta != 0, tb != 0));
      }, kW24, kLam4);
    }
}

TEST_CASE("matmul with a constant (data) operand on either side") {
  const Tensor X = random_tensor(Shape{5, 3}, 9);
  check_ad("X w and w X", [X](const Var& w, const Var& lam) {
    const Var W = reshape(slice(w, 0, Shape{12}), Shape{3, 4}) * lam;
    const Var Y = matmul(X.to(w.dtype()), W);                     // [5, 4]
    const Var Z = matmul(W, X.to(w.dtype()), true, true);          // [4, 5]
    return wrap(Y) + wrap(Z, 5);
  }, kW24, kLam4);
}

TEST_CASE("sum and mean: all elements and per axis") {
  for (int axis = -1; axis < 3; ++axis) {
    check_ad("sum/mean axis " + std::to_string(axis), [axis](const Var& w, const Var& lam) {
      const Var x = reshape(mixed_input(w, lam, 0, 6, 4), Shape{2, 3, 4});
      if (axis < 0) return wrap(sum(x) * sum(x)) + wrap(mean(x) * mean(x), 3);
      return wrap(sum(x, axis)) + wrap(mean(x, axis), 3);
    }, kW24, kLam4);
  }
}

TEST_CASE("reshape, slice and concat") {
  check_ad("concat of slices", [](const Var& w, const Var& lam) {
    const Var a = slice(w, 0, Shape{4}) * lam;
    const Var b = slice(w, 5, Shape{2, 3});
    const Var c = slice(w, 20, Shape{4}) * lam;
    const Var y = concat({a, b, c, a});
    return wrap(reshape(y, Shape{2, 9}) * reshape(y, Shape{2, 9}));
  }, kW24, kLam4);
}

TEST_CASE("dot") {
  check_ad("dot", [](const Var& w, const Var& lam) {
    const Var a = mixed_input(w, lam, 0, 3, 4);
    const Var b = mixed_input(w, lam, 12, 3, 4);
    const Var d = dot(a, b);
    return d + 0.5 * d * d;
  }, kW24, kLam4);
}

TEST_CASE("weighted_l2: ½ Σ λ w² with both operands depending on w and λ") {
  check_ad("weighted_l2", [](const Var& w, const Var& lam) {
    const Var a = mixed_input(w, lam, 0, 3, 4);
    const Var b = mixed_input(w, lam, 12, 3, 4, 1.5);
    const Var y = weighted_l2(a, b);
    return y + 0.5 * y * y;  // ġ ≠ 0: the adjoints' ġ terms are exercised too
  }, kW24, kLam4);
  check_ad("weighted_l2 of a leaf with a leaf λ", [](const Var& w, const Var& lam) {
    return weighted_l2(slice(w, 0, Shape{4}), lam) + weighted_l2(slice(w, 4, Shape{4}), lam * lam);
  }, kW24, kLam4);
}

TEST_CASE("weighted_l2 equals 0.5 * sum(lam * square(w)) in value, gradient and mixed product") {
  const Tensor w = away_from_zero(Shape{50}, 7), lam = random_tensor(Shape{50}, 8, 0.1, 2.0);
  const Tensor v = random_tensor(Shape{2, 50}, 9);
  auto fused = [](const Var& a, const Var& l) { return weighted_l2(a, l) * weighted_l2(a, l); };
  auto composed = [](const Var& a, const Var& l) {
    const Var p = 0.5 * sum(l * square(a));
    return p * p;
  };
  const MixedResult f = mixed_vjp(fused, w, lam, v, true), c = mixed_vjp(composed, w, lam, v, true);
  CHECK(std::abs(f.value - c.value) <= 1e-12 * std::abs(c.value));
  for (const auto& [x, y] : {std::pair{f.grad_w, c.grad_w}, {f.grad_lam, c.grad_lam}, {f.mixed, c.mixed}, {f.hvp, c.hvp}})
    CHECK(rel_error(x.to_vector(), y.to_vector()) <= 1e-12);
}

TEST_CASE("weighted_l2: λ must have one entry per element of w") {
  Tape t;
  CHECK_THROWS_AS(weighted_l2(t.variable(Tensor::zeros(Shape{4}, DType::f64)), t.variable(Tensor::zeros(Shape{3}, DType::f64))),
                  Error);
}

TEST_CASE("log_softmax, pick and cross-entropy (mean and per-example weighted)") {
  const Tensor labels = Tensor::from_labels({1, 3, 0});
  check_ad("log_softmax", [](const Var& w, const Var& lam) { return wrap(log_softmax(mixed_input(w, lam, 0, 3, 4))); },
           kW24, kLam4);
  check_ad("pick", [labels](const Var& w, const Var& lam) { return wrap(pick(mixed_input(w, lam, 0, 3, 4), labels)); },
           kW24, kLam4);
  check_ad("cross_entropy", [labels](const Var& w, const Var& lam) {
    return cross_entropy(mixed_input(w, lam, 0, 3, 4) * 2.0, labels);
  }, kW24, kLam4);
  // Per-example weights as hyperparameters (data hyper-cleaning): L = Σ_i σ(λ_i) ce_i.
  check_ad("weighted per-example cross_entropy", [labels](const Var& w, const Var& lam) {
    const Var ce = cross_entropy_per_example(reshape(slice(w, 0, Shape{12}), Shape{3, 4}) * 2.0, labels);
    return sum(sigmoid(slice(lam, 0, Shape{3})) * ce);
  }, kW24, kLam4);
}

TEST_CASE("slice adjoints: disjoint pieces with gaps, overlaps, repeats and slices of an op's result") {
  // The tape fills a sliced adjoint piece by piece and zeroes only the gaps at the end
  // (Tape::accumulate_range): every pattern of pieces must give the same derivatives.
  check_ad("slices with gaps, an overlap and a repeat", [](const Var& w, const Var& lam) {
    const Var a = slice(w, 2, Shape{4}) * slice(lam, 0, Shape{4});  // gap [0, 2) never read
    const Var b = tanh(slice(w, 10, Shape{4}));                     // gap [6, 10)
    const Var c = slice(w, 4, Shape{4}) * slice(w, 12, Shape{4});   // overlaps both
    const Var d = slice(w, 10, Shape{4});                           // the same piece again
    return wrap(a * b + c + square(d) * slice(lam, 0, Shape{4}));   // [18, 24) never read
  }, kW24, kLam4);
  check_ad("slices of an op's result", [](const Var& w, const Var& lam) {
    const Var y = tanh(w * 0.5);                                        // sliced below, in pieces
    const Var s = slice(y, 0, Shape{4}) * slice(y, 8, Shape{4}) + slice(y, 20, Shape{4});
    return wrap(s * slice(lam, 0, Shape{4}) + square(slice(y, 4, Shape{4})));  // y[12, 20) unread
  }, kW24, kLam4);
}

namespace {
// Matrix products whose operands are slices of w (or of an op's result): their adjoints are
// written straight into the source's adjoint (Tape::adjoint_destination). `plain` puts a
// reshape between each slice and its product, which turns that off; everything else is equal.
Var sliced_products(const Var& w, const Var& lam, bool plain, bool whole_last) {
  auto piece = [plain](const Var& x, std::int64_t at, const Shape& s) {
    const Var p = slice(x, at, s);
    return plain ? reshape(reshape(p, Shape{s.numel()}), s) : p;
  };
  const Var x = reshape(slice(lam, 0, Shape{4}), Shape{2, 2});
  const Var early = sum(square(w)) * 0.1;                      // w used whole, backward runs last
  const Var A = piece(w, 0, Shape{2, 3});                      // [0, 6)
  const Var B = piece(w, 4, Shape{3, 2});                      // [4, 10): overlaps A
  const Var C = piece(w, 12, Shape{2, 3});
  const Var y = tanh(w * 0.5);
  const Var D = piece(y, 18, Shape{3, 2});                     // a slice of an op's result
  Var out = matmul(x, A);                                      // [2, 3]
  out = out + matmul(matmul(A, B), C);                         // A used twice; both operands slices
  out = out + matmul(matmul(C, D), A) * 0.5;                   // D: [3, 2]
  out = out + matmul(matmul(B, A, true, true), C);             // transposed operands
  const Var loss = wrap(out) + wrap(sum(out, 0), 5) + early;
  // w used whole once more, recorded last: its backward runs first, so the slices find w's
  // adjoint already whole and take the copying path.
  return whole_last ? loss + weighted_l2(w, w * 0.0 + 0.3) : loss;
}

// A two-layer network on disjoint, once-used slices of w (how models slice their parameters).
Var sliced_layers(const Var& w, const Var& lam, bool plain) {
  auto piece = [plain](const Var& x, std::int64_t at, const Shape& s) {
    const Var p = slice(x, at, s);
    return plain ? reshape(reshape(p, Shape{s.numel()}), s) : p;
  };
  const Var x = reshape(slice(lam, 0, Shape{4}), Shape{2, 2});
  const Var h = tanh(matmul(x, piece(w, 0, Shape{2, 4})) + piece(w, 8, Shape{4}));
  const Var y = matmul(h, piece(w, 12, Shape{4, 2}), false, false);
  return wrap(y) + weighted_l2(piece(w, 20, Shape{4}), slice(lam, 0, Shape{4}));
}
}  // namespace

TEST_CASE("matmul of slices: adjoints written in place into the sliced tensor's adjoint") {
  const Tensor v1 = random_tensor(Shape{24}, 41), v3 = random_tensor(Shape{3, 24}, 42);
  for (bool whole_last : {false, true}) {
    INFO("w used whole after the slices too: " << whole_last);
    check_ad("products of overlapping, repeated slices of w and of an op's result",
             [whole_last](const Var& w, const Var& lam) { return sliced_products(w, lam, false, whole_last); }, kW24, kLam4);
    // Against the same graph with the in-place path turned off: overlapping and repeated
    // pieces are summed in another order, so equal to rounding.
    for (const Tensor& v : {v1, v3}) {
      auto f = [whole_last](bool plain) {
        return [plain, whole_last](const Var& w, const Var& lam) { return sliced_products(w, lam, plain, whole_last); };
      };
      const MixedResult a = mixed_vjp(f(false), kW24, kLam4, v, true), b = mixed_vjp(f(true), kW24, kLam4, v, true);
      CHECK(std::abs(a.value - b.value) <= 1e-14 * std::abs(b.value));
      for (const auto& [x, y] : {std::pair{a.grad_w, b.grad_w}, {a.grad_lam, b.grad_lam}, {a.hvp, b.hvp}, {a.mixed, b.mixed}})
        CHECK(rel_error(x.to_vector(), y.to_vector()) <= 1e-13);
    }
  }
  // Disjoint pieces each used once (a model's layers): written in place or copied, the same
  // products and the same sums, so the same bits, in every mode and precision.
  check_ad("two layers on disjoint slices", [](const Var& w, const Var& lam) { return sliced_layers(w, lam, false); },
           kW24, kLam4);
  for (const Tensor& v : {v1, v3})
    for (DType dt : {DType::f64, DType::f32}) {
      const Tensor w = kW24.to(dt), lam = kLam4.to(dt), vd = v.to(dt);
      auto f = [](bool plain) { return [plain](const Var& x, const Var& l) { return sliced_layers(x, l, plain); }; };
      const MixedResult a = mixed_vjp(f(false), w, lam, vd, true), b = mixed_vjp(f(true), w, lam, vd, true);
      CHECK(a.value == b.value);
      CHECK(a.grad_w.to_vector() == b.grad_w.to_vector());
      CHECK(a.grad_lam.to_vector() == b.grad_lam.to_vector());
      CHECK(a.hvp.to_vector() == b.hvp.to_vector());
      CHECK(a.mixed.to_vector() == b.mixed.to_vector());
      auto g = [&lam](bool plain) {
        return [plain, &lam](const Var& x) { return sliced_layers(x, x.tape().constant(lam), plain); };
      };
      const HvpResult c = hvp(g(false), w, vd), d = hvp(g(true), w, vd);
      CHECK(c.grad.to_vector() == d.grad.to_vector());
      CHECK(c.hvp.to_vector() == d.hvp.to_vector());
    }
}
