// The batch-standardization kernels of engine/ops/batchnorm.cpp (its header holds the formulas):
// one block per channel (and per direction for the tangent rules), each sum over the channel's
// m = N·R values a block reduction in double in a fixed order, then the elementwise update.
#include <algorithm>

#include "kernels.h"
#include "launch.cuh"

namespace gradhpo::cuda {
namespace {

struct Layout {
  std::int64_t N, C, R;
  GRADHPO_HD std::int64_t m() const { return N * R; }  // values per channel
};
Layout layout(const Shape& s) { return {s[0], s[1], s.numel() / std::max<std::int64_t>(s[0] * s[1], 1)}; }

// Offset of element j (of m) of channel c in sample block `first` (k·N for direction k).
__device__ inline std::int64_t at(const Layout& L, std::int64_t first, std::int64_t c, std::int64_t j) {
  return ((first + j / L.R) * L.C + c) * L.R + j % L.R;
}

template <class T>
__global__ void standardize_kernel(Layout L, const T* x, double eps, T* xh, T* s, T* mean, T* var) {
  const std::int64_t c = blockIdx.x;
  const double m = static_cast<double>(L.m());
  double sum = 0;
  for (std::int64_t j = threadIdx.x; j < L.m(); j += kThreads) sum += static_cast<double>(x[at(L, 0, c, j)]);
  const double mu = block_sum(sum) / m;
  const T tm = static_cast<T>(mu);
  double ss = 0;  // two passes, as on the CPU: Σ (x − μ)² does not cancel
  for (std::int64_t j = threadIdx.x; j < L.m(); j += kThreads) {
    const T d = x[at(L, 0, c, j)] - tm;
    ss += static_cast<double>(d * d);
  }
  const double v = block_sum(ss) / m;
  const T ts = static_cast<T>(1.0 / sqrt(v + eps));
  for (std::int64_t j = threadIdx.x; j < L.m(); j += kThreads) xh[at(L, 0, c, j)] = (x[at(L, 0, c, j)] - tm) * ts;
  if (threadIdx.x == 0) {
    s[c] = ts;
    mean[c] = tm;
    var[c] = static_cast<T>(v);
  }
}

// x̂̇_k = s (ẋ_k − mean(ẋ_k) − x̂ mean(x̂ ẋ_k)); block (c, k).
template <class T> __global__ void standardize_tangent_kernel(Layout L, const T* xh, const T* s, const T* xt, T* out) {
  const std::int64_t c = blockIdx.x, k = blockIdx.y;
  const double m = static_cast<double>(L.m());
  double sum = 0, dot = 0;
  for (std::int64_t j = threadIdx.x; j < L.m(); j += kThreads) {
    const T t = xt[at(L, k * L.N, c, j)];
    sum += static_cast<double>(t);
    dot += static_cast<double>(xh[at(L, 0, c, j)] * t);
  }
  const T mt = static_cast<T>(block_sum(sum) / m), a = static_cast<T>(block_sum(dot) / m), sc = s[c];
  for (std::int64_t j = threadIdx.x; j < L.m(); j += kThreads) {
    const std::int64_t t = at(L, k * L.N, c, j);
    out[t] = sc * (xt[t] - mt - xh[at(L, 0, c, j)] * a);
  }
}

// x̄ = s (ḡ − mean(ḡ) − x̂ b), b = mean(x̂ ḡ); block c.
template <class T> __global__ void standardize_adjoint_kernel(Layout L, const T* xh, const T* s, const T* g, T* xb) {
  const std::int64_t c = blockIdx.x;
  const double m = static_cast<double>(L.m());
  double sg = 0, shg = 0;
  for (std::int64_t j = threadIdx.x; j < L.m(); j += kThreads) {
    const std::int64_t v = at(L, 0, c, j);
    sg += static_cast<double>(g[v]);
    shg += static_cast<double>(xh[v] * g[v]);
  }
  const T mg = static_cast<T>(block_sum(sg) / m), b = static_cast<T>(block_sum(shg) / m), sc = s[c];
  for (std::int64_t j = threadIdx.x; j < L.m(); j += kThreads) {
    const std::int64_t v = at(L, 0, c, j);
    xb[v] = sc * (g[v] - mg - xh[v] * b);
  }
}

// x̄̇ = −s a x̄ + s (ġ − mean(ġ) − x̂ mean(x̂ ġ)) − s (b x̂̇ + x̂ mean(x̂̇ ḡ)), a = mean(x̂ ẋ);
// block (c, k), after standardize_adjoint_kernel wrote x̄. gt, xt, xht may be null.
template <class T>
__global__ void standardize_adjoint_tangent_kernel(Layout L, const T* xh, const T* s, const T* g, const T* gt,
                                                   const T* xt, const T* xht, const T* xb, T* xbt) {
  const std::int64_t c = blockIdx.x, k = blockIdx.y;
  const double m = static_cast<double>(L.m());
  double shg = 0, s_hx = 0, s_htg = 0, s_gt = 0, s_hgt = 0;  // Σ x̂ḡ, Σ x̂ẋ, Σ x̂̇ḡ, Σ ġ, Σ x̂ġ
  for (std::int64_t j = threadIdx.x; j < L.m(); j += kThreads) {
    const std::int64_t v = at(L, 0, c, j), t = at(L, k * L.N, c, j);
    shg += static_cast<double>(xh[v] * g[v]);
    if (xt) s_hx += static_cast<double>(xh[v] * xt[t]);
    if (xht) s_htg += static_cast<double>(xht[t] * g[v]);
    if (gt) {
      s_gt += static_cast<double>(gt[t]);
      s_hgt += static_cast<double>(xh[v] * gt[t]);
    }
  }
  const T b = static_cast<T>(block_sum(shg) / m), a = static_cast<T>(block_sum(s_hx) / m);
  const T e = static_cast<T>(block_sum(s_htg) / m), mgt = static_cast<T>(block_sum(s_gt) / m);
  const T f = static_cast<T>(block_sum(s_hgt) / m), sc = s[c];
  for (std::int64_t j = threadIdx.x; j < L.m(); j += kThreads) {
    const std::int64_t v = at(L, 0, c, j), t = at(L, k * L.N, c, j);
    T out = (-sc * a) * xb[v] - (sc * (e + f)) * xh[v];
    if (gt) out += sc * (gt[t] - mgt);
    if (xht) out -= (sc * b) * xht[t];
    xbt[t] = out;
  }
}

dim3 grid(const Layout& L, std::int64_t K) { return dim3(static_cast<unsigned>(L.C), static_cast<unsigned>(K)); }

}  // namespace

void standardize(const Tensor& x, double eps, Tensor& xh, Tensor& s, Tensor& mean, Tensor& var) {
  const Layout L = layout(x.shape());
  dispatch_float(x.dtype(), "batch_standardize", [&](auto zero) {
    using T = decltype(zero);
    launch("standardize_kernel", "batch_standardize", standardize_kernel<T>, static_cast<unsigned>(L.C), kThreads, L,
           ptr<T>(x), eps, ptr<T>(xh), ptr<T>(s), ptr<T>(mean), ptr<T>(var));
  });
}

void standardize_tangent(const Tensor& xh, const Tensor& s, const Tensor& xt, Tensor& out) {
  const Layout L = layout(xh.shape());
  dispatch_float(xh.dtype(), "batch_standardize", [&](auto zero) {
    using T = decltype(zero);
    launch("standardize_tangent_kernel", "batch_standardize", standardize_tangent_kernel<T>, grid(L, xt.dim(0)),
           kThreads, L, ptr<T>(xh), ptr<T>(s), ptr<T>(xt), ptr<T>(out));
  });
}

void standardize_backward(const Tensor& xh, const Tensor& s, const Tensor& g, const Tensor& gt, const Tensor& xt,
                          const Tensor& xht, Tensor& xb, Tensor& xbt) {
  const Layout L = layout(xh.shape());
  dispatch_float(xh.dtype(), "batch_standardize", [&](auto zero) {
    using T = decltype(zero);
    launch("standardize_adjoint_kernel", "batch_standardize", standardize_adjoint_kernel<T>,
           static_cast<unsigned>(L.C), kThreads, L, ptr<T>(xh), ptr<T>(s), ptr<T>(g), ptr<T>(xb));
    if (!xbt.defined()) return;
    launch("standardize_adjoint_tangent_kernel", "batch_standardize", standardize_adjoint_tangent_kernel<T>,
           grid(L, xbt.dim(0)), kThreads, L, ptr<T>(xh), ptr<T>(s), ptr<T>(g), ptr_or_null<T>(gt), ptr_or_null<T>(xt),
           ptr_or_null<T>(xht), ptr<T>(xb), ptr<T>(xbt));
  });
}

}  // namespace gradhpo::cuda
