#include "conv.h"

#include <algorithm>
#include <type_traits>

#include "conv_direct.h"
#include "cpu.h"
#include "gemm.h"
#include "im2col.h"
#include "image_loop.h"

namespace gradhpo::kernels {

ConvGeometry ConvGeometry::make(const char* op, std::int64_t C, std::int64_t H, std::int64_t W, std::int64_t O,
                                std::int64_t kh, std::int64_t kw, std::int64_t stride, std::int64_t pad) {
  GRADHPO_CHECK(stride >= 1 && pad >= 0, std::string(op) + ": stride must be ≥ 1 and padding ≥ 0, got stride " +
                                       std::to_string(stride) + ", padding " + std::to_string(pad));
  GRADHPO_CHECK(kh >= 1 && kw >= 1 && kh <= H + 2 * pad && kw <= W + 2 * pad,
          std::string(op) + ": kernel " + std::to_string(kh) + "×" + std::to_string(kw) +
              " is larger than the padded input " + std::to_string(H + 2 * pad) + "×" +
              std::to_string(W + 2 * pad) + " (input " + std::to_string(H) + "×" + std::to_string(W) +
              ", padding " + std::to_string(pad) + ")");
  ConvGeometry g;
  g.C = C, g.H = H, g.W = W, g.O = O, g.kh = kh, g.kw = kw, g.stride = stride, g.pad = pad;
  g.Ho = (H + 2 * pad - kh) / stride + 1;
  g.Wo = (W + 2 * pad - kw) / stride + 1;
  return g;
}

ConvAlgorithm conv_algorithm(ConvKernel kernel, const ConvGeometry& g, std::size_t element_bytes) {
  enum Forced { none, direct, im2col };  // in env_choice's order
  static const int forced = env_choice("GRADHPO_CONV", {"direct", "im2col"});
  if (forced == im2col || !direct_conv_applies(kernel, g)) return ConvAlgorithm::im2col;
  if (forced == direct) return ConvAlgorithm::direct;
  // Lanes: rows whose last packet leaves many lanes idle (LeNet's 10-pixel rows fill 10 of 16
  // float lanes under AVX-512) cost the direct tiles that fraction of their speed, while
  // im2col's GEMM runs over all pixels of an image at once. On LeNet-5's second convolution,
  // 128 images, 1 thread: direct forward 1.02 ms against im2col's 0.98, with 9 filter banks
  // (K = 8 HVPs) 9.9 against 7.0; on its first (28 of 32 lanes) direct was as fast or faster,
  // on WRN's (all lanes) 1.3-2.8x faster.
  // (backward_input's rows are x̄'s, at stride s each of its s phases' rows of W/s pixels.)
  const std::int64_t width = kernel == ConvKernel::backward_input ? (g.W + g.stride - 1) / g.stride : g.Wo;
  if (direct_lane_use(width, element_bytes) < 0.75) return ConvAlgorithm::im2col;
  // The zero border: backward_input correlates the adjoint padded by k − 1 − pad, so every
  // input pixel takes all O·kh·kw terms, H·W/(Ho·Wo) times col2im's multiply-adds: 1 for a
  // "same" convolution (WRN's 3×3 with padding 1), 1.96 for LeNet's second (14×14 from 10×10),
  // where im2col took 1.14 ms against the direct 1.33.
  // Strided, each phase of x̄ takes only the taps that meet the adjoint: no zero border, but
  // with fewer taps than phases (a 1×1 kernel at stride 2: one phase of four has one tap) the
  // copies in and out outweigh the multiply-adds (WRN's strided 1×1 shortcut, 128 images, 1
  // thread: 1.44 ms direct against im2col's 1.11; its 3×3 at stride 2: 4.40 against 9.05).
  if (kernel == ConvKernel::backward_input && g.stride == 1 && 4 * g.H * g.W > 5 * g.Ho * g.Wo)
    return ConvAlgorithm::im2col;
  if (kernel == ConvKernel::backward_input && g.kh * g.kw < g.stride * g.stride) return ConvAlgorithm::im2col;
  // The cache: each block of output channels reads the whole padded image again (for
  // backward_input the padded adjoint: [O, Ho + 2(kh − 1 − pad), ...] at stride 1, padded by
  // less than the kernel at stride s).
  const std::int64_t padded =
      kernel != ConvKernel::backward_input ? g.C * (g.H + 2 * g.pad + g.stride) * (g.W + 2 * g.pad + g.stride)
      : g.stride == 1                      ? g.O * (g.Ho + 2 * (g.kh - 1 - g.pad)) * (g.Wo + 2 * (g.kw - 1 - g.pad))
                                           : g.O * (g.Ho + 2 * g.kh) * (g.Wo + 2 * g.kw);
  return padded * static_cast<std::int64_t>(element_bytes) <= l2_cache_bytes() / 2 ? ConvAlgorithm::direct
                                                                          : ConvAlgorithm::im2col;
}

namespace {

/// Whether `g` runs on the direct kernels. When a benchmark traces the GEMMs of a pass, the
/// products the im2col path would have run for each image (`per_image` of them, as im2col.cpp
/// runs them: one product per bank;
/// whole images, where im2col may split a large one into blocks of rows) are noted in their
/// place, `team` at a time as in its image loop, so that a pass's GEMM ceiling does not depend
/// on the algorithm.
template <class T>
bool use_direct(ConvKernel kernel, const ConvGeometry& g, std::int64_t count, GemmProblem product,
                std::int64_t per_image) {
  if (conv_algorithm(kernel, g, sizeof(T)) != ConvAlgorithm::direct) return false;
  const int team = image_loop::image_threads(count, 2.0 * count * per_image * product.m * product.n * product.k);
  product.is_double = std::is_same_v<T, double>;
  product.threads = team > 1 ? 1 : gemm_threads();
  GemmTrace::note(product, team, count * per_image);
  return true;
}

GemmProblem product(std::int64_t m, std::int64_t n, std::int64_t k, bool trans_b) {
  GemmProblem p;
  p.m = m, p.n = n, p.k = k, p.trans_b = trans_b;
  return p;
}

}  // namespace

template <class T>
void conv2d_forward(const ConvGeometry& g, std::int64_t count, const T* x, Banks<const T> w, Banks<T> out,
                    bool accumulate) {
  if (use_direct<T>(ConvKernel::forward, g, count, product(g.O, g.pixels(), g.patch(), false), w.count))
    return direct_conv2d_forward(g, count, x, w, out, accumulate);
  im2col_conv2d_forward(g, count, x, w, out, accumulate);
}

template <class T>
void conv2d_backward_input(const ConvGeometry& g, std::int64_t count, const T* gy, Banks<const T> w, Banks<T> out,
                           bool accumulate) {
  if (use_direct<T>(ConvKernel::backward_input, g, count, product(g.patch(), g.pixels(), g.O, false), w.count))
    return direct_conv2d_backward_input(g, count, gy, w, out, accumulate);
  im2col_conv2d_backward_input(g, count, gy, w, out, accumulate);
}

template <class T>
void conv2d_backward_weight(const ConvGeometry& g, std::int64_t count, Banks<const T> gy, Banks<const T> x,
                            Banks<T> out, bool accumulate) {
  if (use_direct<T>(ConvKernel::backward_weight, g, count, product(g.patch(), g.O, g.pixels(), true),
                    x.count * gy.count))
    return direct_conv2d_backward_weight(g, count, gy, x, out, accumulate);
  im2col_conv2d_backward_weight(g, count, gy, x, out, accumulate);
}

#define GRADHPO_CONV_INSTANTIATE(T)                                                                         \
  template void conv2d_forward<T>(const ConvGeometry&, std::int64_t, const T*, Banks<const T>, Banks<T>, bool); \
  template void conv2d_backward_input<T>(const ConvGeometry&, std::int64_t, const T*, Banks<const T>, Banks<T>, \
                                         bool);                                                             \
  template void conv2d_backward_weight<T>(const ConvGeometry&, std::int64_t, Banks<const T>, Banks<const T>,  \
                                          Banks<T>, bool);
GRADHPO_CONV_INSTANTIATE(float)
GRADHPO_CONV_INSTANTIATE(double)
#undef GRADHPO_CONV_INSTANTIATE

}  // namespace gradhpo::kernels
