// Exact reversal of SGD with momentum (Maclaurin, Duvenaud & Adams 2015, Section 2.3 and
// Algorithm 3 "exact reversible SGD"; CS 6787 report, Section 3.2).
//
// Reverse mode needs w_{t−1}, v_{t−1} at every step of the backward pass. Running PyTorch's
// update backwards in floating point,
//     w_t = w_{t+1} + α v_{t+1},   v_t = (v_{t+1} − g_t − μ w_t) / β,
// amplifies rounding error by 1/β per step, so after a few hundred steps the recovered weights
// are noise. Maclaurin et al. instead run the forward pass in fixed-point arithmetic (integers
// scaled by 2^−R), where adding a rounded quantity is exactly undone by subtracting the same
// rounded quantity, and the only lossy operation — multiplying v by β < 1 — is made exact by
// keeping the bits it destroys in an information buffer:
//     β ≈ n/d (a rational, d ≤ 2^16);  v·n/d:  push(v mod d, base d), v ← ⌊v/d⌋·n + pop(base n)
// and the inverse multiplies by d/n the same way. The buffer then grows by log2(d/n) ≈
// log2(1/β) bits per parameter per step (≈ 0.152 bits at β = 0.9) instead of 64 bits per
// stored number, and the backward pass recovers every w_t, v_t bit for bit.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "../../engine/tensor.h"

namespace gradhpo::hpo {

struct Rational;

/// Unsigned 64-bit division by a divisor fixed for a run, by one multiplication (Granlund &
/// Montgomery 1994, "Division by invariant integers using multiplication", Figure 4.1): the exact
/// quotient for every 64-bit dividend, where a hardware division costs ~10–20 cycles per
/// parameter and step.
class ConstantDivisor {
 public:
  ConstantDivisor() = default;
  explicit ConstantDivisor(std::uint64_t d);
  std::uint64_t divisor() const { return d_; }
  /// The magic multiplier m and the shift ℓ of quotient() (ℓ = 0: d = 1), for vector lanes.
  std::uint64_t multiplier() const { return m_; }
  int shift() const { return shift_; }
  /// ⌈2^62/d⌉: a signed |a| < 2^62 plus this many d is ≥ 0 (floor division of signed values).
  std::uint64_t bias() const { return bias_; }
  std::uint64_t quotient(std::uint64_t x) const {
    if (shift_ == 0) return x;  // d = 1
    const std::uint64_t t = static_cast<std::uint64_t>((static_cast<unsigned __int128>(m_) * x) >> 64);
    return (t + ((x - t) >> 1)) >> (shift_ - 1);
  }

 private:
  std::uint64_t d_ = 1, m_ = 0, bias_ = std::uint64_t{1} << 62;
  int shift_ = 0;
};

/// The information buffer: per parameter, a natural number x_i with push(r, d): x ← x·d + r
/// (0 ≤ r < d) and pop(n): returns x mod n and makes x ← ⌊x/n⌋ (an empty buffer pops zeros).
/// Two representations of the same operations:
///   general    x_i as an arbitrary-precision number (base 2^32 limbs): any bases, but push and
///              pop cost O(bits held), so a run of T steps costs O(T²) per parameter
///   streaming  one rational β = n/d for the whole run (the usual case: one momentum for all
///              parameters and steps): x_i is a 64-bit head in [L, 2^32 L) over a stack of
///              32-bit digits, with L a multiple of n·d, renormalized as in rANS (Duda 2013):
///              push(r, b) first moves the head's low 32 bits to the stack when x ≥ (L/b)·2^32,
///              pop(b) takes a digit back when ⌊x/b⌋ < L. Both directions are exact inverses
///              for every b dividing L (n and d do; other rationals' bases may), O(1) each.
class InfoBuffer {
 public:
  /// The general representation.
  explicit InfoBuffer(std::int64_t size = 0) : limbs_(static_cast<std::size_t>(size)) {}
  /// The streaming representation for pushes and pops in the bases r.n and r.d only (0 < n < d).
  InfoBuffer(std::int64_t size, Rational r);
  // The streaming form inline (it runs per parameter and step in exact reversal's loops).
  void push(std::int64_t i, std::uint32_t remainder, std::uint32_t base) {
    if (low_ == 0) return push_general(i, remainder, base);
    // x ∈ [L, 2^32 L); x·base + remainder must stay below 2^32 L: move 32 bits out first when
    // x ≥ (L/base)·2^32 (then ⌊x/2^32⌋ ∈ [L/base, L), and the result is back in [L, 2^32 L)).
    const std::uint64_t limit = base == d_ ? limit_d_ : base == n_ ? limit_n_ : (low_ / base) << 32;
    std::uint64_t& x = head_[static_cast<std::size_t>(i)];
    if (x >= limit) spill(i, x);
    x = x * base + remainder;
  }
  std::uint32_t pop(std::int64_t i, std::uint32_t base) {
    if (low_ == 0) return pop_general(i, base);
    std::uint64_t& x = head_[static_cast<std::size_t>(i)];
    const std::uint64_t q = base == d_ ? by_d_.quotient(x) : base == n_ ? by_n_.quotient(x) : x / base;
    const std::uint32_t r = static_cast<std::uint32_t>(x - q * base);
    x = q;
    if (x < low_) unspill(i, x);  // exactly when the push this undoes had moved a digit out
    return r;
  }
  // The streaming form in the bases of its own rational n/d, for exact reversal's fused loops:
  // push(r, d) and pop(n) for v·n/d, push(r, n) and pop(d) for its inverse, with no test of the
  // form or the base (the caller has checked streaming() and that the rational is n/d).
  void push_d(std::int64_t i, std::uint32_t remainder) { push_streaming(i, remainder, d_, limit_d_); }
  void push_n(std::int64_t i, std::uint32_t remainder) { push_streaming(i, remainder, n_, limit_n_); }
  std::uint32_t pop_n(std::int64_t i) { return pop_streaming(i, n_, by_n_); }
  std::uint32_t pop_d(std::int64_t i) { return pop_streaming(i, d_, by_d_); }
  /// The streaming form's state as exact reversal's vector lanes (exact_rep_lanes.h) need it:
  /// they run push_d/pop_n and push_n/pop_d on eight heads at once and hand a parameter whose
  /// head must spill or unspill back to push_d/push_n/pop_n/pop_d.
  struct Heads {
    std::uint64_t* head;
    std::uint64_t low, limit_n, limit_d;
  };
  Heads heads() { return {head_.data(), low_, limit_n_, limit_d_}; }
  /// The streaming form's rational n/d (0/1 for the general form).
  std::uint32_t n() const { return n_; }
  std::uint32_t d() const { return d_; }
  /// Σ_i bit length of x_i: the information the buffer holds.
  double bits() const;
  /// Bytes of what the buffer holds (limbs or digits, and the heads) and of its per-parameter
  /// containers.
  std::size_t nbytes() const;
  std::int64_t size() const { return static_cast<std::int64_t>(limbs_.size()); }
  bool streaming() const { return low_ != 0; }
  /// Whether the buffer is streaming and L is a multiple of n and d (it serves that rational).
  bool serves(std::uint32_t n, std::uint32_t d) const { return low_ != 0 && low_ % n == 0 && low_ % d == 0; }

 private:
  void push_streaming(std::int64_t i, std::uint32_t remainder, std::uint64_t base, std::uint64_t limit) {
    std::uint64_t& x = head_[static_cast<std::size_t>(i)];
    if (x >= limit) [[unlikely]] spill(i, x);
    x = x * base + remainder;
  }
  std::uint32_t pop_streaming(std::int64_t i, std::uint64_t base, const ConstantDivisor& by) {
    std::uint64_t& x = head_[static_cast<std::size_t>(i)];
    const std::uint64_t q = by.quotient(x);
    const std::uint32_t r = static_cast<std::uint32_t>(x - q * base);
    x = q;
    if (x < low_) [[unlikely]] unspill(i, x);
    return r;
  }
  void push_general(std::int64_t i, std::uint32_t remainder, std::uint32_t base);
  std::uint32_t pop_general(std::int64_t i, std::uint32_t base);
  /// Streaming: moves the head's low 32 bits to the digit stack (x ← ⌊x/2^32⌋), before a push
  /// that would overflow; unspill takes the top digit back (x ← x·2^32 + digit) after a pop
  /// that left x below L. Rare (every ~32/log2(d/n) steps), so out of line.
  void spill(std::int64_t i, std::uint64_t& x);
  void unspill(std::int64_t i, std::uint64_t& x);
  // general: little-endian base 2^32, no leading zeros. streaming: the digit stack, bottom
  // first, never a zero at the bottom (an empty stack reads as zeros).
  std::vector<std::vector<std::uint32_t>> limbs_;
  std::vector<std::uint64_t> head_;  // streaming: x_i's head, in [L, 2^32 L)
  std::uint64_t low_ = 0;            // streaming: L (0: general)
  std::uint64_t limit_n_ = 0, limit_d_ = 0;  // streaming: the push thresholds (L/b)·2^32 of b = n, d
  std::uint32_t n_ = 0, d_ = 0;
  ConstantDivisor by_n_, by_d_;              // streaming: pop's divisions by n and d
};

/// β ≈ n/d with d ≤ max_denominator: the best rational approximation (continued fractions).
struct Rational {
  std::uint32_t n = 0, d = 1;
  double value() const { return static_cast<double>(n) / d; }
};
Rational rational_approximation(double x, std::uint32_t max_denominator = 1u << 16);

/// A value that does not fit the fixed-point grid (|x| ≥ 2^62 units): for a training run, a
/// weight or velocity that grew out of range — reverse mode reports it as an inner divergence.
class FixedPointRange : public Error {
 public:
  using Error::Error;
};

/// SGD with momentum in PyTorch's form, on fixed-point weights and velocities, exactly
/// reversible:
///   forward   v ← β v + (g + μ w);   w ← w − α v
///   reverse   w ← w + α v;   (g = ∇L(w) recomputed by the caller);   v ← (v − (g + μ w)) / β
/// α, β, μ are [1] or [P] tensors (per-parameter schedules); β ∈ [0, 1].
class ExactSgd {
 public:
  /// Takes w₀ and v₀ (undefined: zero), rounded to the fixed-point grid: what the run
  /// actually starts from.
  /// With `single_momentum` (n/d, 0 < n < d: every step's and parameter's momentum maps to it),
  /// the information buffer is the streaming one (O(1) per step and parameter); a momentum that
  /// maps to another rational is then an Error.
  explicit ExactSgd(const Tensor& w0, const Tensor& v0 = Tensor(), int radix_bits = 44, Rational single_momentum = {});
  /// The current w and v as tensors of w₀'s dtype (exactly the fixed-point values).
  Tensor w() const;
  Tensor v() const;
  /// One forward step with gradient g at the current w. With w_out, the new w() is written there
  /// in the same pass over the parameters (as with reverse_w's and reverse_v's outputs).
  void forward(const Tensor& g, const Tensor& lr, const Tensor& momentum, const Tensor& weight_decay, std::int64_t t,
               Tensor* w_out = nullptr);
  /// Undoes the w half of the step of the same hyperparameters: w_{t+1} → w_t; w_out gets
  /// w() = w_t, v_out v() = v_{t+1}.
  void reverse_w(const Tensor& lr, Tensor* w_out = nullptr, Tensor* v_out = nullptr);
  /// Undoes the v half, given g_t = ∇L(w_t) recomputed at the recovered w_t: v_{t+1} → v_t;
  /// v_out gets v() = v_t.
  void reverse_v(const Tensor& g, const Tensor& momentum, const Tensor& weight_decay, Tensor* v_out = nullptr);
  /// Raw fixed-point integers (for bit-for-bit comparisons).
  const std::vector<std::int64_t>& w_int() const { return w_; }
  const std::vector<std::int64_t>& v_int() const { return v_; }
  const InfoBuffer& buffer() const { return buffer_; }
  /// The rational that stood in for a momentum value (what the run actually used).
  Rational rational(double beta);
  std::size_t state_bytes() const { return (w_.size() + v_.size()) * sizeof(std::int64_t); }

 private:
  /// x on the fixed-point grid; FixedPointRange (range_error) outside ±2^62 units.
  std::int64_t to_fixed(double x, const char* what, std::int64_t i) const {
    const double s = std::nearbyint(x * scale_);
    if (!(std::abs(s) < 0x1p62)) [[unlikely]]
      range_error(x, what, i);
    return static_cast<std::int64_t>(s);
  }
  /// to_fixed without the throw (the fused loops report the lowest failing parameter afterwards).
  bool try_fixed(double x, std::int64_t& out) const {
    const double s = std::nearbyint(x * scale_);
    out = static_cast<std::int64_t>(s);
    return std::abs(s) < 0x1p62;
  }
  [[noreturn]] void range_error(double x, const char* what, std::int64_t i) const;
  /// The fused loops (exact_rep.cpp; eight parameters per block in exact_rep_lanes.h where the
  /// build targets AVX-512) apply: a streaming buffer, one momentum ([1]) that is its rational,
  /// and g and the other hyperparameters ([1] or [P]) of w₀'s dtype. reverse_w's needs only α
  /// of w₀'s dtype (it touches no buffer).
  bool fused(const Tensor& momentum, const Tensor& g, const Tensor& a, const Tensor& b) const;
  template <class T> void forward_fused(const Tensor& g, const Tensor& lr, const Tensor& weight_decay, Tensor* w_out);
  template <class T> void reverse_v_fused(const Tensor& g, const Tensor& weight_decay, Tensor* v_out);
  template <class T> void reverse_w_fused(const Tensor& lr, Tensor* w_out, Tensor* v_out);
  void mul_rational(std::int64_t i, Rational r);     // v_i ← v_i · n/d, exactly
  void div_rational(std::int64_t i, Rational r);     // its inverse
  std::vector<Rational> rationals(const Tensor& momentum);  // [1] or one per parameter
  double scale_, inv_scale_;
  DType dtype_;
  std::vector<std::int64_t> w_, v_;
  InfoBuffer buffer_;
  double last_beta_ = -1;
  Rational last_rational_;
  ConstantDivisor by_n_, by_d_;  // the single momentum's n and d (streaming buffer), else unused
};

}  // namespace gradhpo::hpo
