// Per-channel primitives on [N, C, R] views (engine/ops/channel.cpp holds the rules and the CPU
// loops; the Dual functions here combine the same two kernels the same way):
//   affine_rows     out (+)= x ⊙ scale[c] + shift[c] over S samples
//   channel_reduce  out[g, c] (+)= Σ_{n, r} x[g, n, c, r] · y[n, c, r], one block per output,
//                   summed in double in a fixed order (deterministic).
#include <algorithm>

#include "kernels.h"
#include "launch.cuh"

namespace gradhpo::cuda {
namespace {

struct Layout {
  std::int64_t N, C, R;
  std::int64_t numel() const { return N * C * R; }
};
Layout layout(const Shape& s) { return {s[0], s[1], s.numel() / std::max<std::int64_t>(s[0] * s[1], 1)}; }

template <class T>
__global__ void affine_rows_kernel(T* out, const T* x, const T* sc, const T* sh, std::int64_t n, std::int64_t C,
                                   std::int64_t R, bool accumulate) {
  GRADHPO_FOR_EACH(i, n) {
    const std::int64_t c = (i / R) % C;
    const T v = (x ? x[i] * (sc ? sc[c] : T(1)) : T(0)) + (sh ? sh[c] : T(0));
    out[i] = accumulate ? out[i] + v : v;
  }
}

template <class T>
__global__ void channel_reduce_kernel(const T* x, const T* y, std::int64_t N, std::int64_t C, std::int64_t R, T* out,
                                      bool accumulate) {
  const std::int64_t g = blockIdx.x / C, c = blockIdx.x % C;
  double s = 0;
  for (std::int64_t j = threadIdx.x; j < N * R; j += kThreads) {
    const std::int64_t n = j / R, r = j % R;
    const T v = x[((g * N + n) * C + c) * R + r];
    s += static_cast<double>(y ? v * y[(n * C + c) * R + r] : v);
  }
  s = block_sum(s);
  if (threadIdx.x == 0) out[blockIdx.x] = accumulate ? out[blockIdx.x] + static_cast<T>(s) : static_cast<T>(s);
}

template <class T>
void affine_rows(T* out, const T* x, const T* sc, const T* sh, std::int64_t S, const Layout& L, bool accumulate) {
  const std::int64_t n = S * L.C * L.R;
  launch("affine_rows_kernel", "channel_affine", affine_rows_kernel<T>, blocks_for(n), kThreads, out, x, sc, sh, n, L.C,
         L.R, accumulate);
}

template <class T>
void channel_reduce(const T* x, const T* y, std::int64_t G, const Layout& L, T* out, bool accumulate) {
  if (G * L.C == 0) return;
  launch("channel_reduce_kernel", "channel_sum", channel_reduce_kernel<T>, static_cast<unsigned>(G * L.C), kThreads, x,
         y, L.N, L.C, L.R, out, accumulate);
}

template <class T> const T* value_ptr(const Dual* d) { return d ? ptr<T>(d->value) : nullptr; }
template <class T> const T* direction(const Dual* d, std::int64_t k, std::int64_t n) {
  return d && d->has_tangent() ? ptr<T>(d->tangent) + k * n : nullptr;
}

}  // namespace

// y = x ⊙ s + b;  ẏ = ẋ ⊙ s + x ⊙ ṡ + ḃ (channel.cpp's affine_impl).
Dual channel_affine(const Dual& x, const Dual* s, const Dual* b, bool with_value) {
  const Layout L = layout(x.value.shape());
  const std::int64_t K = std::max({x.K(), s ? s->K() : 0, b ? b->K() : 0});
  Dual y;
  if (with_value) y.value = Tensor::empty(x.value.shape(), x.value.dtype(), Device::cuda);
  if (K > 0) y.tangent = Tensor::empty(Shape{K, L.numel()}, x.value.dtype(), Device::cuda);
  dispatch_float(x.value.dtype(), "channel_affine", [&](auto zero) {
    using T = decltype(zero);
    const T* sv = value_ptr<T>(s);
    const T* bv = value_ptr<T>(b);
    if (with_value) affine_rows<T>(ptr<T>(y.value), ptr<T>(x.value), sv, bv, L.N, L, false);
    if (K == 0) return;
    T* yt = ptr<T>(y.tangent);
    bool written = false;
    if (x.has_tangent()) {
      affine_rows<T>(yt, ptr<T>(x.tangent), sv, nullptr, K * L.N, L, false);
      written = true;
    }
    for (std::int64_t k = 0; k < K; ++k) {
      const T* sk = direction<T>(s, k, L.C);
      const T* bk = direction<T>(b, k, L.C);
      if (sk) affine_rows<T>(yt + k * L.numel(), ptr<T>(x.value), sk, bk, L.N, L, written);
      else if (bk || !written) affine_rows<T>(yt + k * L.numel(), nullptr, nullptr, bk, L.N, L, written);
    }
  });
  return y;
}

Dual channel_sum(const Dual& x) {
  const Layout L = layout(x.value.shape());
  Dual y(Tensor::empty(Shape{L.C}, x.value.dtype(), Device::cuda));
  if (x.has_tangent()) y.tangent = Tensor::empty(Shape{x.K(), L.C}, x.value.dtype(), Device::cuda);
  dispatch_float(x.value.dtype(), "channel_sum", [&](auto zero) {
    using T = decltype(zero);
    channel_reduce<T>(ptr<T>(x.value), nullptr, 1, L, ptr<T>(y.value), false);
    if (x.has_tangent()) channel_reduce<T>(ptr<T>(x.tangent), nullptr, x.K(), L, ptr<T>(y.tangent), false);
  });
  return y;
}

// Σ a ⊙ b;  tangent Σ ȧ ⊙ b + Σ a ⊙ ḃ.
Dual channel_dot(const Dual& a, const Dual& b) {
  const Layout L = layout(a.value.shape());
  const std::int64_t K = std::max(a.K(), b.K());
  Dual y(Tensor::empty(Shape{L.C}, a.value.dtype(), Device::cuda));
  if (K > 0) y.tangent = Tensor::empty(Shape{K, L.C}, a.value.dtype(), Device::cuda);
  dispatch_float(a.value.dtype(), "channel_dot", [&](auto zero) {
    using T = decltype(zero);
    channel_reduce<T>(ptr<T>(a.value), ptr<T>(b.value), 1, L, ptr<T>(y.value), false);
    if (a.has_tangent()) channel_reduce<T>(ptr<T>(a.tangent), ptr<T>(b.value), K, L, ptr<T>(y.tangent), false);
    if (b.has_tangent())
      channel_reduce<T>(ptr<T>(b.tangent), ptr<T>(a.value), K, L, ptr<T>(y.tangent), a.has_tangent());
  });
  return y;
}

Dual channel_broadcast(const Dual& v, const Shape& shape) {
  const Layout L = layout(shape);
  Dual y(Tensor::empty(shape, v.value.dtype(), Device::cuda));
  if (v.has_tangent()) y.tangent = Tensor::empty(Shape{v.K(), L.numel()}, v.value.dtype(), Device::cuda);
  dispatch_float(v.value.dtype(), "channel_broadcast", [&](auto zero) {
    using T = decltype(zero);
    affine_rows<T>(ptr<T>(y.value), nullptr, nullptr, ptr<T>(v.value), L.N, L, false);
    for (std::int64_t k = 0; k < v.K(); ++k)
      affine_rows<T>(ptr<T>(y.tangent) + k * L.numel(), nullptr, nullptr, ptr<T>(v.tangent) + k * L.C, L.N, L, false);
  });
  return y;
}

}  // namespace gradhpo::cuda
