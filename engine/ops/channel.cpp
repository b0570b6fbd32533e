#include "channel.h"

#include <algorithm>
#include <vector>

#include "../backend.h"
#include "../kernels/cpu.h"

namespace gradhpo {
namespace {

/// x viewed as [N, C, R]: samples, channels, the rest (H·W, or 1 for [N, C]).
struct Layout {
  std::int64_t N, C, R;
  std::int64_t numel() const { return N * C * R; }
};
Layout layout(const Shape& s) { return {s[0], s[1], s.numel() / std::max<std::int64_t>(s[0] * s[1], 1)}; }

void check_vector(const char* op, const char* what, const Shape& x, DType xd, const Tensor& v) {
  GRADHPO_CHECK(x.ndim() >= 2, std::string(op) + ": expected x of shape [N, C, ...], got " + x.str());
  GRADHPO_CHECK(v.ndim() == 1 && v.numel() == x[1], std::string(op) + ": " + what + " of shape " + v.shape().str() +
                                                  " for x of shape " + x.str() + " (expected [" +
                                                  std::to_string(x[1]) + "])");
  GRADHPO_CHECK(v.dtype() == xd, std::string(op) + ": mixed dtypes: x is " + dtype_name(xd) + ", " + what + " is " +
                               dtype_name(v.dtype()));
}

template <class T> using ConstRow = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>;

// ---- kernels ------------------------------------------------------------------------------------

/// out[s, c, r] (+)= (x ? x[s, c, r] · (sc ? sc[c] : 1) : 0) + (sh ? sh[c] : 0) for S samples.
template <class T>
void affine_rows(T* out, const T* x, const T* sc, const T* sh, std::int64_t S, std::int64_t C, std::int64_t R,
                 bool accumulate) {
  const std::int64_t rows = S * C;
  [[maybe_unused]] const int threads = kernels::threads_for(rows * R);
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
  for (std::int64_t row = 0; row < rows; ++row) {
    const std::int64_t c = row % C;
    T* o = out + row * R;
    const T a = sc ? sc[c] : T(1), b = sh ? sh[c] : T(0);
    if (x) {
      const T* xi = x + row * R;
      if (accumulate)
        for (std::int64_t r = 0; r < R; ++r) o[r] += a * xi[r] + b;
      else
        for (std::int64_t r = 0; r < R; ++r) o[r] = a * xi[r] + b;
    } else {
      if (accumulate)
        for (std::int64_t r = 0; r < R; ++r) o[r] += b;
      else
        for (std::int64_t r = 0; r < R; ++r) o[r] = b;
    }
  }
}

/// out[g, c] (+)= Σ_{n, r} x[g, n, c, r] · (y ? y[n, c, r] : 1) for G groups of N samples;
/// sums in double, per thread, then added in thread order (reproducible).
template <class T>
void channel_reduce(const T* x, const T* y, std::int64_t G, std::int64_t N, std::int64_t C, std::int64_t R, T* out,
                    bool accumulate) {
  const std::int64_t samples = G * N;
  const int threads = static_cast<int>(std::min<std::int64_t>(kernels::threads_for(samples * C * R), samples));
  std::vector<double> partial(static_cast<std::size_t>(std::max(threads, 1) * G * C), 0.0);
  auto body = [&](int t, std::int64_t begin, std::int64_t end) {
    double* acc = partial.data() + t * G * C;
    for (std::int64_t s = begin; s < end; ++s) {
      const std::int64_t g = s / N, n = s % N;
      for (std::int64_t c = 0; c < C; ++c) {
        const T* xi = x + (s * C + c) * R;
        // Eigen's reductions are vectorized (a plain `sum += x[r]` loop is not, without
        // -ffast-math); each row is summed in T, the rows in double.
        const ConstRow<T> xr(xi, R);
        const T sum = y ? xr.matrix().dot(ConstRow<T>(y + (n * C + c) * R, R).matrix()) : xr.sum();
        acc[g * C + c] += static_cast<double>(sum);
      }
    }
  };
  if (threads <= 1) {
    body(0, 0, samples);
  } else {
#pragma omp parallel num_threads(threads)
    {
#ifdef _OPENMP
      const std::int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
#else
      const std::int64_t t = 0, nt = 1;
#endif
      body(static_cast<int>(t), samples * t / nt, samples * (t + 1) / nt);
    }
  }
  for (std::int64_t i = 0; i < G * C; ++i) {
    double s = 0;
    for (int t = 0; t < std::max(threads, 1); ++t) s += partial[static_cast<std::size_t>(t * G * C + i)];
    out[i] = accumulate ? out[i] + static_cast<T>(s) : static_cast<T>(s);
  }
}

// ---- Dual functions -----------------------------------------------------------------------------

// y = x ⊙ s + b;  ẏ = ẋ ⊙ s + x ⊙ ṡ + ḃ. Without `with_value` only the tangent is computed.
Dual affine_impl(const Dual& x, const Dual* s, const Dual* b, bool with_value) {
  if (const DeviceBackend* dev = offload("channel_affine", x.value)) return dev->channel_affine(x, s, b, with_value);
  const Layout L = layout(x.value.shape());
  const std::int64_t K = std::max({x.K(), s ? s->K() : 0, b ? b->K() : 0});
  Dual y;
  if (with_value) y.value = Tensor::empty(x.value.shape(), x.value.dtype());
  if (K > 0) y.tangent = Tensor::empty(Shape{K, L.numel()}, x.value.dtype());
  dispatch_float(x.value.dtype(), "channel_affine", [&](auto zero) {
    using T = decltype(zero);
    const T* sv = s ? s->value.data<T>() : nullptr;
    const T* bv = b ? b->value.data<T>() : nullptr;
    if (with_value) affine_rows<T>(y.value.data<T>(), x.value.data<T>(), sv, bv, L.N, L.C, L.R, false);
    if (K == 0) return;
    T* yt = y.tangent.data<T>();
    bool written = false;
    if (x.has_tangent()) {  // ẋ ⊙ s, all K·N tangent samples at once
      affine_rows<T>(yt, x.tangent.data<T>(), sv, nullptr, K * L.N, L.C, L.R, false);
      written = true;
    }
    for (std::int64_t k = 0; k < K; ++k) {
      T* yk = yt + k * L.numel();
      const T* sk = s && s->has_tangent() ? s->tangent.data<T>() + k * L.C : nullptr;
      const T* bk = b && b->has_tangent() ? b->tangent.data<T>() + k * L.C : nullptr;
      if (sk) affine_rows<T>(yk, x.value.data<T>(), sk, bk, L.N, L.C, L.R, written);  // x ⊙ ṡ (+ ḃ)
      else if (bk || !written) affine_rows<T>(yk, nullptr, nullptr, bk, L.N, L.C, L.R, written);  // ḃ (or 0)
    }
  });
  return y;
}

}  // namespace

namespace dual {

Dual channel_affine(const Dual& x, const Dual* scale, const Dual* shift) {
  if (scale) check_vector("channel_affine", "scale", x.value.shape(), x.value.dtype(), scale->value);
  if (shift) check_vector("channel_affine", "shift", x.value.shape(), x.value.dtype(), shift->value);
  return affine_impl(x, scale, shift, true);
}

Dual channel_sum(const Dual& x) {
  if (const DeviceBackend* dev = offload("channel_sum", x.value)) return dev->channel_sum(x);
  const Layout L = layout(x.value.shape());
  Dual y(Tensor::empty(Shape{L.C}, x.value.dtype()));
  if (x.has_tangent()) y.tangent = Tensor::empty(Shape{x.K(), L.C}, x.value.dtype());
  dispatch_float(x.value.dtype(), "channel_sum", [&](auto zero) {
    using T = decltype(zero);
    channel_reduce<T>(x.value.data<T>(), nullptr, 1, L.N, L.C, L.R, y.value.data<T>(), false);
    if (x.has_tangent()) channel_reduce<T>(x.tangent.data<T>(), nullptr, x.K(), L.N, L.C, L.R, y.tangent.data<T>(), false);
  });
  return y;
}

// Σ a ⊙ b;  tangent Σ ȧ ⊙ b + Σ a ⊙ ḃ.
Dual channel_dot(const Dual& a, const Dual& b) {
  GRADHPO_CHECK(a.value.shape() == b.value.shape(), "channel_dot: shapes " + a.value.shape().str() + " and " +
                                                  b.value.shape().str() + " differ");
  if (const DeviceBackend* dev = offload("channel_dot", a.value, b.value)) return dev->channel_dot(a, b);
  const Layout L = layout(a.value.shape());
  const std::int64_t K = std::max(a.K(), b.K());
  Dual y(Tensor::empty(Shape{L.C}, a.value.dtype()));
  if (K > 0) y.tangent = Tensor::empty(Shape{K, L.C}, a.value.dtype());
  dispatch_float(a.value.dtype(), "channel_dot", [&](auto zero) {
    using T = decltype(zero);
    const T* av = a.value.data<T>();
    const T* bv = b.value.data<T>();
    channel_reduce<T>(av, bv, 1, L.N, L.C, L.R, y.value.data<T>(), false);
    if (a.has_tangent()) channel_reduce<T>(a.tangent.data<T>(), bv, K, L.N, L.C, L.R, y.tangent.data<T>(), false);
    if (b.has_tangent())
      channel_reduce<T>(b.tangent.data<T>(), av, K, L.N, L.C, L.R, y.tangent.data<T>(), a.has_tangent());
  });
  return y;
}

Dual channel_broadcast(const Dual& v, const Shape& shape) {
  const Layout L = layout(shape);
  GRADHPO_CHECK(v.value.numel() == L.C, "channel_broadcast: vector of shape " + v.value.shape().str() + " for " + shape.str());
  if (const DeviceBackend* dev = offload("channel_broadcast", v.value)) return dev->channel_broadcast(v, shape);
  Dual y(Tensor::empty(shape, v.value.dtype()));
  if (v.has_tangent()) y.tangent = Tensor::empty(Shape{v.K(), L.numel()}, v.value.dtype());
  dispatch_float(v.value.dtype(), "channel_broadcast", [&](auto zero) {
    using T = decltype(zero);
    affine_rows<T>(y.value.data<T>(), nullptr, nullptr, v.value.data<T>(), L.N, L.C, L.R, false);
    for (std::int64_t k = 0; k < v.K(); ++k)
      affine_rows<T>(y.tangent.data<T>() + k * L.numel(), nullptr, nullptr, v.tangent.data<T>() + k * L.C, L.N, L.C,
                     L.R, false);
  });
  return y;
}

}  // namespace dual

namespace {

// ---- channel_affine primitive -------------------------------------------------------------------
// Node: inputs x, then scale and/or shift, in that order; ChannelAffinePayload says which.

struct Parts {
  Dual x, s, b;
  bool has_s, has_b;
  int s_index, b_index;
};
Parts parts(const Tape& t, const Node& n) {
  Parts p;
  const ChannelAffinePayload& c = n.payload_as<ChannelAffinePayload>();
  p.has_s = c.has_scale;
  p.has_b = c.has_shift;
  p.s_index = 1;
  p.b_index = p.has_s ? 2 : 1;
  p.x = t.input(n, 0);
  if (p.has_s) p.s = t.input(n, p.s_index);
  if (p.has_b) p.b = t.input(n, p.b_index);
  return p;
}

Tensor affine_tangent(const Tape& t, const Node& n) {
  const Parts p = parts(t, n);
  return affine_impl(p.x, p.has_s ? &p.s : nullptr, p.has_b ? &p.b : nullptr, false).tangent;
}

// x̄ = ḡ ⊙ s,  s̄ = Σ ḡ ⊙ x,  b̄ = Σ ḡ — each a Dual product, so tangents come along. Only the
// scaled form reads inputs (x and s); the shift never enters its own adjoint.
void affine_backward(Tape& t, const Node& n, const Dual& g) {
  const ChannelAffinePayload& c = n.payload_as<ChannelAffinePayload>();
  const bool has_s = c.has_scale, has_b = c.has_shift;
  const int b_index = has_s ? 2 : 1;
  if (has_s) {
    const Dual s = t.input(n, 1);
    if (t.needs_adjoint(n, 0)) t.accumulate(n, 0, dual::channel_affine(g, &s, nullptr));
    if (t.needs_adjoint(n, 1)) t.accumulate(n, 1, dual::channel_dot(g, t.input(n, 0)));
  } else if (t.needs_adjoint(n, 0)) {
    t.accumulate(n, 0, g);
  }
  if (has_b && t.needs_adjoint(n, b_index)) t.accumulate(n, b_index, dual::channel_sum(g));
}

const OpRules kScaledRules = {"channel_affine", affine_tangent, affine_backward, 0b11};  // reads x and s
const OpRules kShiftRules = {"channel_bias", affine_tangent, affine_backward, 0};

Var record_affine(const char* op, const Var& x, const Var* scale, const Var* shift) {
  Tape& t = x.tape();
  t.check(x, op);
  std::vector<Var> inputs{x};
  Dual sd, bd;
  if (scale) {
    t.check(*scale, op);
    check_vector(op, "scale", x.shape(), x.dtype(), scale->value());
    inputs.push_back(*scale);
    sd = Dual(scale->value());
  }
  if (shift) {
    t.check(*shift, op);
    check_vector(op, "shift", x.shape(), x.dtype(), shift->value());
    inputs.push_back(*shift);
    bd = Dual(shift->value());
  }
  Tensor y = affine_impl(Dual(x.value()), scale ? &sd : nullptr, shift ? &bd : nullptr, true).value;
  return t.record(scale ? &kScaledRules : &kShiftRules, std::move(y), inputs,
                  ChannelAffinePayload{scale != nullptr, shift != nullptr});
}

// ---- channel_sum primitive: y = Σ x;  x̄ = broadcast(ḡ) ---------------------------------------
Tensor sum_tangent(const Tape& t, const Node& n) { return dual::channel_sum(t.input(n, 0)).tangent; }
void sum_backward(Tape& t, const Node& n, const Dual& g) {
  if (t.needs_adjoint(n, 0)) t.accumulate(n, 0, dual::channel_broadcast(g, t.input_value(n, 0).shape()));
}
const OpRules kChannelSumRules = {"channel_sum", sum_tangent, sum_backward, 0};
GRADHPO_REGISTER_OPS(&kScaledRules, &kShiftRules, &kChannelSumRules);

}  // namespace

Var channel_bias(const Var& x, const Var& bias) { return record_affine("channel_bias", x, nullptr, &bias); }
Var channel_scale(const Var& x, const Var& scale) { return record_affine("channel_scale", x, &scale, nullptr); }
Var channel_affine(const Var& x, const Var& scale, const Var& shift) {
  return record_affine("channel_affine", x, &scale, &shift);
}

Var channel_sum(const Var& x) {
  Tape& t = x.tape();
  t.check(x, "channel_sum");
  GRADHPO_CHECK(x.shape().ndim() >= 2, "channel_sum: expected x of shape [N, C, ...], got " + x.shape().str());
  Tensor y = dual::channel_sum(Dual(x.value())).value;
  return t.record(&kChannelSumRules, std::move(y), {x});
}

}  // namespace gradhpo
