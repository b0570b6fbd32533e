// CPU kernels of 2-D convolution: the three bilinear products a convolution and its adjoints
// are made of, on banks of operands. No autodiff here (engine/ops/conv.* builds the rules from
// these). Our two algorithms compute them: im2col + GEMM (im2col.h) and direct kernels
// (conv_direct.h), the one conv_algorithm chooses; in float32, oneDNN's primitives
// (conv_dnnl.h, when built with GRADHPO_DNNL) run them instead where conv_backend's planner
// measured them faster.
//
// For one image x_i [C, H, W], cols(x_i) is the [C·kh·kw, Ho·Wo] matrix of its (zero-padded)
// patches, and with the filters W as an [O, C·kh·kw] matrix:
//
//   forward         y_i  = W cols(x_i)                         bilinear in (x, W)
//   backward_input  x̄_i  = col2im(Wᵀ ḡ_i)                      bilinear in (ḡ, W)
//   backward_weight W̄    = Σ_i ḡ_i cols(x_i)ᵀ                  bilinear in (ḡ, x)
//
// A bilinear B has the tangent B(ȧ, b) + B(a, ḃ), so every kernel takes several "banks" of an
// operand at once: a stack of K·N images (all tangent directions of an activation, laid out
// [K, N, ...] exactly like a Dual tangent block) is just more images, and a stack of M filter
// banks [W; Ẇ_1..Ẇ_K] is more output channels for one pass over each image, which is where
// forward-over-reverse gets its efficiency.
//
// Threading: images are split over OpenMP threads in contiguous chunks (image_loop.h), so every
// result is reproducible for a given thread count.
#pragma once

#include <cstdint>
#include <string>

#include "../tensor.h"

namespace gradhpo::kernels {

/// The shapes of one convolution: input image [C, H, W], filters [O, C, kh, kw], output image
/// [O, Ho, Wo] with Ho = (H + 2 pad − kh) / stride + 1 (and the same for Wo).
struct ConvGeometry {
  std::int64_t C = 0, H = 0, W = 0, O = 0, kh = 0, kw = 0, stride = 1, pad = 0, Ho = 0, Wo = 0;

  /// Fills Ho, Wo. Throws naming `op` when the kernel does not fit the padded input.
  static ConvGeometry make(const char* op, std::int64_t C, std::int64_t H, std::int64_t W, std::int64_t O,
                           std::int64_t kh, std::int64_t kw, std::int64_t stride, std::int64_t pad);
  std::int64_t patch() const { return C * kh * kw; }   // rows of cols(x)
  std::int64_t pixels() const { return Ho * Wo; }       // columns of cols(x)
  std::int64_t in_image() const { return C * H * W; }
  std::int64_t out_image() const { return O * Ho * Wo; }
  std::int64_t filters() const { return O * patch(); }
  /// A 1×1, stride-1, unpadded convolution: cols(x) is x itself, no copy needed.
  bool pointwise() const { return kh == 1 && kw == 1 && stride == 1 && pad == 0; }
};

/// M pointers without an array: bank 0 is `first`, bank m ≥ 1 is `rest + (m − 1)·stride`.
/// This is how a Dual is passed to a kernel without allocating: the value is bank 0 and the
/// K tangent directions (rows of the [K, ...] block) are banks 1..K. A plain stack of M
/// equally spaced banks is Banks::uniform.
template <class P> struct Banks {
  P* first = nullptr;
  P* rest = nullptr;
  std::int64_t stride = 0;
  std::int64_t count = 0;

  static Banks uniform(P* base, std::int64_t stride, std::int64_t count) {
    return {base, base + stride, stride, count};
  }
  static Banks one(P* p) { return {p, nullptr, 0, 1}; }
  P* operator[](std::int64_t m) const { return m == 0 ? first : rest + (m - 1) * stride; }
};

enum class ConvAlgorithm { im2col, direct };
enum class ConvKernel { forward, backward_input, backward_weight };

/// The algorithm our kernels run `kernel` on `g` with, for elements of `element_bytes`.
/// GRADHPO_CONV=direct or im2col forces one (direct only where it applies, direct_conv_applies); unset, empty or
/// "auto" (or "ours", dnnl, dnnl-blocked: conv_backend's values) takes direct where it applies, its packets fill at least 3/4 of their lanes with the
/// output rows' pixels (direct_lane_use, by the SIMD width this was compiled for), for
/// backward_input at stride 1 the padded adjoint adds at most 1/4 to the multiply-adds (at
/// stride s the kernel has at least s² taps, one a phase), and the padded
/// image it reads (the input, or for backward_input the output adjoint) fits in half of this
/// core's L2 cache, as read at run time: each block of output channels reads the whole image
/// again, which must come from cache to keep the tile's multiply-adds fed, and larger images
/// are left to the GEMM's blocking. The
/// choice depends only on the geometry and the machine, never on banks or threads, so a value
/// has the same bits alone and banked with tangent directions. Throws Error for any other
/// GRADHPO_CONV, and for dnnl or dnnl-blocked without oneDNN (the kernels call it before their
/// parallel region).
ConvAlgorithm conv_algorithm(ConvKernel kernel, const ConvGeometry& g, std::size_t element_bytes);

/// Who computes a product: our kernels (as conv_algorithm chooses), or oneDNN's direct
/// primitive in plain layouts (NCHW/OIHW, in place) or in its blocked layouts (with reorders).
enum class ConvBackend { ours, dnnl, dnnl_blocked };

/// The backend `kernel` runs `g` with. Ours for float64, without oneDNN (conv_dnnl.h), and where
/// GRADHPO_CONV forces direct, im2col or ours (our kernels, as conv_algorithm chooses); oneDNN's where GRADHPO_CONV=dnnl (plain) or
/// dnnl-blocked forces it; else the per-machine plan's (conv_plan.h): the first process that
/// meets a kernel and geometry times the three backends on one thread and writes the fastest
/// to the plan file, which every later process obeys. Like conv_algorithm, the choice depends
/// only on the geometry and the machine, never on banks, images or threads, so a value has the
/// same bits alone and banked with tangent directions. (Where oneDNN turns a case down at run
/// time the call runs on ours.) Throws Error for a bad GRADHPO_CONV.
ConvBackend conv_backend(ConvKernel kernel, const ConvGeometry& g, std::size_t element_bytes);

/// out[m] (+)= conv(x_i, w[m]) for images i < count, banks m < w.count: x holds `count` images
/// [C, H, W] back to back; w[m] is [O, C·kh·kw]; out[m] holds `count` images [O, Ho, Wo].
template <class T>
void conv2d_forward(const ConvGeometry& g, std::int64_t count, const T* x, Banks<const T> w, Banks<T> out,
                    bool accumulate);

/// out[m] (+)= col2im(w[m]ᵀ gy_i) for images i < count: gy holds `count` images [O, Ho, Wo];
/// out[m] holds `count` images [C, H, W] (the adjoint of conv2d_forward with respect to x).
template <class T>
void conv2d_backward_input(const ConvGeometry& g, std::int64_t count, const T* gy, Banks<const T> w, Banks<T> out,
                           bool accumulate);

/// out[m] (+)= Σ_i gy[m]_i cols(x[m]_i)ᵀ, [O, C·kh·kw], over images i < count (the adjoint of
/// conv2d_forward with respect to w). One of gy, x has a single bank, which pairs with every
/// bank of the other; out has max(gy.count, x.count) banks.
template <class T>
void conv2d_backward_weight(const ConvGeometry& g, std::int64_t count, Banks<const T> gy, Banks<const T> x,
                            Banks<T> out, bool accumulate);

}  // namespace gradhpo::kernels
