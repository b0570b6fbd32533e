// The whole-vector CPU kernels (engine/kernels/vector.h): dot, first_non_finite, max_abs, clamp,
// lerp, sgd_update and adam_update, each against its documented formula written here again as a
// plain loop in double (for the optimizer steps the formulas of optim_element.h: SGD with
// momentum and weight decay, Adam in its L2 and decoupled forms with ε outside or inside the
// square root and its bias corrections, each with and without a decay mask). In float64 and
// float32, on sizes that end part way through a SIMD packet and on 100003 elements, on one and two
// OpenMP threads, which must give the same bits (the loops are serial today; this holds any
// parallel version to the same results, and dot to its index order). Operands of another numel or
// dtype are refused with a message naming the operation and both shapes.
#include "check_ad.h"

#include <gradhpo/engine/kernels/optim_element.h>
#include <gradhpo/engine/kernels/optim_step.h>
#include <gradhpo/engine/kernels/vector.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>


using namespace gradhpo;
using namespace gradhpo::kernels;
using namespace gradhpo::testing;

namespace {

// Not multiples of 4, 8 or 16 lanes (0 aside), the 1024-element blocks of first_non_finite's
// search and their edges, and one size large enough to be worth threads.
constexpr std::int64_t kSizes[] = {0, 1, 3, 7, 17, 1023, 1025, 100003};
constexpr std::int64_t kLarge = 100003;
constexpr DType kTypes[] = {DType::f64, DType::f32};

bool same_bits(const Tensor& a, const Tensor& b) {
  if (a.numel() != b.numel() || a.dtype() != b.dtype()) return false;
  return a.nbytes() == 0 || std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

std::vector<double> minus(const std::vector<double>& a, const std::vector<double>& b) {
  std::vector<double> d(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) d[i] = a[i] - b[i];
  return d;
}

template <class F> void check_error(F&& f, const std::vector<std::string>& parts) {
  const std::string what = error_message(f);
  for (const std::string& p : parts) CHECK_MESSAGE(what.find(p) != std::string::npos, "'" << what << "' lacks '" << p << "'");
}

// Gradients of every magnitude from 1 down to 1e-4, with exact zeros: Adam's √v̂ then ranges
// from far above ε to far below it (and to 0), where ε's place matters.
Tensor graded(std::int64_t n, std::uint64_t seed, DType dt) {
  std::vector<double> g = random_tensor(Shape{n}, seed).to_vector();
  for (std::size_t i = 0; i < g.size(); ++i) g[i] = i % 97 == 0 ? 0.0 : g[i] * std::pow(10.0, -static_cast<double>(i % 5));
  return Tensor::from(g, Shape{n}, dt);
}

// x rounded to the element type: the kernels round every hyperparameter so (vector.h), and the
// references below start from the same values (a float32 β₂ = 0.999 has 1 − β₂ off by 1e-5).
double rounded(double x, DType dt) { return Tensor::scalar(x, dt).item(); }

// A weight-decay mask of 0, 1 and 1/4 (exact in both dtypes).
Tensor decay_mask(std::int64_t n, DType dt) {
  std::vector<double> m(static_cast<std::size_t>(n));
  for (std::size_t i = 0; i < m.size(); ++i) m[i] = i % 3 == 0 ? 0.0 : (i % 3 == 1 ? 1.0 : 0.25);
  return Tensor::from(m, Shape{n}, dt);
}

}  // namespace

// ---- dot ---------------------------------------------------------------------------------------

TEST_CASE("vector kernels: dot is the double sum of products in index order, on 1 and 2 threads") {
  for (DType dt : kTypes)
    for (std::int64_t n : kSizes) {
      INFO(std::string(dtype_name(dt)) << ", " << n << " elements");
      const Tensor x = random_tensor(Shape{n}, 1, -1, 1, dt), y = random_tensor(Shape{n}, 2, -1, 1, dt);
      const std::vector<double> a = x.to_vector(), b = y.to_vector();
      double want = 0, scale = 0;
      for (std::size_t i = 0; i < a.size(); ++i) {
        want += a[i] * b[i];
        scale += std::abs(a[i] * b[i]);
      }
      double got[2] = {0, 0};
      for (int threads : {1, 2}) with_threads(threads, [&] { got[threads - 1] = dot(x, y); });
      CHECK(std::memcmp(&got[0], &got[1], sizeof(double)) == 0);
      if (dt == DType::f32) {
        // A product of two floats is exact in double, so only the order of the sum could differ.
        CHECK(got[0] == want);
      } else {
        // Either loop may fuse its multiply-add (-march=native), so not bit for bit.
        CHECK(std::abs(got[0] - want) <= 1e-15 * scale);
      }
    }
  // Order shows: in index order 1e30 absorbs the first 1 and cancels, leaving the last 1 (a
  // pairwise or reversed sum gives 0). In float32 the products are exact, the sum in double.
  for (DType dt : kTypes) {
    const Tensor x = Tensor::from({1e30, 1, -1e30, 1}, Shape{4}, dt), ones = Tensor::full(Shape{4}, 1.0, dt);
    CHECK(dot(x, ones) == 1.0);
  }
  // Accumulated in double, not the element type: 2^-30 survives next to 1 in a float32 dot.
  const Tensor u = Tensor::from({1.0, std::ldexp(1.0, -30)}, Shape{2}, DType::f32);
  CHECK(dot(u, Tensor::full(Shape{2}, 1.0, DType::f32)) == 1.0 + std::ldexp(1.0, -30));
}

// ---- first_non_finite ----------------------------------------------------------------------------

TEST_CASE("vector kernels: first_non_finite finds the first NaN or ±inf of 100003 elements, on 1 and 2 threads") {
  const std::int64_t n = kLarge;
  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  for (DType dt : kTypes) {
    INFO(std::string(dtype_name(dt)));
    // Finite, including the extremes: ±max, the smallest subnormal, −0.
    std::vector<double> x = random_tensor(Shape{n}, 3, -1e3, 1e3).to_vector();
    const bool f32 = dt == DType::f32;
    const double huge = f32 ? std::numeric_limits<float>::max() : std::numeric_limits<double>::max();
    const double tiny = f32 ? std::numeric_limits<float>::denorm_min() : std::numeric_limits<double>::denorm_min();
    x[0] = -huge;
    x[n / 2] = huge;
    x[n - 1] = tiny;
    x[1] = -0.0;
    for (int threads : {1, 2})
      with_threads(threads, [&] { CHECK(first_non_finite(Tensor::from(x, Shape{n}, dt)) == -1); });

    // One bad value at `at` (the first, edges of the 1024-element blocks, either side of the middle
    // where two threads would split, the last), with later bad values behind it in other blocks and
    // in the other half.
    for (std::int64_t at : {std::int64_t{0}, std::int64_t{1}, std::int64_t{1023}, std::int64_t{1024}, n / 2 - 1, n / 2,
                            n / 2 + 1, n - 2, n - 1})
      for (double bad : {inf, -inf, nan}) {
        INFO("bad value " << bad << " at " << at);
        std::vector<double> y = x;
        y[static_cast<std::size_t>(at)] = bad;
        for (std::int64_t later : {at + 1, at + 1500, at + n / 2 + 3, n - 1})
          if (later > at && later < n) y[static_cast<std::size_t>(later)] = later % 2 ? nan : -inf;
        const Tensor t = Tensor::from(y, Shape{n}, dt);
        for (int threads : {1, 2}) with_threads(threads, [&] { CHECK(first_non_finite(t) == at); });
      }
  }
  for (DType dt : kTypes) CHECK(first_non_finite(Tensor::zeros(Shape{0}, dt)) == -1);
}

// ---- max_abs -------------------------------------------------------------------------------------

TEST_CASE("vector kernels: max_abs is the largest magnitude, also a negative one or one in the tail, and 0 when empty") {
  for (DType dt : kTypes)
    for (std::int64_t n : kSizes) {
      INFO(std::string(dtype_name(dt)) << ", " << n << " elements");
      std::vector<double> x = random_tensor(Shape{n}, 4, -2, 1, dt).to_vector();
      auto reference = [](const std::vector<double>& v) {
        double m = 0;
        for (double e : v) m = std::max(m, std::abs(e));
        return m;
      };
      double got[2] = {0, 0};
      const Tensor t = Tensor::from(x, Shape{n}, dt);
      for (int threads : {1, 2}) with_threads(threads, [&] { got[threads - 1] = max_abs(t); });
      CHECK(got[0] == reference(x));
      CHECK(std::memcmp(&got[0], &got[1], sizeof(double)) == 0);
      // The largest magnitude, negative, first, in the middle or last (in the partial SIMD tail).
      for (std::int64_t at : {std::int64_t{0}, n / 2, n - 1}) {
        if (n == 0) break;
        std::vector<double> y = x;
        y[static_cast<std::size_t>(at)] = -7.5;
        CHECK(max_abs(Tensor::from(y, Shape{n}, dt)) == 7.5);
      }
    }
  for (DType dt : kTypes) {
    CHECK(max_abs(Tensor::zeros(Shape{0}, dt)) == 0);
    CHECK(max_abs(Tensor::from({-0.0, 0.0, -0.0}, Shape{3}, dt)) == 0);
    CHECK(max_abs(Tensor::from({-1.0, -std::numeric_limits<double>::infinity(), 2.0}, Shape{3}, dt)) ==
          std::numeric_limits<double>::infinity());
    const double huge = dt == DType::f32 ? std::numeric_limits<float>::max() : std::numeric_limits<double>::max();
    CHECK(max_abs(Tensor::from({1.0, -huge, 2.0}, Shape{3}, dt)) == huge);
  }
}

// ---- clamp ---------------------------------------------------------------------------------------

TEST_CASE("vector kernels: clamp is min(max(x, lo), hi) in place, also on a view, on 1 and 2 threads") {
  const double lo = -0.3, hi = 0.7;  // not representable: rounded to the element type
  for (DType dt : kTypes)
    for (std::int64_t n : kSizes) {
      INFO(std::string(dtype_name(dt)) << ", " << n << " elements");
      std::vector<double> x = random_tensor(Shape{n}, 5, -2, 2, dt).to_vector();
      if (n >= 3) {  // the bounds themselves stay
        x[0] = Tensor::scalar(lo, dt).item();
        x[static_cast<std::size_t>(n - 1)] = Tensor::scalar(hi, dt).item();
        x[static_cast<std::size_t>(n / 2)] = -0.0;
      }
      std::vector<double> want(x.size());
      for (std::size_t i = 0; i < x.size(); ++i) want[i] = std::min(std::max(x[i], lo), hi);
      const Tensor expected = Tensor::from(want, Shape{n}, dt);  // rounded once to the dtype
      Tensor first;
      for (int threads : {1, 2}) {
        Tensor c = Tensor::from(x, Shape{n}, dt);
        const void* storage = n ? c.raw() : nullptr;
        with_threads(threads, [&] { clamp(c, lo, hi); });
        if (n) CHECK(c.raw() == storage);  // in place
        CHECK(same_bits(c, expected));
        if (threads == 1) first = c;
        else CHECK(same_bits(c, first));
      }
    }
  // On a view: elements [1000, 2001) of 3000 change, the rest not.
  for (DType dt : kTypes) {
    const Tensor original = random_tensor(Shape{3000}, 6, -2, 2, dt);
    Tensor big = original.clone();
    Tensor view = big.flat_slice(1000, 1001);
    clamp(view, lo, hi);
    const std::vector<double> before = original.to_vector(), after = big.to_vector();
    const double l = Tensor::scalar(lo, dt).item(), h = Tensor::scalar(hi, dt).item();
    bool ok = true;
    for (std::size_t i = 0; i < before.size(); ++i)
      ok = ok && after[i] == (i >= 1000 && i < 2001 ? std::min(std::max(before[i], l), h) : before[i]);
    CHECK(ok);
    // lo = hi: every element becomes it.
    Tensor c = original.clone();
    clamp(c, 0.25, 0.25);
    CHECK(max_abs(c) == 0.25);
    CHECK(dot(c, Tensor::full(Shape{3000}, 1.0, dt)) == 750.0);
  }
}

// ---- lerp ----------------------------------------------------------------------------------------

TEST_CASE("vector kernels: lerp is (1 - m) acc + m x computed in double and rounded once, on 1 and 2 threads") {
  for (DType dt : kTypes)
    for (std::int64_t n : kSizes)
      for (double m : {0.1, 0.37, 0.0, 1.0}) {
        INFO(std::string(dtype_name(dt)) << ", " << n << " elements, m = " << m);
        const Tensor acc0 = random_tensor(Shape{n}, 7, -3, 3, dt), x = random_tensor(Shape{n}, 8, -1, 1, dt);
        const std::vector<double> a = acc0.to_vector(), b = x.to_vector();
        std::vector<double> want(a.size());
        for (std::size_t i = 0; i < a.size(); ++i) want[i] = (1 - m) * a[i] + m * b[i];
        Tensor first;
        for (int threads : {1, 2}) {
          Tensor acc = acc0.clone();
          with_threads(threads, [&] { lerp(acc, x, m); });
          if (m == 0.0) CHECK(same_bits(acc, acc0));
          if (m == 1.0) CHECK(same_bits(acc, x));
          if (dt == DType::f32) {
            // One rounding of the double value; float arithmetic would be off in many elements.
            CHECK(same_bits(acc, Tensor::from(want, Shape{n}, dt)));
          } else {
            CHECK(rel_error(acc.to_vector(), want) <= 1e-15);
          }
          if (threads == 1) first = acc;
          else CHECK(same_bits(acc, first));
        }
      }
}

// ---- sgd_update ----------------------------------------------------------------------------------

namespace {

struct SgdState {
  std::vector<double> w, v;
};

// optim_element.h's sgd in double: d = g + μ_i w;  v ← β v + d;  w ← w − α v, with μ_i = μ mask_i.
SgdState sgd_reference(SgdState s, const std::vector<double>& g, const std::vector<double>* mask, const SgdUpdate& h) {
  for (std::size_t i = 0; i < g.size(); ++i) {
    const double mu = h.weight_decay * (mask ? (*mask)[i] : 1.0);
    const double d = g[i] + mu * s.w[i];
    s.v[i] = h.momentum * s.v[i] + d;
    s.w[i] = s.w[i] - h.lr * s.v[i];
  }
  return s;
}

}  // namespace

TEST_CASE("vector kernels: sgd_update is SGD with momentum and (masked) weight decay, on 1 and 2 threads") {
  for (DType dt : kTypes)
    for (std::int64_t n : kSizes)
      for (double momentum : {0.0, 0.9})
        for (double wd : {0.0, 0.1})
          for (bool masked : {false, true}) {
            INFO(std::string(dtype_name(dt)) << ", " << n << " elements, momentum " << momentum << ", weight decay " << wd
                                << std::string(masked ? ", masked" : ""));
            const SgdUpdate h{0.05, momentum, wd};
            const Tensor w0 = random_tensor(Shape{n}, 9, -1, 1, dt), v0 = random_tensor(Shape{n}, 10, -1, 1, dt);
            const Tensor g = graded(n, 11, dt), mask = masked ? decay_mask(n, dt) : Tensor();
            const std::vector<double> mv = masked ? mask.to_vector() : std::vector<double>{};
            const SgdUpdate hr{rounded(h.lr, dt), rounded(h.momentum, dt), rounded(h.weight_decay, dt)};
            const SgdState want = sgd_reference({w0.to_vector(), v0.to_vector()}, g.to_vector(), masked ? &mv : nullptr, hr);
            // float32: w − α v rounds to the ulp of w, large beside the smallest steps (α g, g ~ 1e-4).
            const double tol = dt == DType::f64 ? 1e-14 : 5e-5;
            Tensor first_w, first_v;
            for (int threads : {1, 2}) {
              Tensor w = w0.clone(), v = v0.clone();
              with_threads(threads, [&] { sgd_update(w, v, g, mask, h); });
              // The step itself, not w: a wrong weight-decay term is small beside w.
              CHECK(rel_error(minus(w.to_vector(), w0.to_vector()), minus(want.w, w0.to_vector())) <= tol);
              CHECK(rel_error(v.to_vector(), want.v) <= tol);
              if (threads == 1) {
                first_w = w;
                first_v = v;
              } else {
                CHECK(same_bits(w, first_w));
                CHECK(same_bits(v, first_v));
              }
            }
          }
}

// ---- adam_update ---------------------------------------------------------------------------------

namespace {

struct AdamState {
  std::vector<double> w, m, v;
};

// optim_element.h's adam in double, from its comment:
//   L2 form:  d = g + μ_i w            AdamW:  w ← w (1 − α μ_i),  d = g
//   m ← β₁ m + (1 − β₁) d;   v ← β₂ v + (1 − β₂) d²
//   w ← w − (α / bc1) · m / (√v / √bc2 + ε)      or, ε inside:   w ← w − (α / bc1) · m / √(v / bc2 + ε²)
AdamState adam_reference(AdamState s, const std::vector<double>& g, const std::vector<double>* mask, const AdamUpdate& h) {
  const double bc2 = h.sqrt_bc2 * h.sqrt_bc2;
  for (std::size_t i = 0; i < g.size(); ++i) {
    const double mu = h.weight_decay * (mask ? (*mask)[i] : 1.0);
    double d = g[i];
    if (h.decoupled) s.w[i] *= 1 - h.lr * mu;
    else d += mu * s.w[i];
    s.m[i] = h.beta1 * s.m[i] + (1 - h.beta1) * d;
    s.v[i] = h.beta2 * s.v[i] + (1 - h.beta2) * d * d;
    const double denom = h.eps_inside_sqrt ? std::sqrt(s.v[i] / bc2 + h.eps * h.eps) : std::sqrt(s.v[i]) / h.sqrt_bc2 + h.eps;
    s.w[i] -= h.lr / h.bc1 * s.m[i] / denom;
  }
  return s;
}

}  // namespace

TEST_CASE("vector kernels: adam_update is Adam or AdamW, ε outside or inside the root, (masked) decay, on 1 and 2 threads") {
  for (DType dt : kTypes)
    for (std::int64_t n : kSizes) {
      const Tensor w0 = random_tensor(Shape{n}, 12, -1, 1, dt), m0 = random_tensor(Shape{n}, 13, -0.1, 0.1, dt);
      std::vector<double> vv = random_tensor(Shape{n}, 14, 0, 1e-4).to_vector();
      std::vector<double> mm = m0.to_vector();
      for (std::size_t i = 0; i < vv.size(); i += 194) vv[i] = mm[i] = 0;  // a parameter never moved (g = 0 there too)
      const Tensor v0 = Tensor::from(vv, Shape{n}, dt), m0z = Tensor::from(mm, Shape{n}, dt);
      const Tensor g = graded(n, 15, dt), mask_t = decay_mask(n, dt);
      const std::vector<double> mask = mask_t.to_vector(), w0v = w0.to_vector(), gv = g.to_vector();
      for (std::int64_t t : {1, 7})
        for (bool decoupled : {false, true})
          for (bool inside : {false, true})
            for (double wd : {0.0, 0.1})
              for (bool masked : {false, true}) {
                INFO(std::string(dtype_name(dt)) << ", " << n << " elements, step " << t
                                                 << std::string(decoupled ? ", AdamW" : ", L2")
                                                 << std::string(inside ? ", eps inside" : ", eps outside")
                                                 << ", weight decay " << wd << std::string(masked ? ", masked" : ""));
                AdamUpdate h;
                h.lr = 0.05;
                h.beta1 = 0.9;
                h.beta2 = 0.999;
                h.eps = 1e-3;  // √v̂ is both above and below it
                h.weight_decay = wd;
                h.decoupled = decoupled;
                h.eps_inside_sqrt = inside;
                h.bc1 = 1 - std::pow(h.beta1, static_cast<double>(t));
                h.sqrt_bc2 = std::sqrt(1 - std::pow(h.beta2, static_cast<double>(t)));
                AdamUpdate hr = h;
                for (double* p : {&hr.lr, &hr.beta1, &hr.beta2, &hr.eps, &hr.weight_decay, &hr.bc1, &hr.sqrt_bc2})
                  *p = rounded(*p, dt);
                const AdamState want = adam_reference({w0v, m0z.to_vector(), v0.to_vector()}, gv, masked ? &mask : nullptr, hr);
                const std::vector<double> want_step = minus(want.w, w0v);
                const double tol = dt == DType::f64 ? 1e-14 : 5e-5;
                Tensor first[3];
                for (int threads : {1, 2}) {
                  Tensor w = w0.clone(), m = m0z.clone(), v = v0.clone();
                  with_threads(threads, [&] { adam_update(w, m, v, g, masked ? mask_t : Tensor(), h); });
                  CHECK(rel_error(minus(w.to_vector(), w0v), want_step) <= tol);
                  CHECK(rel_error(m.to_vector(), want.m) <= tol);
                  CHECK(rel_error(v.to_vector(), want.v) <= tol);
                  if (threads == 1) {
                    first[0] = w;
                    first[1] = m;
                    first[2] = v;
                  } else {
                    CHECK(same_bits(w, first[0]));
                    CHECK(same_bits(m, first[1]));
                    CHECK(same_bits(v, first[2]));
                  }
                }
              }
    }
}

// ---- bad operands --------------------------------------------------------------------------------

TEST_CASE("vector kernels: operands of another numel or dtype are refused, naming the operation and both shapes") {
  const Tensor a = random_tensor(Shape{2, 3}, 16, -1, 1, DType::f64);
  const Tensor b = Tensor::zeros(Shape{7}, DType::f64), a32 = Tensor::zeros(Shape{6}, DType::f32);
  const Tensor ok = Tensor::zeros(Shape{6}, DType::f64), i32 = Tensor::zeros(Shape{6}, DType::i32);

  check_error([&] { dot(a, b); }, {"dot", "[2, 3] float64", "[7] float64"});
  check_error([&] { dot(a, a32); }, {"dot", "[2, 3] float64", "[6] float32"});
  check_error([&] { dot(a, Tensor()); }, {"dot", "undefined"});
  check_error([&] { dot(i32, i32); }, {"dot", "int32"});
  CHECK(dot(a, ok) == 0);  // one numel, another shape: accepted

  Tensor acc = a.clone();
  check_error([&] { lerp(acc, b, 0.5); }, {"lerp", "[2, 3] float64", "[7] float64"});
  check_error([&] { lerp(acc, a32, 0.5); }, {"lerp", "[2, 3] float64", "[6] float32"});
  check_error([&] { max_abs(i32); }, {"max_abs", "int32"});
  check_error([&] { first_non_finite(i32); }, {"first_non_finite", "int32"});
  Tensor ic = i32.clone();
  check_error([&] { clamp(ic, 0, 1); }, {"clamp", "int32"});
  // An undefined tensor (numel 1, no storage) is refused, not read.
  Tensor none;
  check_error([&] { max_abs(none); }, {"max_abs", "undefined"});
  check_error([&] { first_non_finite(none); }, {"first_non_finite", "undefined"});
  check_error([&] { clamp(none, 0, 1); }, {"clamp", "undefined"});
  Tensor c = a.clone();
  check_error([&] { clamp(c, 1, 0); }, {"clamp", "lo <= hi", "lo 1", "hi 0", "[2, 3]"});
  CHECK(same_bits(c, a));

  // The optimizer steps name the optimizer (they are Sgd::step's and Adam::step's kernels), and
  // refuse before writing anything.
  Tensor w = a.clone(), v = Tensor::zeros(Shape{6}, DType::f64), m = Tensor::zeros(Shape{6}, DType::f64);
  const Tensor g = random_tensor(Shape{6}, 17, -1, 1, DType::f64);
  check_error([&] { sgd_update(w, v, b, Tensor(), {0.1, 0.9, 0.1}); }, {"Sgd::step", "[2, 3] float64", "[7] float64"});
  check_error([&] { sgd_update(w, v, a32, Tensor(), {0.1, 0.9, 0.1}); }, {"Sgd::step", "[2, 3] float64", "[6] float32"});
  Tensor bad_v = b.clone();
  check_error([&] { sgd_update(w, bad_v, g, Tensor(), {0.1, 0.9, 0.1}); }, {"Sgd::step", "[2, 3] float64", "[7] float64"});
  check_error([&] { sgd_update(w, v, g, a32, {0.1, 0.9, 0.1}); }, {"Sgd::step", "[2, 3] float64", "[6] float32"});
  check_error([&] { sgd_update(w, v, g, b, {0.1, 0.9, 0.1}); }, {"Sgd::step", "[2, 3] float64", "[7] float64"});
  AdamUpdate h;
  h.lr = 0.1;
  h.beta1 = 0.9;
  h.beta2 = 0.999;
  h.eps = 1e-8;
  h.bc1 = 0.1;
  h.sqrt_bc2 = std::sqrt(0.001);
  check_error([&] { adam_update(w, m, v, b, Tensor(), h); }, {"Adam::step", "[2, 3] float64", "[7] float64"});
  Tensor bad_m = a32.clone();
  check_error([&] { adam_update(w, bad_m, v, g, Tensor(), h); }, {"Adam::step", "[2, 3] float64", "[6] float32"});
  check_error([&] { adam_update(w, m, bad_v, g, Tensor(), h); }, {"Adam::step", "[2, 3] float64", "[7] float64"});
  check_error([&] { adam_update(w, m, v, g, a32, h); }, {"Adam::step", "[2, 3] float64", "[6] float32"});
  CHECK(same_bits(w, a));
  CHECK(max_abs(v) == 0);
  CHECK(max_abs(m) == 0);
  CHECK(max_abs(bad_m) == 0);
}

// ---- sgd_step_into: one pass, the tape's bits --------------------------------------------------------

TEST_CASE("sgd_step_into: the bits of optimizer::sgd recorded op by op on a tape, for [1] and [P] hyperparameters") {
  for (const DType dt : kTypes) {
    for (const std::int64_t n : {std::int64_t{7}, kLarge}) {
      for (const bool per_parameter : {false, true}) {
        CAPTURE(dtype_name(dt));
        CAPTURE(n);
        CAPTURE(per_parameter);
        const Tensor w = Tensor::from(random_tensor(Shape{n}, 1).to_vector(), Shape{n}, dt);
        const Tensor v = Tensor::from(random_tensor(Shape{n}, 2).to_vector(), Shape{n}, dt);
        const Tensor g = graded(n, 3, dt);
        // Values whose products are not exact, so that a fused multiply-add would change bits.
        auto hyper = [&](double base, std::uint64_t seed) {
          if (!per_parameter) return Tensor::scalar(base, dt);
          std::vector<double> h = random_tensor(Shape{n}, seed).to_vector();
          for (double& x : h) x = base * (1.0 + 0.1 * x);
          return Tensor::from(h, Shape{n}, dt);
        };
        const Tensor lr = hyper(0.1 / 3, 4), mom = hyper(0.9, 5), wd = hyper(1e-3 / 7, 6);
        REQUIRE(sgd_step_applies(w, lr, mom, wd));
        Tensor w1, v1;
        sgd_step_into(w, v, g, lr, mom, wd, w1, v1);
        Tape tape;
        tape.set_recording(false);
        Var tw = tape.variable(w), tv = tape.variable(v);
        optimizer::sgd(tw, tv, tape.variable(g), tape.variable(lr), tape.variable(mom), tape.variable(wd));
        CHECK(same_bits(w1, tw.value()));
        CHECK(same_bits(v1, tv.value()));
        CHECK(same_bits(w, Tensor::from(random_tensor(Shape{n}, 1).to_vector(), Shape{n}, dt)));  // inputs untouched
      }
    }
  }
  const Tensor w = Tensor::zeros(Shape{5}, DType::f32);
  CHECK_FALSE(sgd_step_applies(w, Tensor::zeros(Shape{3}, DType::f32), Tensor::scalar(0.9, DType::f32), Tensor::scalar(0.0, DType::f32)));
  CHECK_FALSE(sgd_step_applies(w, Tensor::scalar(0.1, DType::f64), Tensor::scalar(0.9, DType::f32), Tensor::scalar(0.0, DType::f32)));
}
