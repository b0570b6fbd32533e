#include "batchnorm.h"

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <utility>
#include <vector>

#include "../backend.h"
#include "../kernels/cpu.h"
#include "../kernels/packet.h"
#include "channel.h"
#include "elementwise.h"

namespace gradhpo {
namespace {

/// x viewed as [N, C, R]; a channel's values are the N rows (n, c) of R elements.
struct Layout {
  std::int64_t N, C, R;
  std::int64_t m() const { return N * R; }
  std::int64_t numel() const { return N * C * R; }
  /// Offset of row (sample, c); tangent blocks [K, N, C, R] use sample = k·N + n.
  std::int64_t row(std::int64_t sample, std::int64_t c) const { return (sample * C + c) * R; }
};
Layout layout(const Shape& s) { return {s[0], s[1], s.numel() / std::max<std::int64_t>(s[0] * s[1], 1)}; }

// Row sums, vectorized by hand (a plain `sum += x[r]` loop is not vectorized without
// -ffast-math). Rows are reduced in T, rows accumulated in double. The order of the terms
// depends on the row's length alone: packets from element 0 into two sums, their lanes added in
// order, then the tail. (Eigen's reductions start at the first aligned element, so the same
// numbers at another address, such as a masked copy of a row in a scratch buffer, could round
// differently.)
template <class T> using Row = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>;
namespace ei = Eigen::internal;
/// Σ_r term(r) over r < R, where term(r, P{}) is the packet of terms from r and term(r, T{}) the
/// term at r.
template <class T, class Term> double row_reduce(std::int64_t R, Term&& term) {
  using P = kernels::FullPacket<T>;
  constexpr std::int64_t V = kernels::kLanes<P>;
  P s0 = ei::pset1<P>(T(0)), s1 = s0;
  std::int64_t r = 0;
  for (; r + 2 * V <= R; r += 2 * V) {
    s0 = ei::padd(s0, term(r, P{}));
    s1 = ei::padd(s1, term(r + V, P{}));
  }
  if (r + V <= R) s0 = ei::padd(s0, term(r, P{})), r += V;
  T sum = kernels::sum_lanes<T>(ei::padd(s0, s1));
  for (; r < R; ++r) sum += term(r, T{});
  return static_cast<double>(sum);
}
template <class T> double row_sum(const T* a, std::int64_t R) {
  return row_reduce<T>(R, [a](std::int64_t r, auto as) {
    if constexpr (std::is_same_v<decltype(as), T>) return a[r];
    else return ei::ploadu<decltype(as)>(a + r);
  });
}
template <class T> double row_dot(const T* a, const T* b, std::int64_t R) {
  return row_reduce<T>(R, [a, b](std::int64_t r, auto as) {
    if constexpr (std::is_same_v<decltype(as), T>) return a[r] * b[r];
    else return ei::pmul(ei::ploadu<decltype(as)>(a + r), ei::ploadu<decltype(as)>(b + r));
  });
}

int channel_threads(const Layout& L, std::int64_t K) {
#ifdef _OPENMP
  if ((K + 1) * L.numel() < kernels::kParallelGrain || L.C < 2 || omp_in_parallel()) return 1;
  return static_cast<int>(std::min<std::int64_t>(omp_get_max_threads(), L.C));
#else
  (void)L, (void)K;
  return 1;
#endif
}

// ---- kernels: each parallel over channels, sums in double --------------------------------------
// Synchronized batch norm (Tape::shard_sum): every process holds a shard of the batch, and each
// channel sum below is the whole batch's — this process's sums of every channel, summed over
// the shards by one call of the hook — with m the whole batch's count. A rule's formulas are
// linear in its channel sums, so each process computes its own rows of the whole batch's
// result. Without the hook each channel's sums are used at once, while its rows are in cache.

using ShardSum = Tape::ShardSum;

/// For every channel c, `sums(c, out)` writes its `width` sums to out, and `apply(c, sums)`
/// uses them; parallel over channels. With `sync`, every channel's sums are summed over the
/// shards between the two (one call of the hook).
template <class Sums, class Apply>
void channel_sums_then(const Layout& L, int threads, std::int64_t width, const ShardSum* sync, Sums&& sums,
                       Apply&& apply) {
  (void)threads;
  if (!sync) {
    // One buffer per thread, not one per channel: this runs in every training step's batch norm.
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
      std::vector<double> v(static_cast<std::size_t>(width));
#pragma omp for schedule(static)
      for (std::int64_t c = 0; c < L.C; ++c) {
        sums(c, v.data());
        apply(c, static_cast<const double*>(v.data()));
      }
    }
    return;
  }
  std::vector<double> all(static_cast<std::size_t>(L.C * width));
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
  for (std::int64_t c = 0; c < L.C; ++c) sums(c, all.data() + c * width);
  (*sync)(all.data(), static_cast<std::int64_t>(all.size()));
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
  for (std::int64_t c = 0; c < L.C; ++c) apply(c, static_cast<const double*>(all.data() + c * width));
}

/// x̂, s = 1/sqrt(σ² + eps), μ and the biased σ², per channel; with gamma, beta and y given,
/// also y = γ x̂ + β in the same pass (batch_norm_train's value), and then xh may be null (a
/// value in plain mode, which keeps no x̂ for a backward pass). Returns m, the values per
/// channel of the batch (with `sync`, of every shard: the statistics are the whole batch's).
template <class T>
double standardize_value(const Layout& L, const T* x, double eps, T* xh, T* s, T* mean, T* var,
                         const T* gamma = nullptr, const T* beta = nullptr, T* y = nullptr, bool relu = false,
                         const ShardSum* sync = nullptr) {
  auto sum_of = [&](std::int64_t c) {
    double sum = 0;
    for (std::int64_t n = 0; n < L.N; ++n) sum += row_sum(x + L.row(n, c), L.R);
    return sum;
  };
  auto squares_about = [&](std::int64_t c, double mu) {
    double ss = 0;  // two passes: Σ (x − μ)² does not cancel like Σ x² − m μ² would
    for (std::int64_t n = 0; n < L.N; ++n)
      ss += static_cast<double>((Row<T>(x + L.row(n, c), L.R) - static_cast<T>(mu)).square().sum());
    return ss;
  };
  auto finish = [&](std::int64_t c, double mu, double v) {
    const double sc = 1.0 / std::sqrt(v + eps);
    const T tm = static_cast<T>(mu), ts = static_cast<T>(sc);
    for (std::int64_t n = 0; n < L.N; ++n) {
      const T* xr = x + L.row(n, c);
      T* yr = xh ? xh + L.row(n, c) : nullptr;
      if (y) {
        const T gc = gamma[c], bc = beta[c];
        T* out = y + L.row(n, c);
        // relu as kernels::unary computes it (Relu::value), so the fused value has its bits.
        auto act = [relu](T z) { return relu ? (z > T(0) ? z : T(0)) : z; };
        if (!yr) {
          for (std::int64_t r = 0; r < L.R; ++r) out[r] = act((xr[r] - tm) * ts * gc + bc);
          continue;
        }
        for (std::int64_t r = 0; r < L.R; ++r) {
          const T h = (xr[r] - tm) * ts;
          yr[r] = h;
          out[r] = act(h * gc + bc);
        }
        continue;
      }
      for (std::int64_t r = 0; r < L.R; ++r) yr[r] = (xr[r] - tm) * ts;
    }
    s[c] = ts;
    mean[c] = tm;
    var[c] = static_cast<T>(v);
  };
  [[maybe_unused]] const int threads = channel_threads(L, 0);
  if (!sync) {
    const double m = static_cast<double>(L.m());
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
    for (std::int64_t c = 0; c < L.C; ++c) {
      const double mu = sum_of(c) / m;
      finish(c, mu, squares_about(c, mu) / m);
    }
    return m;
  }
  // The whole batch's: Σ x with the count (one call), then Σ (x − μ)² about the whole batch's μ.
  std::vector<double> sums(static_cast<std::size_t>(L.C + 1)), mu(static_cast<std::size_t>(L.C));
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
  for (std::int64_t c = 0; c < L.C; ++c) sums[static_cast<std::size_t>(c)] = sum_of(c);
  sums[static_cast<std::size_t>(L.C)] = static_cast<double>(L.m());
  (*sync)(sums.data(), L.C + 1);
  const double m = sums[static_cast<std::size_t>(L.C)];
  for (std::int64_t c = 0; c < L.C; ++c) mu[static_cast<std::size_t>(c)] = sums[static_cast<std::size_t>(c)] / m;
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
  for (std::int64_t c = 0; c < L.C; ++c) sums[static_cast<std::size_t>(c)] = squares_about(c, mu[static_cast<std::size_t>(c)]);
  (*sync)(sums.data(), L.C);
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
  for (std::int64_t c = 0; c < L.C; ++c)
    finish(c, mu[static_cast<std::size_t>(c)], sums[static_cast<std::size_t>(c)] / m);
  return m;
}

/// x̂̇_k = s (ẋ_k − mean(ẋ_k) − x̂ mean(x̂ ẋ_k)) for the K directions; the means over m values
/// per channel (with `sync`, the whole batch's).
template <class T>
void standardize_tangent(const Layout& L, std::int64_t K, const T* xh, const T* s, const T* xt, T* out, double m,
                         const ShardSum* sync) {
  auto sums = [&](std::int64_t c, double* v) {  // per direction: Σ ẋ_k, Σ x̂ ẋ_k
    for (std::int64_t k = 0; k < K; ++k) {
      double sum = 0, dot = 0;
      for (std::int64_t n = 0; n < L.N; ++n) {
        const T* tr = xt + L.row(k * L.N + n, c);
        sum += row_sum(tr, L.R);
        dot += row_dot(xh + L.row(n, c), tr, L.R);
      }
      v[2 * k] = sum;
      v[2 * k + 1] = dot;
    }
  };
  auto apply = [&](std::int64_t c, const double* v) {
    for (std::int64_t k = 0; k < K; ++k) {
      const T mt = static_cast<T>(v[2 * k] / m), a = static_cast<T>(v[2 * k + 1] / m), sc = s[c];
      for (std::int64_t n = 0; n < L.N; ++n) {
        const T* tr = xt + L.row(k * L.N + n, c);
        const T* hr = xh + L.row(n, c);
        T* o = out + L.row(k * L.N + n, c);
        for (std::int64_t r = 0; r < L.R; ++r) o[r] = sc * (tr[r] - mt - hr[r] * a);
      }
    }
  };
  channel_sums_then(L, channel_threads(L, K), 2 * K, sync, sums, apply);
}

/// Σ ḡ and Σ x̂ ḡ over channel c (every row of it): the two sums a standardization's adjoint needs.
/// With `active` given (a fused relu's output y), ḡ counts only where y > 0: each row of ḡ [y > 0]
/// is formed in `row` (R elements, in L1) and summed as a row of ḡ is, so the sums have the bits
/// of relu's adjoint followed by batch norm's.
template <class T>
std::pair<double, double> adjoint_sums(const Layout& L, std::int64_t c, const T* xh, const T* g,
                                       const T* active = nullptr, T* row = nullptr) {
  double sg = 0, shg = 0;
  for (std::int64_t n = 0; n < L.N; ++n) {
    const std::int64_t at = L.row(n, c);
    const T* gr = g + at;
    if (active) {
      for (std::int64_t r = 0; r < L.R; ++r) row[r] = active[at + r] > T(0) ? gr[r] : T(0);
      gr = row;
    }
    sg += row_sum(gr, L.R);
    shg += row_dot(xh + at, gr, L.R);
  }
  return {sg, shg};
}

/// x̄ = s (ḡ − mean(ḡ) − x̂ b), b = mean(x̂ ḡ), and for each direction k
/// x̄̇ = −s a x̄ + s (ġ − mean(ġ) − x̂ mean(x̂ ġ)) − s (b x̂̇ + x̂ mean(x̂̇ ḡ)),  a = mean(x̂ ẋ).
/// gt (ġ), xt (ẋ) and xht (x̂̇) may each be null (zero). Means over m values per channel (with
/// `sync`, the whole batch's).
template <class T>
void standardize_backward(const Layout& L, std::int64_t K, const T* xh, const T* s, const T* g, const T* gt,
                          const T* xt, const T* xht, T* xb, T* xbt, double m, const ShardSum* sync) {
  // v[0], v[1]: Σ ḡ, Σ x̂ ḡ; then per direction Σ x̂ẋ, Σ x̂̇ḡ, Σ ġ, Σ x̂ġ.
  auto sums = [&](std::int64_t c, double* v) {
    const auto [sg, shg] = adjoint_sums(L, c, xh, g);
    v[0] = sg;
    v[1] = shg;
    for (std::int64_t k = 0; k < K; ++k) {
      double s_hx = 0, s_htg = 0, s_gt = 0, s_hgt = 0;
      for (std::int64_t n = 0; n < L.N; ++n) {
        const std::int64_t at = L.row(n, c), t = L.row(k * L.N + n, c);
        if (xt) s_hx += row_dot(xh + at, xt + t, L.R);
        if (xht) s_htg += row_dot(xht + t, g + at, L.R);
        if (gt) {
          s_gt += row_sum(gt + t, L.R);
          s_hgt += row_dot(xh + at, gt + t, L.R);
        }
      }
      double* d = v + 2 + 4 * k;
      d[0] = s_hx, d[1] = s_htg, d[2] = s_gt, d[3] = s_hgt;
    }
  };
  auto apply = [&](std::int64_t c, const double* v) {
    const T mg = static_cast<T>(v[0] / m), b = static_cast<T>(v[1] / m), sc = s[c];
    for (std::int64_t n = 0; n < L.N; ++n) {
      const T* gr = g + L.row(n, c);
      const T* hr = xh + L.row(n, c);
      T* o = xb + L.row(n, c);
      for (std::int64_t r = 0; r < L.R; ++r) o[r] = sc * (gr[r] - mg - hr[r] * b);
    }
    for (std::int64_t k = 0; k < K; ++k) {
      const double* d = v + 2 + 4 * k;
      const T a = static_cast<T>(d[0] / m), e = static_cast<T>(d[1] / m);
      const T mgt = static_cast<T>(d[2] / m), f = static_cast<T>(d[3] / m);
      for (std::int64_t n = 0; n < L.N; ++n) {
        const std::int64_t at = L.row(n, c), t = L.row(k * L.N + n, c);
        Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>> out(xbt + t, L.R);
        out = (-sc * a) * Row<T>(xb + at, L.R) - (sc * (e + f)) * Row<T>(xh + at, L.R);
        if (gt) out += sc * (Row<T>(gt + t, L.R) - mgt);
        if (xht) out -= (sc * b) * Row<T>(xht + t, L.R);
      }
    }
  };
  channel_sums_then(L, channel_threads(L, K), 2 + 4 * K, sync, sums, apply);
}

/// batch_norm_train's gradient (no tangents) in two passes over ḡ: per channel Σḡ and Σ x̂ḡ
/// (β̄ and γ̄), then x̄ = s γ (ḡ − mean(ḡ) − x̂ mean(x̂ ḡ)) — standardize_backward of the adjoint
/// γ ḡ that x̂ receives, with γ taken out of the sums. xb, gb, bb may each be null (not needed).
/// With `active` (batch_norm_relu_train's output y), ḡ is relu's adjoint ḡ [y > 0], taken in
/// the same two passes. With `sync`, β̄ and γ̄ stay this shard's (data-parallel training sums the
/// gradients over the shards) while x̄'s means are the whole batch's, over m values per channel.
template <class T>
void norm_backward(const Layout& L, const T* xh, const T* s, const T* gamma, const T* g, T* xb, T* gb, T* bb,
                   const T* active, double m, const ShardSum* sync) {
  auto sums = [&](std::int64_t c, double* v) {
    std::vector<T> row(static_cast<std::size_t>(active ? L.R : 0));
    const auto [sg, shg] = adjoint_sums(L, c, xh, g, active, row.data());
    if (gb) gb[c] = static_cast<T>(shg);
    if (bb) bb[c] = static_cast<T>(sg);
    v[0] = sg;
    v[1] = shg;
  };
  auto apply = [&](std::int64_t c, const double* v) {
    if (!xb) return;
    const T mg = static_cast<T>(v[0] / m), b = static_cast<T>(v[1] / m), sc = s[c] * gamma[c];
    for (std::int64_t n = 0; n < L.N; ++n) {
      const T* gr = g + L.row(n, c);
      const T* hr = xh + L.row(n, c);
      T* o = xb + L.row(n, c);
      if (active) {
        const T* yr = active + L.row(n, c);
        for (std::int64_t r = 0; r < L.R; ++r) o[r] = sc * ((yr[r] > T(0) ? gr[r] : T(0)) - mg - hr[r] * b);
        continue;
      }
      for (std::int64_t r = 0; r < L.R; ++r) o[r] = sc * (gr[r] - mg - hr[r] * b);
    }
  };
  // Without x̄ no means are needed: nothing to sum over the shards.
  channel_sums_then(L, channel_threads(L, 0), 2, xb ? sync : nullptr, sums, apply);
}

// ---- the primitive ------------------------------------------------------------------------------
// Node: input x; output x̂; StandardizePayload (s = inv_std [C], the batch's extent).

/// The shard sum a node's rules take their channel sums with: the tape's, when the node's
/// statistics were the whole data-parallel batch's; null otherwise.
const ShardSum* shard_sum_of(const Tape& t, const BatchExtent& batch, const char* op) {
  if (!batch.synchronized) return nullptr;
  GRADHPO_CHECK(static_cast<bool>(t.shard_sum()),
                std::string(op) + ": recorded with synchronized batch statistics (Tape::shard_sum), but the tape has "
                                  "no shard sum for its derivatives (was it unset in between?)");
  return &t.shard_sum();
}

/// x̂̇ for the K directions xt [K, numel] of x, given x̂ and s, over the batch `batch`.
Tensor standardized_tangent(const Tensor& xh, const Tensor& s, const Tensor& xt, double m, const ShardSum* sync) {
  const Layout L = layout(xh.shape());
  const std::int64_t K = xt.dim(0);
  Tensor out = Tensor::empty(Shape{K, L.numel()}, xh.dtype(), xh.device());
  if (const DeviceBackend* dev = sync ? nullptr : offload("batch_standardize", xt)) {
    dev->standardize_tangent(xh, s, xt, out);
    return out;
  }
  dispatch_float(xh.dtype(), "batch_standardize", [&](auto zero) {
    using T = decltype(zero);
    standardize_tangent<T>(L, K, xh.data<T>(), s.data<T>(), xt.data<T>(), out.data<T>(), m, sync);
  });
  return out;
}

Tensor standardize_tangent_rule(const Tape& t, const Node& n) {
  const Tensor& xt = t.node_at(t.input_id(n, 0)).tangent;
  if (!xt.defined()) return {};
  const StandardizePayload& p = n.payload_as<StandardizePayload>();
  return standardized_tangent(n.value, p.inv_std, xt, p.batch.count, shard_sum_of(t, p.batch, "batch_standardize"));
}

void standardize_backward_rule(Tape& t, const Node& n, const Dual& g) {
  if (!t.needs_adjoint(n, 0)) return;
  const Dual x = t.input(n, 0), y = t.output(n);
  const StandardizePayload& p = n.payload_as<StandardizePayload>();
  const Tensor& s = p.inv_std;
  const ShardSum* sync = shard_sum_of(t, p.batch, "batch_standardize");
  const Layout L = layout(n.value.shape());
  const std::int64_t K = std::max({g.K(), x.K(), y.K()});
  Dual xb(Tensor::empty(n.value.shape(), n.value.dtype(), n.value.device()));
  if (K > 0) xb.tangent = Tensor::empty(Shape{K, L.numel()}, n.value.dtype(), n.value.device());
  if (const DeviceBackend* dev = sync ? nullptr : offload("batch_standardize", n.value, g.value)) {
    dev->standardize_backward(n.value, s, g.value, g.tangent, x.tangent, y.tangent, xb.value, xb.tangent);
    return t.accumulate(n, 0, std::move(xb));
  }
  dispatch_float(n.value.dtype(), "batch_standardize", [&](auto zero) {
    using T = decltype(zero);
    auto tan = [](const Dual& d) { return d.has_tangent() ? d.tangent.data<T>() : nullptr; };
    standardize_backward<T>(L, K, n.value.data<T>(), s.data<T>(), g.value.data<T>(), tan(g), tan(x), tan(y),
                            xb.value.data<T>(), K > 0 ? xb.tangent.data<T>() : nullptr, p.batch.count, sync);
  });
  t.accumulate(n, 0, std::move(xb));
}

const OpRules kStandardizeRules = {"batch_standardize", standardize_tangent_rule, standardize_backward_rule,
                                   1u | kReadsOutput};

// ---- batch_norm_train as one primitive --------------------------------------------------------
// y = γ x̂ + β, x̂ = (x − μ) s: the composition channel_affine(batch_standardize(x), γ, β) in one
// node, so that its gradient reads ḡ in two passes (norm_backward) instead of five (x̂̄ = γḡ, γ̄,
// β̄, then standardize's sums and its x̄), and its value is written in one pass with x̂. With
// tangents the rules are the composition's, term by term.
// Node: inputs x, γ, β; output y; BatchNormPayload (s = inv_std [C], x̂ = standardized (none in
// plain mode), fused_relu for batch_norm_relu_train).

// batch_norm_relu_train (fused_relu) is relu of that in the same node: y = relu(z), z = γ x̂ + β.
// relu' = [z > 0] = [y > 0] and relu'' = 0, so its rules are batch_norm_train's with the
// tangent masked (ẏ = ż [y > 0]) and the adjoint masked first (z̄ = ḡ [y > 0], and its tangent
// ġ [y > 0]), as the relu primitive masks them (elementwise.cpp); its gradient takes the mask
// inside norm_backward's two passes, so no z̄ is written.
Tensor norm_tangent_rule(const Tape& t, const Node& n) {
  // ẏ = γ x̂̇ + γ̇ x̂ + β̇ (times [y > 0] with the fused relu)
  const BatchNormPayload& p = n.payload_as<BatchNormPayload>();
  const Tensor& xt = t.node_at(t.input_id(n, 0)).tangent;
  Dual xh(p.standardized);
  if (xt.defined())
    xh.tangent = standardized_tangent(p.standardized, p.inv_std, xt, p.batch.count, shard_sum_of(t, p.batch, n.rules->name));
  const Node& gn = t.node_at(t.input_id(n, 1));
  const Node& bn = t.node_at(t.input_id(n, 2));
  const Dual gamma(gn.value, gn.tangent), beta(bn.value, bn.tangent);
  Tensor tangent = dual::channel_affine(xh, &gamma, &beta).tangent;
  if (p.fused_relu && tangent.defined()) tangent = kernels::relu_backward(tangent, n.value);
  return tangent;
}

/// relu's adjoint: ḡ [y > 0], and its tangent ġ [y > 0] (relu'' = 0).
Dual relu_adjoint(const Dual& g, const Tensor& y) {
  Dual z(kernels::relu_backward(g.value, y));
  if (g.has_tangent()) z.tangent = kernels::relu_backward(g.tangent, y);
  return z;
}

void norm_backward_rule(Tape& t, const Node& n, const Dual& adjoint) {
  const bool need_x = t.needs_adjoint(n, 0), need_gamma = t.needs_adjoint(n, 1), need_beta = t.needs_adjoint(n, 2);
  const Dual x = t.input(n, 0), gamma = t.input(n, 1);
  const BatchNormPayload& p = n.payload_as<BatchNormPayload>();
  const ShardSum* sync = shard_sum_of(t, p.batch, n.rules->name);
  const Layout L = layout(n.value.shape());
  const std::int64_t K = std::max({adjoint.K(), x.K(), gamma.K()});
  // With the fused relu: with tangents its adjoint first; without, the mask goes into
  // norm_backward's two passes instead.
  const bool relu = p.fused_relu;
  const Dual g = relu && K > 0 ? relu_adjoint(adjoint, n.value) : adjoint;
  const DType dt = n.value.dtype();
  if (K == 0) {
    Dual xb, gb, bb;
    if (need_x) xb.value = Tensor::empty(n.value.shape(), dt);
    if (need_gamma) gb.value = Tensor::empty(gamma.value.shape(), dt);
    if (need_beta) bb.value = Tensor::empty(gamma.value.shape(), dt);
    dispatch_float(dt, n.rules->name, [&](auto zero) {
      using T = decltype(zero);
      auto ptr = [](Dual& d) { return d.value.defined() ? d.value.data<T>() : nullptr; };
      norm_backward<T>(L, p.standardized.data<T>(), p.inv_std.data<T>(), gamma.value.data<T>(), g.value.data<T>(),
                       ptr(xb), ptr(gb), ptr(bb), relu ? n.value.data<T>() : nullptr, p.batch.count, sync);
    });
    if (need_x) t.accumulate(n, 0, std::move(xb));
    if (need_gamma) t.accumulate(n, 1, std::move(gb));
    if (need_beta) t.accumulate(n, 2, std::move(bb));
    return;
  }
  // Forward-over-reverse: channel_affine's rules, then standardize's, with x̂̇ recomputed.
  Dual xh(p.standardized);
  if (x.has_tangent()) xh.tangent = standardized_tangent(p.standardized, p.inv_std, x.tangent, p.batch.count, sync);
  if (need_gamma) t.accumulate(n, 1, dual::channel_dot(g, xh));  // γ̄ = Σ ḡ x̂
  if (need_beta) t.accumulate(n, 2, dual::channel_sum(g));       // β̄ = Σ ḡ
  if (!need_x) return;
  const Dual h = dual::channel_affine(g, &gamma, nullptr);  // x̂̄ = γ ḡ
  Dual xb(Tensor::empty(n.value.shape(), dt));
  xb.tangent = Tensor::empty(Shape{K, L.numel()}, dt);
  dispatch_float(dt, n.rules->name, [&](auto zero) {
    using T = decltype(zero);
    auto tan = [](const Dual& d) { return d.has_tangent() ? d.tangent.data<T>() : nullptr; };
    standardize_backward<T>(L, K, p.standardized.data<T>(), p.inv_std.data<T>(), h.value.data<T>(), tan(h), tan(x),
                            tan(xh), xb.value.data<T>(), xb.tangent.data<T>(), p.batch.count, sync);
  });
  t.accumulate(n, 0, std::move(xb));
}

// Reads x (ẋ, for x̂̇) and γ (γ̇) as duals; β and y only as values.
const OpRules kBatchNormRules = {"batch_norm_train", norm_tangent_rule, norm_backward_rule, 0b011};
const OpRules kBatchNormReluRules = {"batch_norm_relu_train", norm_tangent_rule, norm_backward_rule, 0b011};
GRADHPO_REGISTER_OPS(&kStandardizeRules, &kBatchNormRules, &kBatchNormReluRules);

void check_x(const char* op, const Shape& x, DType d) {
  GRADHPO_CHECK(x.ndim() == 2 || x.ndim() == 4, std::string(op) + ": expected x [N, C, H, W] or [N, C], got " + x.str());
  GRADHPO_CHECK(d == DType::f32 || d == DType::f64, std::string(op) + ": expected float32 or float64, got " + dtype_name(d));
}

void check_channel_vector(const char* op, const char* what, const Shape& x, DType xd, const Tensor& v) {
  GRADHPO_CHECK(v.ndim() == 1 && v.numel() == x[1], std::string(op) + ": " + what + " of shape " + v.shape().str() +
                                                  " for x of shape " + x.str() + " (expected [" +
                                                  std::to_string(x[1]) + "])");
  GRADHPO_CHECK(v.dtype() == xd, std::string(op) + ": mixed dtypes: x is " + dtype_name(xd) + ", " + what + " is " +
                               dtype_name(v.dtype()));
}

/// The layout of x for batch statistics, checked: at least two values per channel (with
/// synchronized statistics, one per shard: the whole batch's count is checked once summed), eps ≥ 0.
Layout batch_layout(const char* op, const Var& x, double eps, bool synchronized) {
  const Layout L = layout(x.shape());
  GRADHPO_CHECK(L.m() >= (synchronized ? 1 : 2),
                std::string(op) + ": batch statistics need more than one value per channel, got x of shape " +
                    x.shape().str() + (synchronized ? " (a shard of a synchronized batch needs one)" : ""));
  GRADHPO_CHECK(eps >= 0, std::string(op) + ": eps must be ≥ 0, got " + std::to_string(eps));
  return L;
}

/// The tape's shard sum when x's statistics are to be the whole data-parallel batch's; null
/// otherwise. Synchronized statistics are summed through host memory: on the CPU only.
const ShardSum* synchronized_by(const Tape& t, const char* op, const Var& x) {
  if (!t.shard_sum()) return nullptr;
  GRADHPO_CHECK(x.device() == Device::cpu, std::string(op) + ": synchronized batch statistics (Tape::shard_sum) run "
                                                              "on the CPU; x is on a device");
  return &t.shard_sum();
}

/// The batch's extent after standardize_value returned its count m: checked when summed over shards.
BatchExtent batch_extent(const char* op, double m, const ShardSum* sync) {
  GRADHPO_CHECK(m >= 2, std::string(op) + ": synchronized batch statistics need more than one value per channel "
                                          "over all shards, got " + std::to_string(m));
  return {m, sync != nullptr};
}

/// Hands the batch mean and the unbiased batch variance (m/(m−1) σ²) to the caller who asked.
void report_batch_statistics(double m, const Tensor& mean, const Tensor& var, Tensor* batch_mean, Tensor* batch_var) {
  if (batch_mean) *batch_mean = mean;
  if (batch_var) *batch_var = kernels::affine(var, m / (m - 1), 0.0);
}

}  // namespace

Var batch_standardize(const Var& x, double eps, Tensor* batch_mean, Tensor* batch_var) {
  Tape& t = x.tape();
  t.check(x, "batch_standardize");
  check_x("batch_standardize", x.shape(), x.dtype());
  const ShardSum* sync = synchronized_by(t, "batch_standardize", x);
  const Layout L = batch_layout("batch_standardize", x, eps, sync != nullptr);
  double m = static_cast<double>(L.m());
  const Device device = x.device();
  Tensor y = Tensor::empty(x.shape(), x.dtype(), device);
  Tensor s = Tensor::empty(Shape{L.C}, x.dtype(), device);
  Tensor mean = Tensor::empty(Shape{L.C}, x.dtype(), device);
  Tensor var = Tensor::empty(Shape{L.C}, x.dtype(), device);
  if (const DeviceBackend* dev = offload("batch_standardize", x.value())) {
    dev->standardize(x.value(), eps, y, s, mean, var);
  } else {
    dispatch_float(x.dtype(), "batch_standardize", [&](auto zero) {
      using T = decltype(zero);
      m = standardize_value<T>(L, x.value().data<T>(), eps, y.data<T>(), s.data<T>(), mean.data<T>(), var.data<T>(),
                               nullptr, nullptr, nullptr, false, sync);
    });
  }
  const BatchExtent batch = batch_extent("batch_standardize", m, sync);
  report_batch_statistics(m, mean, var, batch_mean, batch_var);
  return t.record(&kStandardizeRules, std::move(y), {x}, StandardizePayload{std::move(s), batch});
}

namespace {

Var norm_train(const char* op, bool relu, const Var& x, const Var& gamma, const Var& beta, double eps,
               Tensor* batch_mean, Tensor* batch_var) {
  Tape& t = x.tape();
  t.check(x, op);
  t.check(gamma, op);
  t.check(beta, op);
  check_x(op, x.shape(), x.dtype());
  check_channel_vector(op, "gamma", x.shape(), x.dtype(), gamma.value());
  check_channel_vector(op, "beta", x.shape(), x.dtype(), beta.value());
  // On a device: the composition, whose primitives the device backend implements.
  if (x.device() != Device::cpu || gamma.value().device() != Device::cpu || beta.value().device() != Device::cpu) {
    const Var y = channel_affine(batch_standardize(x, eps, batch_mean, batch_var), gamma, beta);
    return relu ? gradhpo::relu(y) : y;
  }
  const ShardSum* sync = synchronized_by(t, op, x);
  const Layout L = batch_layout((std::string(op) + " (its batch_standardize)").c_str(), x, eps, sync != nullptr);
  double m = 0;
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  // x̂ is kept for the rules only: plain mode records none.
  Tensor xh = t.recording() ? Tensor::empty(x.shape(), x.dtype()) : Tensor();
  Tensor s = Tensor::empty(Shape{L.C}, x.dtype());
  Tensor mean = Tensor::empty(Shape{L.C}, x.dtype());
  Tensor var = Tensor::empty(Shape{L.C}, x.dtype());
  dispatch_float(x.dtype(), op, [&](auto zero) {
    using T = decltype(zero);
    m = standardize_value<T>(L, x.value().data<T>(), eps, xh.defined() ? xh.data<T>() : nullptr, s.data<T>(),
                             mean.data<T>(), var.data<T>(), gamma.value().data<T>(), beta.value().data<T>(),
                             y.data<T>(), relu, sync);
  });
  const BatchExtent batch = batch_extent(op, m, sync);
  report_batch_statistics(m, mean, var, batch_mean, batch_var);
  return t.record(relu ? &kBatchNormReluRules : &kBatchNormRules, std::move(y), {x, gamma, beta},
                  BatchNormPayload{std::move(s), std::move(xh), batch, relu});
}

}  // namespace

Var batch_norm_train(const Var& x, const Var& gamma, const Var& beta, double eps, Tensor* batch_mean,
                     Tensor* batch_var) {
  return norm_train("batch_norm_train", false, x, gamma, beta, eps, batch_mean, batch_var);
}

Var batch_norm_relu_train(const Var& x, const Var& gamma, const Var& beta, double eps, Tensor* batch_mean,
                          Tensor* batch_var) {
  return norm_train("batch_norm_relu_train", true, x, gamma, beta, eps, batch_mean, batch_var);
}

// y = x ⊙ (γ s) + (β − γ s μ_run),  s = 1/sqrt(σ²_run + eps): constants s and μ_run, so the
// composition of mul/sub/channel_affine carries every derivative.
Var batch_norm_eval(const Var& x, const Var& gamma, const Var& beta, const Tensor& running_mean,
                    const Tensor& running_var, double eps) {
  Tape& t = x.tape();
  t.check(x, "batch_norm_eval");
  t.check(gamma, "batch_norm_eval");
  t.check(beta, "batch_norm_eval");
  check_x("batch_norm_eval", x.shape(), x.dtype());
  check_channel_vector("batch_norm_eval", "gamma", x.shape(), x.dtype(), gamma.value());
  check_channel_vector("batch_norm_eval", "beta", x.shape(), x.dtype(), beta.value());
  GRADHPO_CHECK(running_mean.defined() && running_var.defined(), "batch_norm_eval: undefined running statistics");
  check_channel_vector("batch_norm_eval", "running_mean", x.shape(), x.dtype(), running_mean);
  check_channel_vector("batch_norm_eval", "running_var", x.shape(), x.dtype(), running_var);
  const Tensor inv_std = kernels::unary(kernels::UnaryOp::reciprocal,
                                        kernels::unary(kernels::UnaryOp::sqrt, kernels::affine(running_var, 1.0, eps)));
  const Var scale = mul(gamma, t.constant(inv_std));
  const Var shift = sub(beta, mul(scale, t.constant(running_mean)));
  return channel_affine(x, scale, shift);
}

}  // namespace gradhpo
