// Exact reversal's fused step on eight parameters at once, for CPUs with AVX-512 (F and DQ).
//
// The fused loops of exact_rep.cpp spend ~9 ns per parameter and step on a handful of integer
// operations: two divisions by the invariant n and d (each a 64-bit multiply-high, Granlund &
// Montgomery), the push and the pop of the information buffer's head, and two roundings to the
// fixed-point grid. Every parameter's arithmetic is its own, so eight lanes can run it side by
// side. Each lane does exactly what the scalar loop does, in the same order and with the same
// roundings (the same bits: tests/hpo/test_reversal.cpp compares the two paths over spills and
// range errors). What the lanes do not do, they hand back: a block of eight in which any head
// must spill or unspill a digit, any value leaves the fixed-point range, or a reversed velocity
// could overflow, writes nothing and returns false, and the caller runs those eight parameters
// through the scalar code (about 4% of blocks at β = 0.9: a head spills every ~210 steps).
//
// Compiled where the build targets such a CPU (GRADHPO_NATIVE on a machine with AVX-512); other
// builds keep the scalar loops alone.
#pragma once

#if defined(__AVX512F__) && defined(__AVX512DQ__)
#define GRADHPO_EXACT_LANES 1

// GCC 12 warns "'__Y' may be used uninitialized" inside its own AVX-512 shift intrinsics when
// they are inlined at -O3 (their _mm512_undefined_epi32() operand; GCC bug 105593): silenced
// for those headers alone.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <cstdint>

#include "exact_rep.h"

namespace gradhpo::hpo::lanes {

constexpr std::int64_t kWidth = 8;

/// ⌊a·m / 2^64⌋ per unsigned 64-bit lane. AVX-512 has no 64-bit multiply-high: four 32×32→64
/// products, added so that no carry is lost (hi_lo + ⌊lo_lo/2^32⌋ + (lo_hi mod 2^32) ≤
/// (2^32−1)² + 2(2^32−1) < 2^64).
inline __m512i mulhi_u64(__m512i a, __m512i m_lo, __m512i m_hi) {
  const __m512i a_hi = _mm512_srli_epi64(a, 32);
  const __m512i lo_lo = _mm512_mul_epu32(a, m_lo), hi_lo = _mm512_mul_epu32(a_hi, m_lo);
  const __m512i lo_hi = _mm512_mul_epu32(a, m_hi), hi_hi = _mm512_mul_epu32(a_hi, m_hi);
  const __m512i cross = _mm512_add_epi64(_mm512_add_epi64(hi_lo, _mm512_srli_epi64(lo_lo, 32)),
                                         _mm512_and_si512(lo_hi, _mm512_set1_epi64(0xffffffff)));
  return _mm512_add_epi64(_mm512_add_epi64(hi_hi, _mm512_srli_epi64(lo_hi, 32)), _mm512_srli_epi64(cross, 32));
}

/// ConstantDivisor in lanes: the same quotient, and the floor division of signed values.
class Divisor {
 public:
  explicit Divisor(const ConstantDivisor& by)
      : d_(_mm512_set1_epi64(static_cast<long long>(by.divisor()))),
        m_lo_(_mm512_set1_epi64(static_cast<long long>(by.multiplier() & 0xffffffffu))),
        m_hi_(_mm512_set1_epi64(static_cast<long long>(by.multiplier() >> 32))),
        bias_(_mm512_set1_epi64(static_cast<long long>(by.bias()))),
        bias_d_(_mm512_set1_epi64(static_cast<long long>(by.bias() * by.divisor()))),
        shift_(_mm_cvtsi64_si128(by.shift() > 0 ? by.shift() - 1 : 0)),
        identity_(by.shift() == 0) {}
  __m512i divisor() const { return d_; }
  /// ConstantDivisor::quotient: t = mulhi(m, x), q = (t + ⌊(x − t)/2⌋) >> (ℓ − 1).
  __m512i quotient(__m512i x) const {
    if (identity_) return x;
    const __m512i t = mulhi_u64(x, m_lo_, m_hi_);
    return _mm512_srl_epi64(_mm512_add_epi64(t, _mm512_srli_epi64(_mm512_sub_epi64(x, t), 1)), shift_);
  }
  /// floor_div(a, by) of exact_rep.cpp: a = q·d + r, 0 ≤ r < d, via a + k·d ≥ 0 divided unsigned.
  void floor_div(__m512i a, __m512i& q, __m512i& r) const {
    const __m512i u = _mm512_add_epi64(a, bias_d_);
    const __m512i uq = quotient(u);
    r = _mm512_sub_epi64(u, _mm512_mullo_epi64(uq, d_));
    q = _mm512_sub_epi64(uq, bias_);
  }

 private:
  __m512i d_, m_lo_, m_hi_, bias_, bias_d_;
  __m128i shift_;
  bool identity_;
};

/// Eight values of a [P] tensor from i, or a [1] tensor's value eight times, as float64.
template <class T> inline __m512d load(const T* p, std::int64_t stride, std::int64_t i) {
  if constexpr (sizeof(T) == sizeof(double)) {
    return stride ? _mm512_loadu_pd(p + i) : _mm512_set1_pd(static_cast<double>(p[0]));
  } else {
    return stride ? _mm512_cvtps_pd(_mm256_loadu_ps(p + i)) : _mm512_set1_pd(static_cast<double>(p[0]));
  }
}
template <class T> inline void store(T* p, std::int64_t i, __m512d x) {
  if constexpr (sizeof(T) == sizeof(double)) _mm512_storeu_pd(p + i, x);
  else _mm256_storeu_ps(p + i, _mm512_cvtpd_ps(x));
}
inline __m512i load64(const std::int64_t* p, std::int64_t i) { return _mm512_loadu_si512(p + i); }
inline __m512i load64(const std::uint64_t* p, std::int64_t i) { return _mm512_loadu_si512(p + i); }
inline void store64(std::int64_t* p, std::int64_t i, __m512i x) { _mm512_storeu_si512(p + i, x); }
inline void store64(std::uint64_t* p, std::int64_t i, __m512i x) { _mm512_storeu_si512(p + i, x); }

/// What the fused loops' lanes share: the grid's scales and the streaming buffer's heads.
struct Grid {
  Grid(double scale, double inv_scale, const InfoBuffer::Heads& h)
      : scale(_mm512_set1_pd(scale)), inv_scale(_mm512_set1_pd(inv_scale)), head(h.head),
        low(_mm512_set1_epi64(static_cast<long long>(h.low))),
        limit_n(_mm512_set1_epi64(static_cast<long long>(h.limit_n))),
        limit_d(_mm512_set1_epi64(static_cast<long long>(h.limit_d))) {}
  /// ExactSgd::try_fixed in lanes: nearbyint(x·scale) (rounding as the scalar's: the current
  /// mode, no exceptions), with the lanes whose |value| ≥ 2^62 (or NaN) cleared from `ok`.
  __m512i to_fixed(__m512d x, __mmask8& ok) const {
    const __m512d s = _mm512_roundscale_pd(_mm512_mul_pd(x, scale), _MM_FROUND_CUR_DIRECTION | _MM_FROUND_NO_EXC);
    ok &= _mm512_cmp_pd_mask(_mm512_abs_pd(s), _mm512_set1_pd(0x1p62), _CMP_LT_OQ);
    return _mm512_cvttpd_epi64(s);
  }
  __m512d to_double(__m512i x) const { return _mm512_mul_pd(_mm512_cvtepi64_pd(x), inv_scale); }

  __m512d scale, inv_scale;
  std::uint64_t* head;
  __m512i low, limit_n, limit_d;
};

/// The forward step of parameters i … i+7 (ExactSgd::forward_fused's body in lanes):
///   v ← v·n/d exactly: push(v mod d, d), v ← ⌊v/d⌋·n + pop(n)   (Algorithm 3)
///   v ← v + fixed(g + μ w);   w ← w − fixed(α v)
/// False, with nothing written, where the scalar code must run the block.
template <class T>
inline bool forward_block(const Grid& grid, const Divisor& by_d, const Divisor& by_n, std::int64_t* v_p,
                          std::int64_t* w_p, const T* g, const T* alpha, std::int64_t alpha_stride, const T* mu,
                          std::int64_t mu_stride, T* out, std::int64_t i) {
  __m512i v = load64(v_p, i), w = load64(w_p, i), x = load64(grid.head, i);
  if (_mm512_cmpge_epu64_mask(x, grid.limit_d)) return false;  // a head spills before the push
  const __m512d wi = grid.to_double(w);
  __m512i q, r;
  by_d.floor_div(v, q, r);
  x = _mm512_add_epi64(_mm512_mullo_epi64(x, by_d.divisor()), r);  // push(r, d)
  const __m512i popped = by_n.quotient(x);                          // pop(n)
  const __m512i digit = _mm512_sub_epi64(x, _mm512_mullo_epi64(popped, by_n.divisor()));
  x = popped;
  if (_mm512_cmplt_epu64_mask(x, grid.low)) return false;  // a head unspills after the pop
  v = _mm512_add_epi64(_mm512_mullo_epi64(q, by_n.divisor()), digit);
  __mmask8 ok = 0xff;
  // decayed_gradient(g, μ, w) = g + μ·w: one fused multiply-add, as the scalar code's.
  const __m512d gx = _mm512_fmadd_pd(load(mu, mu_stride, i), wi, load(g, 1, i));
  v = _mm512_add_epi64(v, grid.to_fixed(gx, ok));
  const __m512d step = _mm512_mul_pd(load(alpha, alpha_stride, i), grid.to_double(v));  // lr_times
  w = _mm512_sub_epi64(w, grid.to_fixed(step, ok));
  if (ok != 0xff) return false;
  store64(v_p, i, v);
  store64(w_p, i, w);
  store64(grid.head, i, x);
  if (out) store(out, i, grid.to_double(w));
  return true;
}

/// The reverse of the weight half for parameters i … i+7 (ExactSgd::reverse_w_fused's body):
///   w ← w + fixed(α v), writing w (w_out) and v (v_out) as values where asked.
template <class T>
inline bool reverse_w_block(const Grid& grid, const std::int64_t* v_p, std::int64_t* w_p, const T* alpha,
                            std::int64_t alpha_stride, T* w_out, T* v_out, std::int64_t i) {
  const __m512d vi = grid.to_double(load64(v_p, i));
  __mmask8 ok = 0xff;
  const __m512i w = _mm512_add_epi64(load64(w_p, i), grid.to_fixed(_mm512_mul_pd(load(alpha, alpha_stride, i), vi), ok));
  if (ok != 0xff) return false;
  store64(w_p, i, w);
  if (w_out) store(w_out, i, grid.to_double(w));
  if (v_out) store(v_out, i, vi);
  return true;
}

/// The reverse of the velocity half for parameters i … i+7 (ExactSgd::reverse_v_fused's body):
///   v ← v − fixed(g + μ w);   v ← v·d/n exactly: push(v mod n, n), v ← ⌊v/n⌋·d + pop(d)
/// False, with nothing written, where the scalar code must run the block (including any lane
/// whose ⌊v/n⌋·d might not fit 64 bits: the scalar code checks that exactly).
template <class T>
inline bool reverse_v_block(const Grid& grid, const Divisor& by_d, const Divisor& by_n, std::int64_t* v_p,
                            const std::int64_t* w_p, const T* g, const T* mu, std::int64_t mu_stride, T* out,
                            std::int64_t i) {
  __m512i v = load64(v_p, i), x = load64(grid.head, i);
  if (_mm512_cmpge_epu64_mask(x, grid.limit_n)) return false;
  __mmask8 ok = 0xff;
  const __m512d gx = _mm512_fmadd_pd(load(mu, mu_stride, i), grid.to_double(load64(w_p, i)), load(g, 1, i));
  v = _mm512_sub_epi64(v, grid.to_fixed(gx, ok));
  __m512i q, r;
  by_n.floor_div(v, q, r);
  // |q| < 2^46 and d ≤ 2^16: q·d + digit fits 64 bits; larger q goes to the scalar check.
  ok &= _mm512_cmplt_epi64_mask(_mm512_abs_epi64(q), _mm512_set1_epi64(std::int64_t{1} << 46));
  x = _mm512_add_epi64(_mm512_mullo_epi64(x, by_n.divisor()), r);  // push(r, n)
  const __m512i popped = by_d.quotient(x);                          // pop(d)
  const __m512i digit = _mm512_sub_epi64(x, _mm512_mullo_epi64(popped, by_d.divisor()));
  x = popped;
  if (_mm512_cmplt_epu64_mask(x, grid.low)) return false;
  v = _mm512_add_epi64(_mm512_mullo_epi64(q, by_d.divisor()), digit);
  ok &= _mm512_cmplt_epi64_mask(_mm512_abs_epi64(v), _mm512_set1_epi64(std::int64_t{1} << 62));
  if (ok != 0xff) return false;
  store64(v_p, i, v);
  store64(grid.head, i, x);
  if (out) store(out, i, grid.to_double(v));
  return true;
}

}  // namespace gradhpo::hpo::lanes

#endif
