// 2-D convolution on the GPU: im2col + cuBLAS strided-batched GEMM (one GEMM call covers every
// image of a batch) — or, where the build has cuDNN and it offers a deterministic algorithm for
// the geometry, cuDNN's convolution (cudnn_conv.h; cuda::set_cudnn(false) forces im2col) — and
// the three bilinear products of engine/ops/conv.h with their tangents:
//   forward         y_i  = W cols(x_i)
//   backward_input  x̄_i  = col2im(Wᵀ ḡ_i)
//   backward_weight W̄    = Σ_i ḡ_i cols(x_i)ᵀ     (per-image products, then a fixed-order sum)
// The K tangent directions of an activation are K·N more images; the filter directions are one
// batched GEMM each. A 1×1, stride-1, unpadded convolution uses x itself as cols(x).
// col2im is written as a gather (each input pixel sums the patch entries that read it), so it is
// deterministic and needs no atomics.
#include <algorithm>

#include "cudnn_conv.h"
#include "kernels.h"
#include "launch.cuh"

namespace gradhpo::cuda {
namespace {

using kernels::ConvGeometry;

template <class T> __global__ void im2col_kernel(ConvGeometry g, std::int64_t n, const T* x, T* cols) {
  const std::int64_t P = g.Ho * g.Wo, rows = g.C * g.kh * g.kw;
  GRADHPO_FOR_EACH(i, n) {
    const std::int64_t img = i / (rows * P), rem = i % (rows * P), row = rem / P, p = rem % P;
    const std::int64_t c = row / (g.kh * g.kw), ki = (row / g.kw) % g.kh, kj = row % g.kw;
    const std::int64_t h = (p / g.Wo) * g.stride - g.pad + ki, w = (p % g.Wo) * g.stride - g.pad + kj;
    cols[i] = h >= 0 && h < g.H && w >= 0 && w < g.W ? x[img * g.C * g.H * g.W + (c * g.H + h) * g.W + w] : T(0);
  }
}

template <class T> __global__ void col2im_kernel(ConvGeometry g, std::int64_t n, const T* cols, T* out, bool accumulate) {
  const std::int64_t P = g.Ho * g.Wo, rows = g.C * g.kh * g.kw;
  GRADHPO_FOR_EACH(i, n) {
    const std::int64_t img = i / (g.C * g.H * g.W), rem = i % (g.C * g.H * g.W);
    const std::int64_t c = rem / (g.H * g.W), h = (rem / g.W) % g.H, w = rem % g.W;
    const T* ci = cols + img * rows * P;
    T s = 0;
    for (std::int64_t ki = 0; ki < g.kh; ++ki) {
      const std::int64_t hs = h + g.pad - ki;
      if (hs < 0 || hs % g.stride != 0 || hs / g.stride >= g.Ho) continue;
      for (std::int64_t kj = 0; kj < g.kw; ++kj) {
        const std::int64_t ws = w + g.pad - kj;
        if (ws < 0 || ws % g.stride != 0 || ws / g.stride >= g.Wo) continue;
        s += ci[((c * g.kh + ki) * g.kw + kj) * P + (hs / g.stride) * g.Wo + ws / g.stride];
      }
    }
    out[i] = accumulate ? out[i] + s : s;
  }
}

// out[j] (+)= Σ_i partial[i·M + j], i < N, in order.
template <class T> __global__ void sum_images_kernel(const T* partial, std::int64_t N, std::int64_t M, T* out, bool accumulate) {
  GRADHPO_FOR_EACH(j, M) {
    T s = 0;
    for (std::int64_t i = 0; i < N; ++i) s += partial[i * M + j];
    out[j] = accumulate ? out[j] + s : s;
  }
}

/// The patch matrices of `count` images [C, H, W] at x: [count, C·kh·kw, Ho·Wo]. For a pointwise
/// convolution that is x itself (`buffer` is then left alone).
template <class T> const T* cols_of(const ConvGeometry& g, std::int64_t count, const T* x, Tensor& buffer) {
  if (g.pointwise()) return x;
  const std::int64_t n = count * g.patch() * g.pixels();
  buffer = Tensor::empty(Shape{n}, dtype_of<T>(), Device::cuda);
  launch("im2col_kernel", "conv2d", im2col_kernel<T>, blocks_for(n), kThreads, g, n, x, ptr<T>(buffer));
  return ptr<T>(buffer);
}

/// out_i (+)= w cols_i for `count` images: y images [O, Ho·Wo].
template <class T> void forward_images(const ConvGeometry& g, std::int64_t count, const T* cols, const T* w, T* out, bool acc) {
  const BatchedGemm b{g.O, g.patch(), 0, false, g.patch(), g.pixels(), g.patch() * g.pixels(), false, g.out_image(), count};
  gemm_batched<T>("conv2d", b, w, cols, out, acc);
}

/// out (+)= col2im(wᵀ gy_i) for `count` images into x images [C, H, W].
template <class T> void input_images(const ConvGeometry& g, std::int64_t count, const T* gy, const T* w, T* out, bool acc) {
  const BatchedGemm b{g.O, g.patch(), 0, true, g.O, g.pixels(), g.out_image(), false, g.patch() * g.pixels(), count};
  if (g.pointwise()) return gemm_batched<T>("conv2d", b, w, gy, out, acc);  // cols(x) is x: no col2im
  Tensor cols = Tensor::empty(Shape{count * g.patch() * g.pixels()}, dtype_of<T>(), Device::cuda);
  gemm_batched<T>("conv2d", b, w, gy, ptr<T>(cols), false);
  const std::int64_t n = count * g.in_image();
  launch("col2im_kernel", "conv2d", col2im_kernel<T>, blocks_for(n), kThreads, g, n, ptr<T>(cols), out, acc);
}

/// out (+)= Σ_i gy_i cols_iᵀ over `count` images: [O, C·kh·kw].
template <class T> void weight_images(const ConvGeometry& g, std::int64_t count, const T* gy, const T* cols, T* out, bool acc) {
  const BatchedGemm b{g.O, g.pixels(), g.out_image(), false, g.patch(), g.pixels(), g.patch() * g.pixels(), true,
                      g.filters(), count};
  Tensor partial = Tensor::empty(Shape{count * g.filters()}, dtype_of<T>(), Device::cuda);
  gemm_batched<T>("conv2d", b, gy, cols, ptr<T>(partial), false);
  launch("sum_images_kernel", "conv2d", sum_images_kernel<T>, blocks_for(g.filters()), kThreads, ptr<T>(partial), count,
         g.filters(), out, acc);
}

/// `count` input images and, made on first use and then shared, their patch matrices.
template <class T> struct Images {
  const T* x;
  std::int64_t count;
  Tensor buffer;
  const T* cols = nullptr;
  const T* patches(const ConvGeometry& g) {
    if (!cols) cols = cols_of<T>(g, count, x, buffer);
    return cols;
  }
};

// The three products, each through cuDNN when that path is on and has a deterministic algorithm
// for the geometry (cudnn_conv.h), else through im2col + cuBLAS.
template <class T> void forward_product(const ConvGeometry& g, Images<T>& in, const T* w, T* out, bool acc) {
  if (cudnn::forward(g, in.count, dtype_of<T>(), in.x, w, out, acc)) return;
  forward_images<T>(g, in.count, in.patches(g), w, out, acc);
}
template <class T> void input_product(const ConvGeometry& g, std::int64_t count, const T* gy, const T* w, T* out, bool acc) {
  if (cudnn::backward_input(g, count, dtype_of<T>(), gy, w, out, acc)) return;
  input_images<T>(g, count, gy, w, out, acc);
}
template <class T> void weight_product(const ConvGeometry& g, const T* gy, Images<T>& in, T* out, bool acc) {
  if (cudnn::backward_weight(g, in.count, dtype_of<T>(), gy, in.x, out, acc)) return;
  weight_images<T>(g, in.count, gy, in.patches(g), out, acc);
}

}  // namespace

// y = F(x, W);  ẏ_k = F(ẋ_k, W) + F(x, Ẇ_k).
Dual conv2d(const Dual& x, const Dual& w, const ConvGeometry& g, bool with_value) {
  const std::int64_t N = x.value.dim(0), K = std::max(x.K(), w.K());
  const Shape yshape{N, g.O, g.Ho, g.Wo};
  Dual y;
  if (with_value) y.value = Tensor::empty(yshape, x.value.dtype(), Device::cuda);
  if (K > 0) y.tangent = Tensor::empty(Shape{K, yshape.numel()}, x.value.dtype(), Device::cuda);
  dispatch_float(x.value.dtype(), "conv2d", [&](auto zero) {
    using T = decltype(zero);
    bool written = false;
    if (with_value || w.has_tangent()) {
      Images<T> in{ptr<T>(x.value), N};
      if (with_value) forward_product<T>(g, in, ptr<T>(w.value), ptr<T>(y.value), false);
      for (std::int64_t k = 0; k < w.K(); ++k)
        forward_product<T>(g, in, ptr<T>(w.tangent) + k * g.filters(), ptr<T>(y.tangent) + k * yshape.numel(), false);
      written = w.has_tangent();
    }
    if (x.has_tangent()) {
      Images<T> in{ptr<T>(x.tangent), K * N};
      forward_product<T>(g, in, ptr<T>(w.value), ptr<T>(y.tangent), written);
      written = true;
    }
    if (K > 0 && !written) y.tangent = Tensor();
  });
  return y;
}

// x̄ = Bx(ḡ, W);  x̄̇_k = Bx(ġ_k, W) + Bx(ḡ, Ẇ_k).
Dual conv2d_backward_input(const Dual& gy, const Dual& w, const ConvGeometry& g, const Shape& xshape) {
  const std::int64_t N = xshape[0], K = std::max(gy.K(), w.K());
  Dual xb(Tensor::empty(xshape, gy.value.dtype(), Device::cuda));
  if (K > 0) xb.tangent = Tensor::empty(Shape{K, xshape.numel()}, gy.value.dtype(), Device::cuda);
  dispatch_float(gy.value.dtype(), "conv2d", [&](auto zero) {
    using T = decltype(zero);
    input_product<T>(g, N, ptr<T>(gy.value), ptr<T>(w.value), ptr<T>(xb.value), false);
    for (std::int64_t k = 0; k < w.K(); ++k)
      input_product<T>(g, N, ptr<T>(gy.value), ptr<T>(w.tangent) + k * g.filters(),
                       ptr<T>(xb.tangent) + k * xshape.numel(), false);
    if (gy.has_tangent())
      input_product<T>(g, K * N, ptr<T>(gy.tangent), ptr<T>(w.value), ptr<T>(xb.tangent), w.has_tangent());
  });
  return xb;
}

// W̄ = Bw(ḡ, x);  W̄̇_k = Bw(ġ_k, x) + Bw(ḡ, ẋ_k).
Dual conv2d_backward_weight(const Dual& gy, const Dual& x, const ConvGeometry& g, const Shape& wshape) {
  const std::int64_t N = x.value.dim(0), K = std::max(gy.K(), x.K());
  const std::int64_t y_numel = N * g.out_image();
  Dual wb(Tensor::empty(wshape, gy.value.dtype(), Device::cuda));
  if (K > 0) wb.tangent = Tensor::empty(Shape{K, wshape.numel()}, gy.value.dtype(), Device::cuda);
  dispatch_float(gy.value.dtype(), "conv2d", [&](auto zero) {
    using T = decltype(zero);
    Images<T> in{ptr<T>(x.value), N};
    weight_product<T>(g, ptr<T>(gy.value), in, ptr<T>(wb.value), false);
    for (std::int64_t k = 0; k < gy.K(); ++k)
      weight_product<T>(g, ptr<T>(gy.tangent) + k * y_numel, in, ptr<T>(wb.tangent) + k * g.filters(), false);
    for (std::int64_t k = 0; k < x.K(); ++k) {
      Images<T> tangent{ptr<T>(x.tangent) + k * x.value.numel(), N};
      weight_product<T>(g, ptr<T>(gy.value), tangent, ptr<T>(wb.tangent) + k * g.filters(), gy.has_tangent());
    }
  });
  return wb;
}

}  // namespace gradhpo::cuda
