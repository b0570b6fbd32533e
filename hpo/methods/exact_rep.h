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

#include <cstdint>
#include <vector>

#include "../../engine/tensor.h"

namespace gradhpo::hpo {

/// One arbitrary-precision natural number per parameter: the information buffer. push(r, d)
/// makes x ← x·d + r (0 ≤ r < d); pop(n) returns x mod n and makes x ← ⌊x/n⌋.
class InfoBuffer {
 public:
  explicit InfoBuffer(std::int64_t size = 0) : limbs_(static_cast<std::size_t>(size)) {}
  void push(std::int64_t i, std::uint32_t remainder, std::uint32_t base);
  std::uint32_t pop(std::int64_t i, std::uint32_t base);
  /// Σ_i bit length of x_i: the information the buffer holds.
  double bits() const;
  /// Bytes of the limbs (what a compact store of the buffer needs).
  std::size_t nbytes() const;
  std::int64_t size() const { return static_cast<std::int64_t>(limbs_.size()); }

 private:
  std::vector<std::vector<std::uint32_t>> limbs_;  // little-endian base 2^32, no leading zeros
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
  explicit ExactSgd(const Tensor& w0, const Tensor& v0 = Tensor(), int radix_bits = 44);
  /// The current w and v as tensors of w₀'s dtype (exactly the fixed-point values).
  Tensor w() const;
  Tensor v() const;
  /// One forward step with gradient g at the current w.
  void forward(const Tensor& g, const Tensor& lr, const Tensor& momentum, const Tensor& weight_decay, std::int64_t t);
  /// Undoes the w half of the step of the same hyperparameters: w_{t+1} → w_t.
  void reverse_w(const Tensor& lr);
  /// Undoes the v half, given g_t = ∇L(w_t) recomputed at the recovered w_t: v_{t+1} → v_t.
  void reverse_v(const Tensor& g, const Tensor& momentum, const Tensor& weight_decay);
  /// Raw fixed-point integers (for bit-for-bit comparisons).
  const std::vector<std::int64_t>& w_int() const { return w_; }
  const std::vector<std::int64_t>& v_int() const { return v_; }
  const InfoBuffer& buffer() const { return buffer_; }
  /// The rational that stood in for a momentum value (what the run actually used).
  Rational rational(double beta);
  std::size_t state_bytes() const { return (w_.size() + v_.size()) * sizeof(std::int64_t); }

 private:
  std::int64_t to_fixed(double x, const char* what, std::int64_t i) const;
  void mul_rational(std::int64_t i, Rational r);     // v_i ← v_i · n/d, exactly
  void div_rational(std::int64_t i, Rational r);     // its inverse
  std::vector<Rational> rationals(const Tensor& momentum);  // [1] or one per parameter
  double scale_, inv_scale_;
  DType dtype_;
  std::vector<std::int64_t> w_, v_;
  InfoBuffer buffer_;
  double last_beta_ = -1;
  Rational last_rational_;
};

}  // namespace gradhpo::hpo
