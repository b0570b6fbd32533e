// The tape's own contracts: activity pruning, arena reuse without allocation, and the Var
// life cycle.
#include <doctest/doctest.h>

#include "check_ad.h"

#include <array>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <new>

#include <gradhpo/engine/autodiff.h>
#include <gradhpo/engine/kernels/math.h>
#include <gradhpo/engine/storage.h>

using namespace gradhpo;

// Counts every operator new in this test program, to check that the tape allocates nothing per
// op in steady state.
static std::atomic<long> g_allocations{0};
void* operator new(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace {
Tensor filled(const Shape& s, double v, DType dt = DType::f64) { return Tensor::full(s, v, dt); }
}  // namespace

TEST_CASE("a mixed product alone computes no tangents on the network branch") {
  Tape t;
  const Var w = t.variable(Tensor::from({0.5, -0.3, 0.8, 0.1}, Shape{4}, DType::f64));
  const Var lam = t.variable(filled(Shape{4}, 0.1));
  const Var x = t.constant(Tensor::from({1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0}, Shape{2, 4}, DType::f64));
  const Var pre = matmul(x, reshape(w, Shape{4, 1}));
  const Var hidden = tanh(pre);  // the "network": no λ in it
  const Var reg = 0.5 * sum(lam * square(w));
  const Var loss = sum(hidden) + reg;

  Request r;
  r.output = loss;
  r.tangents = {{w, filled(Shape{4}, 1.0)}};
  r.gradients = {w, lam};
  r.adjoint_tangents = {lam};
  t.differentiate(r);
  CHECK_FALSE(t.tangent(hidden).defined());  // pruned: no requested result reads it
  CHECK(t.adjoint(lam).tangent.defined());    // the mixed product
  CHECK_FALSE(t.adjoint(w).tangent.defined()); // H v was not asked for
  CHECK(t.adjoint(x).value.defined() == false); // data never gets an adjoint

  r.adjoint_tangents = {lam, w};  // now H v is wanted: the network's tangents are needed
  t.differentiate(r);
  CHECK(t.tangent(pre).defined());            // tanh's backward reads its input as a dual
  CHECK_FALSE(t.tangent(hidden).defined());   // ...and its output only as a value
  CHECK(t.adjoint(w).tangent.defined());
}

TEST_CASE("a repeated step allocates no new storage once the pool is warm") {
  Tape tape;
  const Tensor w = filled(Shape{64}, 0.01, DType::f32);
  const Tensor v = filled(Shape{64}, 1.0, DType::f32);
  const Tensor x = filled(Shape{16, 8}, 0.5, DType::f32);
  auto f = [&](const Var& W) { return sum(square(relu(matmul(x, reshape(W, Shape{8, 8}))))); };
  for (int i = 0; i < 3; ++i) hvp(tape, f, w, v);  // warm up
  const std::size_t before = pool_stats().heap_allocations;
  for (int i = 0; i < 10; ++i) hvp(tape, f, w, v);
  CHECK(pool_stats().heap_allocations == before);
}

TEST_CASE("blocks over 64 MiB are reused while the cached ones stay under 1 GiB, the newest kept") {
  // Forward mode's K-direction activations are this large and repeat every step: each fresh
  // block would cost a page fault and a page clear per 4 KiB (storage.cpp). The pages are never
  // touched here, so nothing is committed.
  pool_release_cached();
  const std::size_t large = std::size_t{600} << 20;
  const Shape doubles{static_cast<std::int64_t>(large / 8)};
  const std::size_t before = pool_stats().heap_allocations;
  { const Tensor a = Tensor::empty(doubles, DType::f64); }
  CHECK(pool_stats().cached_bytes == large);
  { const Tensor a = Tensor::empty(doubles, DType::f64); }  // the cached one
  CHECK(pool_stats().heap_allocations == before + 1);
  {
    // Two at once: the second would take the cached large blocks past 1 GiB, so it is freed.
    const Tensor a = Tensor::empty(doubles, DType::f64);
    const Tensor b = Tensor::empty(doubles, DType::f64);
    CHECK(pool_stats().heap_allocations == before + 2);
  }
  CHECK(pool_stats().cached_bytes == large);
  // A block of another size freed now is the one the next step will want: it evicts the older.
  const std::size_t other = std::size_t{700} << 20;
  { const Tensor c = Tensor::empty(Shape{static_cast<std::int64_t>(other / 8)}, DType::f64); }
  CHECK(pool_stats().cached_bytes == other);
  { const Tensor c = Tensor::empty(Shape{static_cast<std::int64_t>(other / 8)}, DType::f64); }  // reused
  CHECK(pool_stats().heap_allocations == before + 3);
  pool_release_cached();
  CHECK(pool_stats().cached_bytes == 0);
}

TEST_CASE("heap allocations per differentiation do not grow with the number of ops") {
  // A chain of `depth` ops: once warm, an HVP through it allocates the same (small) number of
  // times whatever the depth — the per-call bookkeeping, never per op.
  auto allocations_per_call = [](int depth) {
    Tape tape;
    const Tensor w = Tensor::full(Shape{32}, 0.1, DType::f64);
    const Tensor v = Tensor::full(Shape{32}, 1.0, DType::f64);
    auto f = [depth](const Var& W) {
      Var h = W;
      for (int i = 0; i < depth; ++i) h = tanh(h * 1.1 + 0.1);
      return sum(square(h));
    };
    for (int i = 0; i < 3; ++i) hvp(tape, f, w, v);
    const long before = g_allocations.load();
    for (int i = 0; i < 5; ++i) hvp(tape, f, w, v);
    return (g_allocations.load() - before) / 5;
  };
  const long shallow = allocations_per_call(4), deep = allocations_per_call(40);
  INFO("allocations per call: depth 4 -> " << shallow << ", depth 40 -> " << deep);
  CHECK(deep == shallow);
}

TEST_CASE("bad input gets a clear error") {
  Tape t;
  const Var a = t.variable(filled(Shape{2, 3}, 1.0));
  const Var b = t.variable(filled(Shape{4, 5}, 1.0));
  const Var f32 = t.variable(filled(Shape{2, 3}, 1.0, DType::f32));

  auto message = [](auto&& f) {
    try {
      f();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  SUBCASE("mismatched shapes name the op and both shapes") {
    const std::string m = message([&] { add(a, b); });
    CHECK(m.find("add") != std::string::npos);
    CHECK(m.find("[2, 3]") != std::string::npos);
    CHECK(m.find("[4, 5]") != std::string::npos);
    CHECK(message([&] { matmul(a, a); }).find("inner dimensions") != std::string::npos);
    CHECK(message([&] { dot(a, b); }).find("dot") != std::string::npos);
  }
  SUBCASE("mixed dtypes") {
    CHECK(message([&] { mul(a, f32); }).find("mixed dtypes float64 and float32") != std::string::npos);
  }
  SUBCASE("a Var from a tape that has been reset") {
    const Var old = t.variable(filled(Shape{2}, 1.0));
    t.reset();
    CHECK(message([&] { exp(old); }).find("reset") != std::string::npos);
  }
  SUBCASE("operands from different tapes") {
    Tape other;
    const Var c = other.variable(filled(Shape{2, 3}, 1.0));
    CHECK(message([&] { add(a, c); }).find("different tapes") != std::string::npos);
  }
  SUBCASE("a non-scalar where a scalar loss is needed") {
    const std::string m = message([&] { grad([](const Var& w) { return exp(w); }, filled(Shape{3}, 1.0)); });
    CHECK(m.find("scalar") != std::string::npos);
    CHECK(m.find("[3]") != std::string::npos);
  }
  SUBCASE("tangent directions that disagree on K or on size") {
    const Var w = t.variable(filled(Shape{3}, 1.0));
    const Var l = t.variable(filled(Shape{3}, 1.0));
    Request r;
    r.output = sum(w * l);
    r.tangents = {{w, filled(Shape{2, 3}, 1.0)}, {l, filled(Shape{4, 3}, 1.0)}};
    CHECK(message([&] { t.differentiate(r); }).find("K = 2 and K = 4") != std::string::npos);
    CHECK(message([&] { hvp([](const Var& x) { return sum(x); }, filled(Shape{3}, 1.0), filled(Shape{4}, 1.0)); })
              .find("direction of shape [4]") != std::string::npos);
  }
  SUBCASE("labels out of range") {
    const Var z = t.variable(filled(Shape{2, 3}, 0.0));
    CHECK(message([&] { cross_entropy(z, Tensor::from_labels({0, 3})); }).find("label 3 at row 1") != std::string::npos);
  }
}

TEST_CASE("value, gradient and tangent of a K = 0 (plain) recording match direct arithmetic") {
  // f(w) = Σ exp(w) at w = (0, 1): value e^0 + e^1, gradient (e^0, e^1), J v = Σ e^w v.
  const Tensor w = Tensor::from({0.0, 1.0}, Shape{2}, DType::f64);
  const ValueAndGrad vg = value_and_grad([](const Var& x) { return sum(exp(x)); }, w);
  CHECK(vg.value == doctest::Approx(1.0 + std::exp(1.0)).epsilon(1e-15));
  CHECK(vg.grad.at(1) == doctest::Approx(std::exp(1.0)).epsilon(1e-15));
  const JvpResult j = jvp([](const Var& x) { return sum(exp(x)); }, w, Tensor::from({2.0, -1.0}, Shape{2}, DType::f64));
  CHECK(j.tangent.item() == doctest::Approx(2.0 - std::exp(1.0)).epsilon(1e-15));
}

TEST_CASE("plain mode: the same values, only live intermediates kept, and clear errors") {
  const Tensor w = Tensor::full(Shape{1 << 14}, 0.3, DType::f64);
  auto f = [](const Var& W) {
    Var h = W;
    for (int i = 0; i < 30; ++i) h = tanh(h * 1.01 + 0.01);
    return sum(h);
  };
  Tape recorded;
  const double v_rec = f(recorded.variable(w)).item();

  Tape plain;
  plain.set_recording(false);
  pool_reset_peak();
  const std::size_t live_before = pool_stats().live_bytes;
  const double v_plain = f(plain.variable(w)).item();
  const std::size_t peak = pool_stats().peak_live_bytes - live_before;
  CHECK(v_plain == v_rec);
  CHECK(plain.size() == 0);
  // A 30-op chain over 128 KiB tensors: recording keeps ~60 of them, plain mode a handful.
  CHECK(peak <= 4 * w.nbytes());

  const Var p = plain.variable(w);
  Request r;
  r.output = sum(p);
  CHECK_THROWS_WITH_AS(plain.differentiate(r), doctest::Contains("plain mode"), Error);
  plain.set_recording(true);
  CHECK_THROWS_WITH_AS(exp(p), doctest::Contains("plain mode"), Error);
}

TEST_CASE("a direction shaped like a 2-D w is one direction (K = 1), as autodiff.h documents") {
  const Tensor w = Tensor::from({0.5, -0.25, 1.0, 0.75, -1.5, 0.125}, Shape{2, 3}, DType::f64);
  const Tensor v = Tensor::from({1.0, 2.0, -0.5, 0.25, -1.0, 3.0}, Shape{2, 3}, DType::f64);
  auto f = [](const Var& x) { return sum(exp(x) * x); };
  auto flat = [&f](const Var& x) { return f(reshape(x, Shape{2, 3})); };
  const Tensor w1 = w.reshape(Shape{6}), v1 = v.reshape(Shape{6});
  const HvpResult h = hvp(f, w, v);
  CHECK(h.hvp.shape() == Shape{2, 3});
  CHECK(h.hvp.to_vector() == hvp(flat, w1, v1).hvp.to_vector());
  const JvpResult j = jvp(f, w, v);
  CHECK(j.tangent.to_vector() == jvp(flat, w1, v1).tangent.to_vector());
  const Tensor lam = Tensor::full(Shape{1}, 0.5, DType::f64);
  const MixedResult m = mixed_vjp([](const Var& x, const Var& l) { return sum(exp(x) * x) * sum(l); }, w, lam, v, true);
  CHECK(m.hvp.shape() == Shape{2, 3});
}

TEST_CASE("an add's shared adjoint: summed right where reused, and every returned adjoint owns its storage") {
  // The tape keeps an add's ḡ shared between its inputs' adjoints instead of copying it
  // (Tape::accumulate); a later contribution must not be added into the shared storage in place.
  Tape t;
  const Var a = t.variable(Tensor::from({1.0, 2.0, 3.0}, Shape{3}, DType::f64));
  const Var b = t.variable(Tensor::from({-1.0, 0.5, 2.0}, Shape{3}, DType::f64));
  const Var h = tanh(a);
  const Var y = (h + b) + (h + a);  // h gets ḡ twice, a twice (once through h), b once
  Request r;
  r.output = y;
  r.output_adjoint = Tensor::from({1.0, 2.0, 3.0}, Shape{3}, DType::f64);
  r.gradients = {a, b};
  t.differentiate(r);
  const std::vector<double> g = {1.0, 2.0, 3.0};
  std::array<double, 3> want_a{};
  for (std::size_t i = 0; i < 3; ++i) {
    const double th = std::tanh(static_cast<double>(i + 1));  // a = 1, 2, 3
    want_a[i] = g[i] * (1.0 + 2.0 * (1.0 - th * th));
  }
  auto close = [&](const std::vector<double>& got) {
    bool ok = got.size() == want_a.size();
    for (std::size_t i = 0; ok && i < got.size(); ++i) ok = std::fabs(got[i] - want_a[i]) <= 1e-14 * std::fabs(want_a[i]);
    return ok;
  };
  CHECK(close(t.adjoint(a).value.to_vector()));
  CHECK(t.adjoint(b).value.to_vector() == g);
  Tensor gb = t.adjoint(b).value;
  gb.fill(0.0);  // a caller updating one gradient in place leaves the others alone
  CHECK(close(t.adjoint(a).value.to_vector()));
  CHECK(r.output_adjoint.to_vector() == g);

  // a + b alone: both leaves' adjoints are the one ḡ until differentiate hands them out.
  r.output = a + b;
  t.differentiate(r);
  Tensor ga = t.adjoint(a).value;
  ga.fill(0.0);
  CHECK(t.adjoint(b).value.to_vector() == g);
  CHECK(r.output_adjoint.to_vector() == g);
}

TEST_CASE("output_adjoints: the VJP of several results equals that of their concatenation, bit for bit") {
  // An SGD-like step of two results, v' = 0.9 v + g and w' = w − 0.1 v' (v' also feeds w'), and a
  // result given twice, whose seeds add.
  const Tensor w0 = Tensor::from({1.0, -2.0, 0.5}, Shape{3}, DType::f64);
  const Tensor v0 = Tensor::from({0.25, 3.0, -1.5}, Shape{3}, DType::f64);
  const Tensor g0 = Tensor::from({-0.75, 0.125, 2.0}, Shape{3}, DType::f64);
  const Tensor sw = Tensor::from({0.3, -0.7, 1.1}, Shape{3}, DType::f64), sv = Tensor::from({2.0, 0.1, -0.4}, Shape{3}, DType::f64);
  struct Step {
    Tape t;
    Var w, v, g, w1, v1;
  };
  auto record = [&](Step& s) {
    s.w = s.t.variable(w0), s.v = s.t.variable(v0), s.g = s.t.variable(g0);
    s.v1 = 0.9 * s.v + tanh(s.g) * s.w;
    s.w1 = s.w - 0.1 * s.v1;
  };
  Step a, b, c;
  record(a);
  Request ra;
  ra.output = concat({a.w1, a.v1});
  ra.output_adjoint = concat({a.t.constant(sw), a.t.constant(sv)}).value();
  ra.gradients = {a.w, a.v, a.g};
  a.t.differentiate(ra);
  record(b);
  Request rb;
  rb.output_adjoints = {{b.w1, sw}, {b.v1, sv}};
  rb.gradients = {b.w, b.v, b.g};
  b.t.differentiate(rb);
  for (const auto& [x, y] : {std::pair{a.w, b.w}, std::pair{a.v, b.v}, std::pair{a.g, b.g}})
    CHECK(a.t.adjoint(x).value.to_vector() == b.t.adjoint(y).value.to_vector());
  CHECK(rb.output_adjoints[1].second.to_vector() == sv.to_vector());  // the caller's seed is not added into
  // v' named twice: its seeds add (sv + sv), as the concatenation's adjoint would.
  record(c);
  Request rc;
  rc.output_adjoints = {{c.v1, sv}, {c.w1, sw}, {c.v1, sv}};
  rc.gradients = {c.g};
  c.t.differentiate(rc);
  const std::vector<double> got = c.t.adjoint(c.g).value.to_vector();
  for (std::size_t i = 0; i < 3; ++i) {
    const double th = std::tanh(g0.to_vector()[i]);
    const double want = (1 - th * th) * w0.to_vector()[i] * (2 * sv.to_vector()[i] - 0.1 * sw.to_vector()[i]);
    CHECK(std::fabs(got[i] - want) <= 1e-15 * std::fabs(want));
  }
  Request both;  // an output and output_adjoints: refused
  both.output = c.w1;
  both.output_adjoints.emplace_back(c.v1, sv);
  CHECK_THROWS_AS(c.t.differentiate(both), Error);
}

TEST_CASE("H·v without the gradient: the weights' value products are skipped, H·v keeps its bits, the value is undefined") {
  using testing::random_tensor;
  // A two-layer model on a flat w (the weights are slices of it, as nn/ lays them out), with
  // the gradient asked for or not: H·v must not change by a bit.
  const Tensor x = random_tensor(Shape{6, 4}, 7);
  const Tensor w0 = random_tensor(Shape{4 * 3 + 3 * 2}, 8);
  const Tensor v = random_tensor(Shape{4 * 3 + 3 * 2}, 9);
  auto run = [&](bool want_grad) {
    Tape t;
    const Var w = t.variable(w0);
    const Var W1 = slice(w, 0, Shape{4, 3}), W2 = slice(w, 12, Shape{3, 2});
    const Var X = t.constant(x);
    const Var loss = sum(tanh(matmul(tanh(matmul(X, W1)), W2)));
    Request r;
    r.output = loss;
    r.tangents = {{w, v}};
    if (want_grad) r.gradients = {w};
    r.adjoint_tangents = {w};
    t.differentiate(r);
    return t.adjoint(w);
  };
  const Dual with = run(true), without = run(false);
  REQUIRE(with.value.defined());
  CHECK_FALSE(without.value.defined());
  CHECK(with.tangent.to_vector() == without.tangent.to_vector());
  // And H·v is H·v: central differences of the gradient along v.
  auto grad_at = [&](double eps) {
    Tensor we = w0.clone();
    kernels::axpy(we, v, eps);
    Tape t;
    const Var w = t.variable(we);
    const Var loss = sum(tanh(matmul(tanh(matmul(t.constant(x), slice(w, 0, Shape{4, 3}))), slice(w, 12, Shape{3, 2}))));
    Request r;
    r.output = loss;
    r.gradients = {w};
    t.differentiate(r);
    return t.adjoint(w).value.to_vector();
  };
  CHECK(with.value.to_vector() == grad_at(0.0));  // asked for, the gradient is still whole
  const std::vector<double> up = grad_at(1e-6), down = grad_at(-1e-6), hv = without.tangent.to_vector();
  for (std::size_t i = 0; i < hv.size(); ++i) CHECK(std::fabs(hv[i] - (up[i] - down[i]) / 2e-6) <= 1e-7 * (1 + std::fabs(hv[i])));
}

TEST_CASE("a node's payload is read as its op family's struct, and only as that") {
  Tape t;
  const Var x = t.variable(filled(Shape{6}, 1.0));
  const Var y = slice(x, 2, Shape{3});
  const Var z = matmul(reshape(y, Shape{1, 3}), reshape(y, Shape{1, 3}), false, true);
  CHECK(t.node(y).payload_as<SlicePayload>().start == 2);
  CHECK(t.node(z).payload_as<MatmulPayload>().trans_b);
  CHECK_FALSE(t.node(z).payload_as<MatmulPayload>().trans_a);
  CHECK_THROWS_AS(t.node(y).payload_as<ConvPayload>(), Error);  // another family's fields
  CHECK_THROWS_AS(t.node(x).payload_as<SlicePayload>(), Error);  // a leaf keeps none
}
