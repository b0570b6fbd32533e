#include "pool.h"

#include <algorithm>

#include "../backend.h"
#include "../kernels/cpu.h"
#include "reduce.h"
#include "shape.h"

namespace gradhpo {
namespace {

/// One pooling geometry: planes of H×W pooled to Ho×Wo.
struct PoolGeometry {
  std::int64_t H, W, k, s, Ho, Wo;
  std::int64_t in_plane() const { return H * W; }
  std::int64_t out_plane() const { return Ho * Wo; }
  PoolWindow window() const { return {H, W, k, s, Ho, Wo}; }
};

PoolGeometry pool_geometry(const char* op, const Shape& x, DType d, int kernel, int stride) {
  GRADHPO_CHECK(x.ndim() == 4, std::string(op) + ": expected x [N, C, H, W], got " + x.str());
  GRADHPO_CHECK(d == DType::f32 || d == DType::f64, std::string(op) + ": expected float32 or float64, got " + dtype_name(d));
  GRADHPO_CHECK(kernel >= 1 && stride >= 1, std::string(op) + ": kernel and stride must be ≥ 1, got kernel " +
                                          std::to_string(kernel) + ", stride " + std::to_string(stride));
  GRADHPO_CHECK(kernel <= x[2] && kernel <= x[3], std::string(op) + ": kernel " + std::to_string(kernel) + "×" +
                                                std::to_string(kernel) + " is larger than the input " + x.str());
  return {x[2], x[3], kernel, stride, (x[2] - kernel) / stride + 1, (x[3] - kernel) / stride + 1};
}

// ---- max pooling ---------------------------------------------------------------------------------

/// One window entry into the running maximum m at position best: strict > (ties and NaNs keep the
/// earlier entry), as a select and an arithmetic move, not a branch — which entry wins is
/// data-dependent, and mispredicted branches made max pooling 10-20% of LeNet-5's gradient (perf;
/// 5% with selects). `s ? x : m` with s = x > m is one max instruction.
template <class T> inline void take(T x, std::int32_t at, T& m, std::int32_t& best) {
  const bool s = x > m;
  m = s ? x : m;
  best += s * (at - best);
}

/// y and the argmax (flat position in the input plane) of `planes` planes.
template <class T>
void max_pool_planes(const PoolGeometry& g, std::int64_t planes, const T* x, T* y, std::int32_t* arg) {
  [[maybe_unused]] const int threads = kernels::threads_for(planes * g.in_plane());
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
  for (std::int64_t p = 0; p < planes; ++p) {
    const T* xp = x + p * g.in_plane();
    if (g.k == 2 && g.s == 2) {  // the common case, without the generic window loops (2× faster)
      for (std::int64_t oh = 0; oh < g.Ho; ++oh) {
        const T* r0 = xp + 2 * oh * g.W;
        const T* r1 = r0 + g.W;
        const std::int64_t o = p * g.out_plane() + oh * g.Wo;
        const auto w = static_cast<std::int32_t>(g.W), top = static_cast<std::int32_t>(2 * oh * g.W);
        const auto wo = static_cast<std::int32_t>(g.Wo);
        T* yr = y + o;
        std::int32_t* ar = arg + o;
        for (std::int32_t ow = 0; ow < wo; ++ow) {  // the window in row-major order
          const std::int32_t c = 2 * ow;
          T m = r0[c];
          std::int32_t best = c;
          take(r0[c + 1], c + 1, m, best);
          take(r1[c], w + c, m, best);
          take(r1[c + 1], w + c + 1, m, best);
          yr[ow] = m;
          ar[ow] = top + best;
        }
      }
      continue;
    }
    for (std::int64_t oh = 0; oh < g.Ho; ++oh)
      for (std::int64_t ow = 0; ow < g.Wo; ++ow) {
        auto best = static_cast<std::int32_t>((oh * g.s) * g.W + ow * g.s);
        T m = xp[best];
        for (std::int64_t i = 0; i < g.k; ++i)
          for (std::int64_t j = 0; j < g.k; ++j) {
            const auto at = static_cast<std::int32_t>((oh * g.s + i) * g.W + ow * g.s + j);
            take(xp[at], at, m, best);
          }
        const std::int64_t o = p * g.out_plane() + oh * g.Wo + ow;
        y[o] = m;
        arg[o] = best;
      }
  }
}

/// out[p, q] = x[p, arg[p mod planes_per_arg, q]] for `planes` planes (tangent blocks repeat the
/// argmax of the value once per direction).
template <class T>
void gather(const PoolGeometry& g, std::int64_t planes, std::int64_t arg_planes, const T* x, const std::int32_t* arg,
            T* out) {
  const std::int64_t q_n = g.out_plane();
  [[maybe_unused]] const int threads = kernels::threads_for(planes * q_n);
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
  for (std::int64_t p = 0; p < planes; ++p) {
    const std::int32_t* a = arg + (p % arg_planes) * q_n;
    const T* xp = x + p * g.in_plane();
    T* op = out + p * q_n;
    for (std::int64_t q = 0; q < q_n; ++q) op[q] = xp[a[q]];
  }
}

/// out = 0, then out[p, arg[p, q]] += gy[p, q]: the adjoint of gather.
template <class T>
void scatter(const PoolGeometry& g, std::int64_t planes, std::int64_t arg_planes, const T* gy, const std::int32_t* arg,
             T* out) {
  const std::int64_t q_n = g.out_plane();
  [[maybe_unused]] const int threads = kernels::threads_for(planes * g.in_plane());
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
  for (std::int64_t p = 0; p < planes; ++p) {
    const std::int32_t* a = arg + (p % arg_planes) * q_n;
    T* op = out + p * g.in_plane();
    const T* gp = gy + p * q_n;
    std::fill(op, op + g.in_plane(), T(0));
    for (std::int64_t q = 0; q < q_n; ++q) op[a[q]] += gp[q];
  }
}

// Node: input x; MaxPoolPayload (kernel, stride, and the argmax [N·C·Ho·Wo] int32) or
// AvgPoolPayload (kernel, stride).
template <class P> PoolGeometry node_pool(const Tape& t, const Node& n, const char* op) {
  const Tensor& x = t.input_value(n, 0);
  const P& p = n.payload_as<P>();
  return pool_geometry(op, x.shape(), x.dtype(), static_cast<int>(p.kernel), static_cast<int>(p.stride));
}

Tensor max_pool_tangent(const Tape& t, const Node& n) {
  const PoolGeometry g = node_pool<MaxPoolPayload>(t, n, "max_pool2d");
  const Tensor& argmax = n.payload_as<MaxPoolPayload>().argmax;
  const Tensor& xt = t.node_at(t.input_id(n, 0)).tangent;
  if (!xt.defined()) return {};
  const std::int64_t K = xt.dim(0), planes = n.value.numel() / g.out_plane();
  Tensor out = Tensor::empty(Shape{K, n.value.numel()}, xt.dtype(), xt.device());
  if (const DeviceBackend* dev = offload("max_pool2d", xt)) {
    dev->pool_gather(g.window(), K * planes, planes, xt, argmax, out);
    return out;
  }
  dispatch_float(xt.dtype(), "max_pool2d", [&](auto zero) {
    using T = decltype(zero);
    gather<T>(g, K * planes, planes, xt.data<T>(), argmax.data<std::int32_t>(), out.data<T>());
  });
  return out;
}

void max_pool_backward(Tape& t, const Node& n, const Dual& gy) {
  if (!t.needs_adjoint(n, 0)) return;
  const PoolGeometry g = node_pool<MaxPoolPayload>(t, n, "max_pool2d");
  const Tensor& argmax = n.payload_as<MaxPoolPayload>().argmax;
  const Shape& xs = t.input_value(n, 0).shape();
  const std::int64_t planes = n.value.numel() / g.out_plane();
  Dual xb(Tensor::empty(xs, gy.value.dtype(), gy.value.device()));
  if (gy.has_tangent()) xb.tangent = Tensor::empty(Shape{gy.K(), xs.numel()}, gy.value.dtype(), gy.value.device());
  if (const DeviceBackend* dev = offload("max_pool2d", gy.value)) {
    dev->pool_scatter(g.window(), planes, planes, gy.value, argmax, xb.value);
    if (gy.has_tangent()) dev->pool_scatter(g.window(), gy.K() * planes, planes, gy.tangent, argmax, xb.tangent);
    return t.accumulate(n, 0, std::move(xb));
  }
  dispatch_float(gy.value.dtype(), "max_pool2d", [&](auto zero) {
    using T = decltype(zero);
    const std::int32_t* arg = argmax.data<std::int32_t>();
    scatter<T>(g, planes, planes, gy.value.data<T>(), arg, xb.value.data<T>());
    if (gy.has_tangent()) scatter<T>(g, gy.K() * planes, planes, gy.tangent.data<T>(), arg, xb.tangent.data<T>());
  });
  t.accumulate(n, 0, std::move(xb));
}

const OpRules kMaxPoolRules = {"max_pool2d", max_pool_tangent, max_pool_backward, 0};

// ---- average pooling -----------------------------------------------------------------------------

template <class T> void avg_pool_planes(const PoolGeometry& g, std::int64_t planes, const T* x, T* y) {
  const T scale = T(1) / static_cast<T>(g.k * g.k);
  [[maybe_unused]] const int threads = kernels::threads_for(planes * g.in_plane());
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
  for (std::int64_t p = 0; p < planes; ++p) {
    const T* xp = x + p * g.in_plane();
    T* yp = y + p * g.out_plane();
    for (std::int64_t oh = 0; oh < g.Ho; ++oh)
      for (std::int64_t ow = 0; ow < g.Wo; ++ow) {
        T s = 0;
        for (std::int64_t i = 0; i < g.k; ++i)
          for (std::int64_t j = 0; j < g.k; ++j) s += xp[(oh * g.s + i) * g.W + ow * g.s + j];
        yp[oh * g.Wo + ow] = s * scale;
      }
  }
}

/// x̄ = 0, then every window gets ḡ / k² added (overlapping windows add up).
template <class T> void avg_pool_adjoint(const PoolGeometry& g, std::int64_t planes, const T* gy, T* xb) {
  const T scale = T(1) / static_cast<T>(g.k * g.k);
  [[maybe_unused]] const int threads = kernels::threads_for(planes * g.in_plane());
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
  for (std::int64_t p = 0; p < planes; ++p) {
    const T* gp = gy + p * g.out_plane();
    T* xp = xb + p * g.in_plane();
    std::fill(xp, xp + g.in_plane(), T(0));
    for (std::int64_t oh = 0; oh < g.Ho; ++oh)
      for (std::int64_t ow = 0; ow < g.Wo; ++ow) {
        const T v = gp[oh * g.Wo + ow] * scale;
        for (std::int64_t i = 0; i < g.k; ++i)
          for (std::int64_t j = 0; j < g.k; ++j) xp[(oh * g.s + i) * g.W + ow * g.s + j] += v;
      }
  }
}

Tensor avg_pool_tangent(const Tape& t, const Node& n) {
  const PoolGeometry g = node_pool<AvgPoolPayload>(t, n, "avg_pool2d");
  const Tensor& xt = t.node_at(t.input_id(n, 0)).tangent;
  if (!xt.defined()) return {};
  const std::int64_t K = xt.dim(0), planes = n.value.numel() / g.out_plane();
  Tensor out = Tensor::empty(Shape{K, n.value.numel()}, xt.dtype(), xt.device());
  if (const DeviceBackend* dev = offload("avg_pool2d", xt)) {
    dev->avg_pool(g.window(), K * planes, xt, out);
    return out;
  }
  dispatch_float(xt.dtype(), "avg_pool2d", [&](auto zero) {
    using T = decltype(zero);
    avg_pool_planes<T>(g, K * planes, xt.data<T>(), out.data<T>());
  });
  return out;
}

void avg_pool_backward(Tape& t, const Node& n, const Dual& gy) {
  if (!t.needs_adjoint(n, 0)) return;
  const PoolGeometry g = node_pool<AvgPoolPayload>(t, n, "avg_pool2d");
  const Shape& xs = t.input_value(n, 0).shape();
  const std::int64_t planes = n.value.numel() / g.out_plane();
  Dual xb(Tensor::empty(xs, gy.value.dtype(), gy.value.device()));
  if (gy.has_tangent()) xb.tangent = Tensor::empty(Shape{gy.K(), xs.numel()}, gy.value.dtype(), gy.value.device());
  if (const DeviceBackend* dev = offload("avg_pool2d", gy.value)) {
    dev->avg_pool_adjoint(g.window(), planes, gy.value, xb.value);
    if (gy.has_tangent()) dev->avg_pool_adjoint(g.window(), gy.K() * planes, gy.tangent, xb.tangent);
    return t.accumulate(n, 0, std::move(xb));
  }
  dispatch_float(gy.value.dtype(), "avg_pool2d", [&](auto zero) {
    using T = decltype(zero);
    avg_pool_adjoint<T>(g, planes, gy.value.data<T>(), xb.value.data<T>());
    if (gy.has_tangent()) avg_pool_adjoint<T>(g, gy.K() * planes, gy.tangent.data<T>(), xb.tangent.data<T>());
  });
  t.accumulate(n, 0, std::move(xb));
}

const OpRules kAvgPoolRules = {"avg_pool2d", avg_pool_tangent, avg_pool_backward, 0};
GRADHPO_REGISTER_OPS(&kMaxPoolRules, &kAvgPoolRules);

}  // namespace

Var max_pool2d(const Var& x, int kernel, int stride) {
  Tape& t = x.tape();
  t.check(x, "max_pool2d");
  const PoolGeometry g = pool_geometry("max_pool2d", x.shape(), x.dtype(), kernel, stride);
  const Shape& s = x.shape();
  const Shape ys{s[0], s[1], g.Ho, g.Wo};
  Tensor y = Tensor::empty(ys, x.dtype(), x.device());
  Tensor arg = Tensor::empty(Shape{ys.numel()}, DType::i32, x.device());
  if (const DeviceBackend* dev = offload("max_pool2d", x.value())) {
    dev->max_pool(g.window(), s[0] * s[1], x.value(), y, arg);
  } else {
    dispatch_float(x.dtype(), "max_pool2d", [&](auto zero) {
      using T = decltype(zero);
      max_pool_planes<T>(g, s[0] * s[1], x.value().data<T>(), y.data<T>(), arg.data<std::int32_t>());
    });
  }
  return t.record(&kMaxPoolRules, std::move(y), {x}, MaxPoolPayload{kernel, stride, std::move(arg)});
}

Var avg_pool2d(const Var& x, int kernel, int stride) {
  Tape& t = x.tape();
  t.check(x, "avg_pool2d");
  const PoolGeometry g = pool_geometry("avg_pool2d", x.shape(), x.dtype(), kernel, stride);
  const Shape& s = x.shape();
  Tensor y = Tensor::empty(Shape{s[0], s[1], g.Ho, g.Wo}, x.dtype(), x.device());
  if (const DeviceBackend* dev = offload("avg_pool2d", x.value())) {
    dev->avg_pool(g.window(), s[0] * s[1], x.value(), y);
  } else {
    dispatch_float(x.dtype(), "avg_pool2d", [&](auto zero) {
      using T = decltype(zero);
      avg_pool_planes<T>(g, s[0] * s[1], x.value().data<T>(), y.data<T>());
    });
  }
  return t.record(&kAvgPoolRules, std::move(y), {x}, AvgPoolPayload{kernel, stride});
}

// A mean over the last axis of [N, C, H·W]: composed from reshape and mean, whose rules (and
// second order) already exist.
Var global_avg_pool(const Var& x) {
  x.tape().check(x, "global_avg_pool");
  const Shape& s = x.shape();
  GRADHPO_CHECK(s.ndim() == 4, "global_avg_pool: expected x [N, C, H, W], got " + s.str());
  GRADHPO_CHECK(s[2] * s[3] > 0, "global_avg_pool: empty image plane in " + s.str());
  return mean(reshape(x, Shape{s[0], s[1], s[2] * s[3]}), 2);
}

}  // namespace gradhpo
