#include "exact_rep.h"
#include "exact_rep_lanes.h"

#include <cmath>
#include <exception>
#include <limits>
#include <mutex>
#include <sstream>
#include <string>

#include "../../engine/error.h"
#include "../../engine/kernels/cpu.h"

namespace gradhpo::hpo {

// ---- information buffer -------------------------------------------------------------------------

ConstantDivisor::ConstantDivisor(std::uint64_t d) : d_(d) {
  require(d >= 1, "ConstantDivisor: the divisor must be >= 1");
  bias_ = ((std::uint64_t{1} << 62) + d - 1) / d;
  if (d == 1) return;
  shift_ = 64 - __builtin_clzll(d - 1);  // ℓ = ⌈log2 d⌉ ≥ 1
  const unsigned __int128 two_l = static_cast<unsigned __int128>(1) << shift_;
  m_ = static_cast<std::uint64_t>(((two_l - d) << 64) / d + 1);  // ⌊2^64 (2^ℓ − d)/d⌋ + 1 < 2^64
}

InfoBuffer::InfoBuffer(std::int64_t size, Rational r) : limbs_(static_cast<std::size_t>(size)) {
  require(r.n > 0 && r.n < r.d, "information buffer: the streaming form needs a rational 0 < n/d < 1, got " +
                                    std::to_string(r.n) + "/" + std::to_string(r.d));
  // L: the largest multiple of n·d below 2^32, so that heads in [L, 2^32 L) and the push's
  // threshold (L/b)·2^32 fit 64 bits.
  const std::uint64_t nd = static_cast<std::uint64_t>(r.n) * r.d;
  low_ = ((std::uint64_t{1} << 32) - 1) / nd * nd;
  n_ = r.n;
  d_ = r.d;
  limit_n_ = (low_ / r.n) << 32;
  limit_d_ = (low_ / r.d) << 32;
  by_n_ = ConstantDivisor(r.n);
  by_d_ = ConstantDivisor(r.d);
  head_.assign(static_cast<std::size_t>(size), low_);
}

void InfoBuffer::spill(std::int64_t i, std::uint64_t& x) {
  std::vector<std::uint32_t>& stack = limbs_[static_cast<std::size_t>(i)];
  const std::uint32_t digit = static_cast<std::uint32_t>(x);
  if (digit != 0 || !stack.empty()) stack.push_back(digit);  // a zero on an empty stack is implied
  x >>= 32;
}

void InfoBuffer::unspill(std::int64_t i, std::uint64_t& x) {
  std::vector<std::uint32_t>& stack = limbs_[static_cast<std::size_t>(i)];
  std::uint32_t digit = 0;
  if (!stack.empty()) {
    digit = stack.back();
    stack.pop_back();
  }
  x = (x << 32) | digit;
}

void InfoBuffer::push_general(std::int64_t i, std::uint32_t remainder, std::uint32_t base) {
  std::vector<std::uint32_t>& x = limbs_[static_cast<std::size_t>(i)];
  std::uint64_t carry = remainder;
  for (std::uint32_t& limb : x) {  // x ← x·base + remainder, limb by limb
    const std::uint64_t v = static_cast<std::uint64_t>(limb) * base + carry;
    limb = static_cast<std::uint32_t>(v);
    carry = v >> 32;
  }
  if (carry) x.push_back(static_cast<std::uint32_t>(carry));
}

std::uint32_t InfoBuffer::pop_general(std::int64_t i, std::uint32_t base) {
  std::vector<std::uint32_t>& x = limbs_[static_cast<std::size_t>(i)];
  std::uint64_t rem = 0;
  for (std::size_t k = x.size(); k-- > 0;) {  // long division from the top limb down
    const std::uint64_t cur = (rem << 32) | x[k];
    x[k] = static_cast<std::uint32_t>(cur / base);
    rem = cur % base;
  }
  while (!x.empty() && x.back() == 0) x.pop_back();
  return static_cast<std::uint32_t>(rem);
}

double InfoBuffer::bits() const {
  double b = 0;
  if (low_ != 0) {  // the heads' excess over L, and the stacked digits
    const double log_low = std::log2(static_cast<double>(low_));
    for (std::size_t i = 0; i < head_.size(); ++i) {
      if (head_[i] != low_) b += std::log2(static_cast<double>(head_[i])) - log_low;
      b += 32.0 * static_cast<double>(limbs_[i].size());
    }
    return b;
  }
  for (const auto& x : limbs_)
    if (!x.empty()) b += 32.0 * static_cast<double>(x.size() - 1) + std::log2(static_cast<double>(x.back()) + 1.0);
  return b;
}

std::size_t InfoBuffer::nbytes() const {
  std::size_t n = head_.size() * sizeof(std::uint64_t) + limbs_.size() * sizeof(std::vector<std::uint32_t>);
  for (const auto& x : limbs_) n += x.capacity() * sizeof(std::uint32_t);
  return n;
}

// ---- rationals ------------------------------------------------------------------------------------

Rational rational_approximation(double x, std::uint32_t max_denominator) {
  require(std::isfinite(x) && x >= 0 && x <= 1,
          "exact reversal: momentum must be in [0, 1], got " + std::to_string(x));
  // Continued-fraction convergents h/k of x; stop before k exceeds the bound, then take the
  // better of the last convergent and the best semiconvergent (Python's limit_denominator).
  std::uint64_t h0 = 0, h1 = 1, k0 = 1, k1 = 0;
  double r = x;
  for (int iter = 0; iter < 64; ++iter) {
    const double a_d = std::floor(r);
    const std::uint64_t a = static_cast<std::uint64_t>(a_d);
    const std::uint64_t k2 = a * k1 + k0;
    if (k2 > max_denominator) {
      const std::uint64_t m = (max_denominator - k0) / k1;
      const std::uint64_t hs = m * h1 + h0, ks = m * k1 + k0;
      const double e1 = std::abs(static_cast<double>(h1) / static_cast<double>(k1) - x);
      const double es = std::abs(static_cast<double>(hs) / static_cast<double>(ks) - x);
      return es < e1 ? Rational{static_cast<std::uint32_t>(hs), static_cast<std::uint32_t>(ks)}
                     : Rational{static_cast<std::uint32_t>(h1), static_cast<std::uint32_t>(k1)};
    }
    const std::uint64_t h2 = a * h1 + h0;
    h0 = h1;
    h1 = h2;
    k0 = k1;
    k1 = k2;
    const double frac = r - a_d;
    if (frac < 1e-300 || static_cast<double>(h1) / static_cast<double>(k1) == x) break;
    r = 1.0 / frac;
  }
  return {static_cast<std::uint32_t>(h1), static_cast<std::uint32_t>(k1)};
}

// ---- fixed-point SGD --------------------------------------------------------------------------------

namespace {

// a = q·d + r with 0 ≤ r < d (d > 0): the floor quotient and remainder from one division.
struct FloorDiv {
  std::int64_t q, r;
};
inline FloorDiv floor_div(std::int64_t a, std::int64_t d) {
  std::int64_t q = a / d, r = a % d;  // one idiv gives both
  if (r < 0) r += d, q -= 1;
  return {q, r};
}
// The same for |a| < 2^62 by a ConstantDivisor: a + k·d ≥ 0 with k = ⌈2^62/d⌉, divided unsigned.
inline FloorDiv floor_div(std::int64_t a, const ConstantDivisor& by) {
  const std::uint64_t d = by.divisor(), k = by.bias();
  const std::uint64_t u = static_cast<std::uint64_t>(a) + k * d, q = by.quotient(u);
  return {static_cast<std::int64_t>(q) - static_cast<std::int64_t>(k), static_cast<std::int64_t>(u - q * d)};
}

// The step's two increments, each written once: every loop (the general and the fused, forward
// and reverse) evaluates the same expression, so the reverse takes away exactly what the forward
// added, whatever the compiler makes of a + b·c.
// Where the CPU has a fused multiply-add, g + μ·w is one, written out: the vector lanes
// (exact_rep_lanes.h) compute it so too, and the compiler's contraction is no longer what the
// bits hang on.
#ifdef __FMA__
inline double decayed_gradient(double g, double mu, double w) { return std::fma(mu, w, g); }
#else
inline double decayed_gradient(double g, double mu, double w) { return g + mu * w; }
#endif
inline double lr_times(double lr, double v) { return lr * v; }

template <class F> void for_each_value(const Tensor& t, F&& f) {
  dispatch_float(t.dtype(), "exact reversal", [&](auto zero) {
    using T = decltype(zero);
    const T* p = t.data<T>();
    for (std::int64_t i = 0; i < t.numel(); ++i) f(i, static_cast<double>(p[i]));
  });
}

/// A [1] or [P] float32 or float64 tensor read as float64, element by element, with no converted
/// copy (a [P] gradient was a P-sized conversion pass per step).
class PerParameter {
 public:
  explicit PerParameter(const Tensor& h)
      : f_(h.dtype() == DType::f32 ? h.data<float>() : nullptr), d_(h.dtype() == DType::f64 ? h.data<double>() : nullptr),
        scalar_(h.numel() == 1) {
    require(f_ != nullptr || d_ != nullptr, "exact reversal: values must be float32 or float64");
  }
  double operator[](std::int64_t i) const {
    const std::int64_t k = scalar_ ? 0 : i;
    return d_ ? d_[k] : static_cast<double>(f_[k]);
  }

 private:
  const float* f_;
  const double* d_;
  bool scalar_;
};

/// Where a loop writes the fixed-point values it has just made, converted to w₀'s dtype, so
/// that w() and v() need no pass of their own (undefined: nothing written).
class Converted {
 public:
  Converted(Tensor* t, std::int64_t P, DType dtype) {
    if (!t) return;
    *t = Tensor::empty(Shape{P}, dtype);
    (dtype == DType::f32 ? static_cast<void*>(f_ = t->data<float>()) : static_cast<void*>(d_ = t->data<double>()));
  }
  void set(std::int64_t i, double x) const {
    if (d_) d_[i] = x;
    else if (f_) f_[i] = static_cast<float>(x);
  }

 private:
  float* f_ = nullptr;
  double* d_ = nullptr;
};

/// Runs body(i) for every parameter i < P. Each parameter's fixed-point arithmetic and its
/// information buffer are its own, so the loop runs on the OpenMP threads (for large P) with
/// the same bits as on one (serial, with its 128-bit divisions, it was ~15% of the CPU time of
/// exact reversal on LeNet-5, all of it on one of the two threads).
/// An error (out of range, overflow) stops its thread's chunk, and the error of the lowest
/// failing parameter is rethrown after the loop — the state is not usable after an error.
template <class Body> void for_parameters(std::int64_t P, Body&& body) {
  std::mutex mutex;
  std::int64_t first = -1;
  std::exception_ptr error;  // the lowest failing parameter's, rethrown as it was
  kernels::parallel_chunks(P, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t i = begin; i < end; ++i) {
      try {
        body(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex);
        if (first < 0 || i < first) first = i, error = std::current_exception();
        return;
      }
    }
  });
  if (error) std::rethrow_exception(error);
}

}  // namespace

ExactSgd::ExactSgd(const Tensor& w0, const Tensor& v0, int radix_bits, Rational single_momentum)
    : scale_(std::ldexp(1.0, radix_bits)), inv_scale_(std::ldexp(1.0, -radix_bits)), dtype_(w0.dtype()),
      w_(static_cast<std::size_t>(w0.numel())), v_(static_cast<std::size_t>(w0.numel()), 0),
      buffer_(single_momentum.n > 0 && single_momentum.n < single_momentum.d ? InfoBuffer(w0.numel(), single_momentum)
                                                                            : InfoBuffer(w0.numel())) {
  if (buffer_.streaming()) {
    by_n_ = ConstantDivisor(single_momentum.n);
    by_d_ = ConstantDivisor(single_momentum.d);
  }
  require(radix_bits >= 8 && radix_bits <= 56, "exact reversal: radix bits must be in [8, 56], got " + std::to_string(radix_bits));
  for_each_value(w0, [&](std::int64_t i, double x) { w_[static_cast<std::size_t>(i)] = to_fixed(x, "w0", i); });
  if (v0.defined()) {
    require(v0.numel() == w0.numel(), "exact reversal: v0 and w0 differ in size");
    for_each_value(v0, [&](std::int64_t i, double x) { v_[static_cast<std::size_t>(i)] = to_fixed(x, "v0", i); });
  }
}

void ExactSgd::range_error(double x, const char* what, std::int64_t i) const {
  std::ostringstream m;
  m << "exact reversal: " << what << "[" << i << "] = " << x << " is outside the fixed-point range ±"
    << std::ldexp(1.0, 62) * inv_scale_ << " (lower the radix bits)";
  throw FixedPointRange(m.str());
}

namespace {
Tensor to_tensor(const std::vector<std::int64_t>& x, double inv_scale, DType dtype) {
  Tensor t = Tensor::empty(Shape{static_cast<std::int64_t>(x.size())}, dtype);
  dispatch_float(dtype, "exact reversal", [&](auto zero) {
    using T = decltype(zero);
    T* p = t.data<T>();
    for (std::size_t i = 0; i < x.size(); ++i) p[i] = static_cast<T>(static_cast<double>(x[i]) * inv_scale);
  });
  return t;
}
}  // namespace

Tensor ExactSgd::w() const { return to_tensor(w_, inv_scale_, dtype_); }
Tensor ExactSgd::v() const { return to_tensor(v_, inv_scale_, dtype_); }

Rational ExactSgd::rational(double beta) {
  if (beta != last_beta_) {
    last_rational_ = rational_approximation(beta);
    last_beta_ = beta;
  }
  return last_rational_;
}

std::vector<Rational> ExactSgd::rationals(const Tensor& momentum) {
  // One rational for a [1] momentum; for a [P] schedule one per parameter, looked up through
  // the last-value cache (the values come in runs: one per tensor or group).
  const PerParameter beta(momentum);
  std::vector<Rational> r(static_cast<std::size_t>(momentum.numel() == 1 ? 1 : momentum.numel()));
  for (std::size_t i = 0; i < r.size(); ++i) {
    r[i] = rational(beta[static_cast<std::int64_t>(i)]);
    if (buffer_.streaming() && r[i].n != r[i].d && !buffer_.serves(r[i].n, r[i].d))
      throw Error("exact reversal: the momentum " + std::to_string(beta[static_cast<std::int64_t>(i)]) + " (as " +
                  std::to_string(r[i].n) + "/" + std::to_string(r[i].d) +
                  ") differs from the single momentum the information buffer was set up for");
  }
  return r;
}

inline void ExactSgd::mul_rational(std::int64_t i, Rational r) {  // inline: used in this file's loops only
  std::int64_t& v = v_[static_cast<std::size_t>(i)];
  if (r.n == 0) {  // β = 0 forgets v entirely: keep all 64 bits
    const std::uint64_t u = static_cast<std::uint64_t>(v);
    for (int shift = 48; shift >= 0; shift -= 16) buffer_.push(i, static_cast<std::uint32_t>((u >> shift) & 0xffffu), 1u << 16);
    v = 0;
    return;
  }
  if (r.n == r.d) return;
  // Algorithm 3: push(v mod d), v ← (v − v mod d)/d · n + pop(n). |v| < 2^62 and n ≤ d, so
  // this stays in 64 bits (the division is exact).
  // (v − v mod d)/d is the floor quotient: exact. |v| < 2^62 (the fixed-point range).
  const FloorDiv qr = r.d == by_d_.divisor() ? floor_div(v, by_d_) : floor_div(v, r.d);
  buffer_.push(i, static_cast<std::uint32_t>(qr.r), r.d);
  v = qr.q * r.n + buffer_.pop(i, r.n);
}

inline void ExactSgd::div_rational(std::int64_t i, Rational r) {
  std::int64_t& v = v_[static_cast<std::size_t>(i)];
  if (r.n == 0) {
    std::uint64_t u = 0;
    for (int shift = 0; shift <= 48; shift += 16) u |= static_cast<std::uint64_t>(buffer_.pop(i, 1u << 16)) << shift;
    v = static_cast<std::int64_t>(u);
    return;
  }
  if (r.n == r.d) return;
  const FloorDiv qr = r.n == by_n_.divisor() ? floor_div(v, by_n_) : floor_div(v, r.n);
  buffer_.push(i, static_cast<std::uint32_t>(qr.r), r.n);
  // ·d/n can leave the fixed-point range: checked without wrapping.
  std::int64_t out = 0;
  const bool wrapped = __builtin_mul_overflow(qr.q, static_cast<std::int64_t>(r.d), &out) ||
                       __builtin_add_overflow(out, static_cast<std::int64_t>(buffer_.pop(i, r.d)), &out);
  constexpr std::int64_t kLimit = std::int64_t{1} << 62;
  if (wrapped || out <= -kLimit || out >= kLimit)
    throw FixedPointRange("exact reversal: velocity overflow while reversing (element " + std::to_string(i) + ")");
  v = out;
}

void ExactSgd::forward(const Tensor& g, const Tensor& lr, const Tensor& momentum, const Tensor& weight_decay,
                       std::int64_t t, Tensor* w_out) {
  require(g.numel() == static_cast<std::int64_t>(w_.size()), "exact reversal: gradient of the wrong size");
  if (fused(momentum, g, lr, weight_decay))
    return dtype_ == DType::f32 ? forward_fused<float>(g, lr, weight_decay, w_out)
                                : forward_fused<double>(g, lr, weight_decay, w_out);
  const PerParameter gv(g), alpha(lr), mu(weight_decay);
  const std::vector<Rational> beta = rationals(momentum);
  const Converted w_next(w_out, g.numel(), dtype_);
  for_parameters(g.numel(), [&](std::int64_t i) {
    const std::size_t k = static_cast<std::size_t>(i);
    const double wi = static_cast<double>(w_[k]) * inv_scale_;
    mul_rational(i, beta[beta.size() == 1 ? 0 : k]);
    v_[k] += to_fixed(decayed_gradient(gv[i], mu[i], wi), "g + mu w", i);
    const double vi = static_cast<double>(v_[k]) * inv_scale_;
    w_[k] -= to_fixed(lr_times(alpha[i], vi), "lr v", i);
    w_next.set(i, static_cast<double>(w_[k]) * inv_scale_);
  });
  (void)t;
}

void ExactSgd::reverse_w(const Tensor& lr, Tensor* w_out, Tensor* v_out) {
  if ((dtype_ == DType::f32 || dtype_ == DType::f64) && lr.dtype() == dtype_ && lr.device() == Device::cpu)
    return dtype_ == DType::f32 ? reverse_w_fused<float>(lr, w_out, v_out) : reverse_w_fused<double>(lr, w_out, v_out);
  const PerParameter alpha(lr);
  const std::int64_t P = static_cast<std::int64_t>(w_.size());
  const Converted w_t(w_out, P, dtype_), v_next(v_out, P, dtype_);
  for_parameters(P, [&](std::int64_t i) {
    const std::size_t k = static_cast<std::size_t>(i);
    const double vi = static_cast<double>(v_[k]) * inv_scale_;
    w_[k] += to_fixed(lr_times(alpha[i], vi), "lr v", i);
    w_t.set(i, static_cast<double>(w_[k]) * inv_scale_);
    v_next.set(i, vi);
  });
}

void ExactSgd::reverse_v(const Tensor& g, const Tensor& momentum, const Tensor& weight_decay, Tensor* v_out) {
  require(g.numel() == static_cast<std::int64_t>(w_.size()), "exact reversal: gradient of the wrong size");
  if (fused(momentum, g, weight_decay, weight_decay))
    return dtype_ == DType::f32 ? reverse_v_fused<float>(g, weight_decay, v_out)
                                : reverse_v_fused<double>(g, weight_decay, v_out);
  const PerParameter gv(g), mu(weight_decay);
  const std::vector<Rational> beta = rationals(momentum);
  const Converted v_t(v_out, g.numel(), dtype_);
  for_parameters(g.numel(), [&](std::int64_t i) {
    const std::size_t k = static_cast<std::size_t>(i);
    const double wi = static_cast<double>(w_[k]) * inv_scale_;
    v_[k] -= to_fixed(decayed_gradient(gv[i], mu[i], wi), "g + mu w", i);
    div_rational(i, beta[beta.size() == 1 ? 0 : k]);
    v_t.set(i, static_cast<double>(v_[k]) * inv_scale_);
  });
}

// ---- the fused loops --------------------------------------------------------------------------------
// The common case, one momentum n/d for the whole run with its streaming buffer, in loops with
// nothing to decide per parameter: the rational, the buffer's bases, the dtypes and the shapes
// of the hyperparameters are settled before the loop (the general loops above settle them per
// parameter, which made them ~3x slower on the MLP of bench/hypergradient_vs_pytorch). The same
// arithmetic as the general loops, so the same bits; range errors are collected per chunk and
// the lowest failing parameter's is thrown after the loop, as there.

namespace {

/// A [1] or [P] tensor of T read at parameter i (stride 0 or 1).
template <class T> struct Strided {
  explicit Strided(const Tensor& t) : p(t.data<T>()), stride(t.numel() == 1 ? 0 : 1) {}
  double operator[](std::int64_t i) const { return static_cast<double>(p[i * stride]); }
  const T* p;
  std::int64_t stride;
};

/// The lowest parameter whose value left the fixed-point range, over the threads' chunks.
struct FirstOutOfRange {
  std::mutex mutex;
  std::int64_t index = -1;
  double value = 0;
  const char* what = "";
  void note(std::int64_t i, double x, const char* w) {
    std::lock_guard<std::mutex> lock(mutex);
    if (index < 0 || i < index) index = i, value = x, what = w;
  }
};

/// Runs one(i) for every parameter, on the threads' chunks; where the build has vector lanes,
/// eight at a time through block(i) first, and a block that hands its eight back (false) goes
/// through one(i) parameter by parameter. A chunk stops at its first one(i) that fails (it has
/// noted its error).
template <class Block, class One> void fused_loop(std::int64_t P, Block&& block, One&& one) {
  kernels::parallel_chunks(P, [&](std::int64_t begin, std::int64_t end) {
    std::int64_t i = begin;
#ifdef GRADHPO_EXACT_LANES
    for (; i + lanes::kWidth <= end; i += lanes::kWidth)
      if (!block(i))
        for (std::int64_t j = i; j < i + lanes::kWidth; ++j)
          if (!one(j)) return;
#else
    (void)block;
#endif
    for (; i < end; ++i)
      if (!one(i)) return;
  });
}

}  // namespace

bool ExactSgd::fused(const Tensor& momentum, const Tensor& g, const Tensor& a, const Tensor& b) const {
  if (!buffer_.streaming() || momentum.numel() != 1 || (dtype_ != DType::f32 && dtype_ != DType::f64)) return false;
  for (const Tensor* t : {&g, &a, &b})
    if (t->dtype() != dtype_ || t->device() != Device::cpu) return false;
  const double beta = momentum.dtype() == DType::f32 ? static_cast<double>(momentum.data<float>()[0]) : momentum.data<double>()[0];
  const Rational r = beta == last_beta_ ? last_rational_ : rational_approximation(beta);
  return r.n == buffer_.n() && r.d == buffer_.d();
}

template <class T>
void ExactSgd::forward_fused(const Tensor& g, const Tensor& lr, const Tensor& weight_decay, Tensor* w_out) {
  const std::int64_t P = static_cast<std::int64_t>(w_.size());
  const T* gv = g.data<T>();
  const Strided<T> alpha(lr), mu(weight_decay);
  T* out = nullptr;
  if (w_out) {
    *w_out = Tensor::empty(Shape{P}, dtype_);
    out = w_out->data<T>();
  }
  const std::int64_t n = buffer_.n();
  FirstOutOfRange bad;
  // One parameter; false (the error noted) where a value leaves the fixed-point range.
  auto one = [&](std::int64_t i) {
    std::int64_t& v = v_[static_cast<std::size_t>(i)];
    std::int64_t& w = w_[static_cast<std::size_t>(i)];
    const double wi = static_cast<double>(w) * inv_scale_;
    // v ← v·n/d exactly (Algorithm 3): push(v mod d), v ← ⌊v/d⌋·n + pop(n).
    const FloorDiv qr = floor_div(v, by_d_);
    buffer_.push_d(i, static_cast<std::uint32_t>(qr.r));
    v = qr.q * n + buffer_.pop_n(i);
    std::int64_t dv = 0, dw = 0;
    const double gx = decayed_gradient(static_cast<double>(gv[i]), mu[i], wi);
    if (!try_fixed(gx, dv)) [[unlikely]] return bad.note(i, gx, "g + mu w"), false;
    v += dv;
    const double vi = static_cast<double>(v) * inv_scale_;
    const double step = lr_times(alpha[i], vi);
    if (!try_fixed(step, dw)) [[unlikely]] return bad.note(i, step, "lr v"), false;
    w -= dw;
    if (out) out[i] = static_cast<T>(static_cast<double>(w) * inv_scale_);
    return true;
  };
#ifdef GRADHPO_EXACT_LANES
  const lanes::Grid grid(scale_, inv_scale_, buffer_.heads());
  const lanes::Divisor by_d(by_d_), by_n(by_n_);
  auto block = [&](std::int64_t i) {
    return lanes::forward_block(grid, by_d, by_n, v_.data(), w_.data(), gv, alpha.p, alpha.stride, mu.p, mu.stride, out, i);
  };
#else
  auto block = [](std::int64_t) { return false; };
#endif
  fused_loop(P, block, one);
  if (bad.index >= 0) range_error(bad.value, bad.what, bad.index);
}

template <class T> void ExactSgd::reverse_w_fused(const Tensor& lr, Tensor* w_out, Tensor* v_out) {
  const std::int64_t P = static_cast<std::int64_t>(w_.size());
  const Strided<T> alpha(lr);
  T* w_t = nullptr;
  T* v_next = nullptr;
  if (w_out) *w_out = Tensor::empty(Shape{P}, dtype_), w_t = w_out->data<T>();
  if (v_out) *v_out = Tensor::empty(Shape{P}, dtype_), v_next = v_out->data<T>();
  FirstOutOfRange bad;
  auto one = [&](std::int64_t i) {
    std::int64_t& w = w_[static_cast<std::size_t>(i)];
    const double vi = static_cast<double>(v_[static_cast<std::size_t>(i)]) * inv_scale_;
    std::int64_t dw = 0;
    const double step = lr_times(alpha[i], vi);
    if (!try_fixed(step, dw)) [[unlikely]] return bad.note(i, step, "lr v"), false;
    w += dw;
    if (w_t) w_t[i] = static_cast<T>(static_cast<double>(w) * inv_scale_);
    if (v_next) v_next[i] = static_cast<T>(vi);
    return true;
  };
#ifdef GRADHPO_EXACT_LANES
  const lanes::Grid grid(scale_, inv_scale_, buffer_.heads());
  auto block = [&](std::int64_t i) { return lanes::reverse_w_block(grid, v_.data(), w_.data(), alpha.p, alpha.stride, w_t, v_next, i); };
#else
  auto block = [](std::int64_t) { return false; };
#endif
  fused_loop(P, block, one);
  if (bad.index >= 0) range_error(bad.value, bad.what, bad.index);
}

template <class T> void ExactSgd::reverse_v_fused(const Tensor& g, const Tensor& weight_decay, Tensor* v_out) {
  const std::int64_t P = static_cast<std::int64_t>(w_.size());
  const T* gv = g.data<T>();
  const Strided<T> mu(weight_decay);
  T* out = nullptr;
  if (v_out) {
    *v_out = Tensor::empty(Shape{P}, dtype_);
    out = v_out->data<T>();
  }
  const std::int64_t d = buffer_.d();
  constexpr std::int64_t kLimit = std::int64_t{1} << 62;
  FirstOutOfRange bad;
  auto one = [&](std::int64_t i) {
    std::int64_t& v = v_[static_cast<std::size_t>(i)];
    const double wi = static_cast<double>(w_[static_cast<std::size_t>(i)]) * inv_scale_;
    std::int64_t dv = 0;
    const double gx = decayed_gradient(static_cast<double>(gv[i]), mu[i], wi);
    if (!try_fixed(gx, dv)) [[unlikely]] return bad.note(i, gx, "g + mu w"), false;
    v -= dv;
    // v ← v·d/n exactly, the inverse of the forward's: push(v mod n), v ← ⌊v/n⌋·d + pop(d).
    const FloorDiv qr = floor_div(v, by_n_);
    buffer_.push_n(i, static_cast<std::uint32_t>(qr.r));
    std::int64_t next = 0;
    const bool wrapped = __builtin_mul_overflow(qr.q, d, &next) ||
                         __builtin_add_overflow(next, static_cast<std::int64_t>(buffer_.pop_d(i)), &next);
    if (wrapped || next <= -kLimit || next >= kLimit) [[unlikely]]
      return bad.note(i, std::numeric_limits<double>::infinity(), "the velocity while reversing"), false;
    v = next;
    if (out) out[i] = static_cast<T>(static_cast<double>(v) * inv_scale_);
    return true;
  };
#ifdef GRADHPO_EXACT_LANES
  const lanes::Grid grid(scale_, inv_scale_, buffer_.heads());
  const lanes::Divisor by_d(by_d_), by_n(by_n_);
  auto block = [&](std::int64_t i) {
    return lanes::reverse_v_block(grid, by_d, by_n, v_.data(), w_.data(), gv, mu.p, mu.stride, out, i);
  };
#else
  auto block = [](std::int64_t) { return false; };
#endif
  fused_loop(P, block, one);
  if (bad.index >= 0) {
    if (std::isinf(bad.value))
      throw FixedPointRange("exact reversal: velocity overflow while reversing (element " + std::to_string(bad.index) + ")");
    range_error(bad.value, bad.what, bad.index);
  }
}

}  // namespace gradhpo::hpo
