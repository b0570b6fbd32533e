#include "im2col.h"

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "cpu.h"
#include "gemm.h"
#include "image_loop.h"

namespace gradhpo::kernels {

namespace {

// Unaligned array views: image and bank offsets are not multiples of 16 bytes in general
// (cpu.h's ArrayMap promises Aligned16).
template <class T> using Vec = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>;
template <class T> using ConstVec = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>;

using image_loop::for_images;
using image_loop::image_threads;
using image_loop::copy_row;
using image_loop::Padded;
using image_loop::Scratch;

// ---- im2col / col2im ------------------------------------------------------------------------
// Patches are read from (and col2im adds into) a zero-padded copy of the image,
// [C, H + 2·pad, W + 2·pad], so that every patch row is a plain strided copy with no bounds
// tests (twice as fast as clipping each row for the small images of LeNet and late WRN
// groups). The padded buffers are per thread; for im2col the border is zeroed once per call and
// only the interior is refreshed per image.
//
// Images are processed in blocks of output rows whose im2col block is at most about
// kColsBlockBytes, so the per-thread scratch stays bounded for large images (a 64-channel
// 224×224 image would need 115 MB of cols at once). For CIFAR/MNIST sizes this is one or two
// blocks per image; measured block sizes from 48 KB to 512 KB made no difference there.

constexpr std::int64_t kColsBlockBytes = 512 * 1024;


/// Elements of one padded image buffer (Padded's layout at stride 1; 0 without padding).
inline std::int64_t padded_size(const ConvGeometry& g) {
  return g.pad > 0 ? g.C * (g.H + 2 * g.pad) * (g.W + 2 * g.pad) : 0;
}

/// Output rows per block for an im2col block of `rows` matrix rows.
template <class T> std::int64_t block_rows(const ConvGeometry& g, std::int64_t rows) {
  const std::int64_t per_row = rows * g.Wo * static_cast<std::int64_t>(sizeof(T));
  return std::clamp<std::int64_t>(kColsBlockBytes / std::max<std::int64_t>(per_row, 1), 1, g.Ho);
}

/// d[0, n) += s[0, n), the same way: whole chunks, and the last two chunks (which may overlap)
/// both summed from the unchanged d before either is stored, so the overlap holds d + s once.
template <class T> inline void add_row(T* __restrict d, const T* __restrict s, std::int64_t n) {
  constexpr std::int64_t V = 64 / sizeof(T);
  auto chunks = [&](auto width) {
    constexpr std::int64_t v = decltype(width)::value;
    auto sum = [&](std::int64_t at, T* out) {
      for (std::int64_t k = 0; k < v; ++k) out[k] = d[at + k] + s[at + k];
    };
    T a[v], b[v];
    std::int64_t i = 0;
    for (; i + 2 * v <= n; i += v) {
      sum(i, a);
      std::memcpy(d + i, a, sizeof a);
    }
    sum(i, a);
    sum(n - v, b);
    std::memcpy(d + i, a, sizeof a);
    std::memcpy(d + n - v, b, sizeof b);
  };
  if (n >= V) return chunks(std::integral_constant<std::int64_t, V>{});
  if (n >= V / 2) return chunks(std::integral_constant<std::int64_t, V / 2>{});
  if (n >= V / 4) return chunks(std::integral_constant<std::int64_t, V / 4>{});
  for (std::int64_t i = 0; i < n; ++i) d[i] += s[i];
}

/// Where patches are read from: the image itself (pad = 0) or `xp` (zero border, `padded` of
/// the image's layout) after its interior has been filled with the image.
template <class T> const T* patch_source(const Padded& padded, const T* x, T* xp) {
  if (padded.ph == 0 && padded.pw == 0) return x;
  padded.fill(x, xp);
  return xp;
}

/// cols [C·kh·kw, (oh1 − oh0)·Wo]: row (c, i, j), column (oh − oh0, ow), for output rows
/// [oh0, oh1), read from a patch source (padded layout when pad > 0).
template <class T> void im2col_rows(const ConvGeometry& g, const T* src, T* cols, std::int64_t oh0, std::int64_t oh1) {
  const std::int64_t Hs = g.H + 2 * g.pad, Ws = g.W + 2 * g.pad, np = (oh1 - oh0) * g.Wo;
  for (std::int64_t c = 0; c < g.C; ++c)
    for (std::int64_t i = 0; i < g.kh; ++i)
      for (std::int64_t j = 0; j < g.kw; ++j) {
        T* row = cols + ((c * g.kh + i) * g.kw + j) * np;
        const T* base = src + (c * Hs + i) * Ws + j;
        for (std::int64_t oh = oh0; oh < oh1; ++oh) {
          const T* __restrict s = base + oh * g.stride * Ws;
          T* __restrict d = row + (oh - oh0) * g.Wo;
          if (g.stride == 1)
            copy_row(d, s, g.Wo);
          else
            for (std::int64_t ow = 0; ow < g.Wo; ++ow) d[ow] = s[ow * g.stride];
        }
      }
}

/// dst += col2im of the cols block of output rows [oh0, oh1) (the adjoint of im2col_rows);
/// dst is in the patch-source layout (padded when pad > 0).
template <class T> void col2im_rows(const ConvGeometry& g, const T* cols, T* dst, std::int64_t oh0, std::int64_t oh1) {
  const std::int64_t Hs = g.H + 2 * g.pad, Ws = g.W + 2 * g.pad, np = (oh1 - oh0) * g.Wo;
  for (std::int64_t c = 0; c < g.C; ++c)
    for (std::int64_t i = 0; i < g.kh; ++i)
      for (std::int64_t j = 0; j < g.kw; ++j) {
        const T* row = cols + ((c * g.kh + i) * g.kw + j) * np;
        T* base = dst + (c * Hs + i) * Ws + j;
        for (std::int64_t oh = oh0; oh < oh1; ++oh) {
          T* __restrict d = base + oh * g.stride * Ws;
          const T* __restrict s = row + (oh - oh0) * g.Wo;
          if (g.stride == 1)
            add_row(d, s, g.Wo);
          else
            for (std::int64_t ow = 0; ow < g.Wo; ++ow) d[ow * g.stride] += s[ow];
        }
      }
}

/// Where col2im of image x accumulates: x itself (pad = 0; zeroed unless accumulating) or
/// `xp`, zeroed; col2im_finish then moves xp's interior into x.
template <class T> T* col2im_target(const ConvGeometry& g, T* x, T* xp, bool accumulate) {
  if (g.pad == 0) {
    if (!accumulate) std::fill(x, x + g.in_image(), T(0));
    return x;
  }
  std::fill(xp, xp + padded_size(g), T(0));
  return xp;
}
template <class T> void col2im_finish(const ConvGeometry& g, const T* xp, T* x, bool accumulate) {
  if (g.pad == 0) return;
  const std::int64_t Hs = g.H + 2 * g.pad, Ws = g.W + 2 * g.pad;
  for (std::int64_t c = 0; c < g.C; ++c)
    for (std::int64_t h = 0; h < g.H; ++h) {
      const T* __restrict s = xp + (c * Hs + h + g.pad) * Ws + g.pad;
      T* __restrict d = x + (c * g.H + h) * g.W;
      if (accumulate)
        for (std::int64_t w = 0; w < g.W; ++w) d[w] += s[w];
      else
        for (std::int64_t w = 0; w < g.W; ++w) d[w] = s[w];
    }
}

/// `n` padded buffers of the thread, their borders zeroed (for im2col).
template <class T> T* zeroed_padding(Scratch<T>& buf, int t, std::int64_t n, const ConvGeometry& g) {
  T* xp = buf(t);
  if (xp) std::fill(xp, xp + n * padded_size(g), T(0));
  return xp;
}

}  // namespace

// ---- forward: y_i = W cols(x_i) ---------------------------------------------------------------

template <class T>
void im2col_conv2d_forward(const ConvGeometry& g, std::int64_t count, const T* x, Banks<const T> w, Banks<T> out,
                    bool accumulate) {
  const std::int64_t M = w.count, O = g.O, KK = g.patch(), P = g.pixels(), OP = g.out_image();
  const int threads = image_threads(count, 2.0 * count * M * O * KK * P);
  const std::int64_t rb = block_rows<T>(g, KK);
  Scratch<T> cols_buf(threads, g.pointwise() ? 0 : KK * rb * g.Wo);
  Scratch<T> pad_buf(threads, padded_size(g));
  const Padded padded(g.C, g.H, g.W, g.pad, g.pad, 1);
  const T beta = accumulate ? T(1) : T(0);
  gemm_override();  // a bad GRADHPO_GEMM throws here, not inside the parallel region
  for_images(threads, count, [&](int t, std::int64_t begin, std::int64_t end) {
    T* cols = cols_buf(t);
    T* xp = zeroed_padding(pad_buf, t, 1, g);
    for (std::int64_t i = begin; i < end; ++i) {
      const T* xi = x + i * g.in_image();
      // Y_m[:, block] (+)= W_m cols(block): one product per filter bank, of the shape the bank has
      // alone, so that each bank has the bits it has alone (conv.h). One [M·O, KK] product over
      // all banks could run another GEMM library than the bank's own shape does: the planner
      // chooses per shape, at run time.
      if (g.pointwise()) {
        for (std::int64_t m = 0; m < M; ++m)
          gemm_strided<T>(O, P, KK, w[m], KK, false, xi, P, false, out[m] + i * OP, P, T(1), beta);
        continue;
      }
      const T* src = patch_source(padded, xi, xp);
      for (std::int64_t oh0 = 0; oh0 < g.Ho; oh0 += rb) {
        const std::int64_t oh1 = std::min(g.Ho, oh0 + rb), np = (oh1 - oh0) * g.Wo;
        im2col_rows(g, src, cols, oh0, oh1);
        for (std::int64_t m = 0; m < M; ++m)
          gemm_strided<T>(O, np, KK, w[m], KK, false, cols, np, false, out[m] + i * OP + oh0 * g.Wo, P, T(1), beta);
      }
    }
  });
}

// ---- backward_input: x̄_i = col2im(Wᵀ ḡ_i) -----------------------------------------------------

template <class T>
void im2col_conv2d_backward_input(const ConvGeometry& g, std::int64_t count, const T* gy, Banks<const T> w, Banks<T> out,
                           bool accumulate) {
  const std::int64_t M = w.count, O = g.O, KK = g.patch(), P = g.pixels(), CHW = g.in_image(), OP = g.out_image();
  // The filters transposed and stacked, [M·KK, O], so that one product per image serves all banks.
  Tensor wt_t = Tensor::empty(Shape{M * KK * O}, dtype_of<T>());
  T* WT = wt_t.data<T>();
  for (std::int64_t m = 0; m < M; ++m)
    MatrixMap<T>(WT + m * KK * O, KK, O) = ConstMatrixMap<T>(w[m], O, KK).transpose();
  const int threads = image_threads(count, 2.0 * count * M * O * KK * P);
  const bool in_place = g.pointwise() && M == 1;  // col2im is the identity: write x̄_i straight
  // Blocks of rows, and one product per bank, of the same shapes whatever the banks: each bank
  // then has the bits it has alone (one product over all banks could run another kernel).
  const std::int64_t rb = block_rows<T>(g, KK);
  Scratch<T> cols_buf(threads, in_place ? 0 : KK * rb * g.Wo);
  Scratch<T> pad_buf(threads, M * padded_size(g));
  gemm_override();  // a bad GRADHPO_GEMM throws here, not inside the parallel region
  for_images(threads, count, [&](int t, std::int64_t begin, std::int64_t end) {
    T* cols = cols_buf(t);
    for (std::int64_t i = begin; i < end; ++i) {
      if (in_place) {
        gemm_strided<T>(KK, P, O, WT, O, false, gy + i * OP, P, false, out[0] + i * CHW, P, T(1),
                        accumulate ? T(1) : T(0));
        continue;
      }
      for (std::int64_t m = 0; m < M; ++m) col2im_target(g, out[m] + i * CHW, pad_buf(t) + m * padded_size(g), accumulate);
      T* const target0 = g.pad > 0 ? pad_buf(t) : nullptr;
      for (std::int64_t oh0 = 0; oh0 < g.Ho; oh0 += rb) {
        const std::int64_t oh1 = std::min(g.Ho, oh0 + rb), np = (oh1 - oh0) * g.Wo;
        for (std::int64_t m = 0; m < M; ++m) {
          gemm_strided<T>(KK, np, O, WT + m * KK * O, O, false, gy + i * OP + oh0 * g.Wo, P, false, cols, np, T(1), T(0));
          col2im_rows(g, cols, target0 ? target0 + m * padded_size(g) : out[m] + i * CHW, oh0, oh1);
        }
      }
      for (std::int64_t m = 0; m < M; ++m) col2im_finish(g, pad_buf(t) + m * padded_size(g), out[m] + i * CHW, accumulate);
    }
  });
}

// ---- backward_weight: W̄ = Σ_i ḡ_i cols(x_i)ᵀ --------------------------------------------------

template <class T>
void im2col_conv2d_backward_weight(const ConvGeometry& g, std::int64_t count, Banks<const T> gy, Banks<const T> x,
                            Banks<T> out, bool accumulate) {
  GRADHPO_CHECK(gy.count == 1 || x.count == 1, "conv2d_backward_weight: one operand must have a single bank");
  const std::int64_t Mg = gy.count, Mx = x.count, M = std::max(Mg, Mx);
  const std::int64_t O = g.O, KK = g.patch(), P = g.pixels(), OP = g.out_image(), CHW = g.in_image();
  const int threads = image_threads(count, 2.0 * count * M * O * KK * P);
  // Per thread: its partial sum, [Mg·O, KK] (one x bank) or [O, Mx·KK] (one ḡ bank); a block
  // of the ḡ rows of all banks stacked, [Mg·O, np]; and of the im2col rows of all x banks,
  // [Mx·KK, np]; and a padded copy of each x bank's image.
  const bool in_place = g.pointwise() && Mx == 1 && Mg == 1;
  // Blocks of the same rows whatever the banks, and one product per bank (below): each bank
  // then sums its terms in the order it does alone, so it has the same bits. A pointwise
  // convolution alone runs one product over the whole image (in_place), so banked it takes the
  // whole image as one block too.
  const std::int64_t rb = g.pointwise() ? g.Ho : block_rows<T>(g, KK);
  Scratch<T> acc_buf(threads, M * O * KK);
  Scratch<T> g_buf(threads, Mg > 1 ? Mg * O * rb * g.Wo : 0);
  Scratch<T> cols_buf(threads, in_place ? 0 : Mx * KK * rb * g.Wo);
  Scratch<T> pad_buf(threads, Mx * padded_size(g));
  const Padded padded(g.C, g.H, g.W, g.pad, g.pad, 1);
  // Zeroed here, not in the region: a thread that OpenMP does not start (or that gets no image)
  // still contributes its (zero) partial sum below.
  for (int t = 0; t < threads; ++t) std::fill(acc_buf(t), acc_buf(t) + M * O * KK, T(0));
  gemm_override();  // a bad GRADHPO_GEMM throws here, not inside the parallel region
  for_images(threads, count, [&](int t, std::int64_t begin, std::int64_t end) {
    T* acc = acc_buf(t);
    // acc holds Aᵀ = Σ Cols Gᵀ, [Mx·KK, Mg·O] (A = Σ G Colsᵀ transposed): OpenBLAS runs this
    // form at full speed and "G Colsᵀ" 2× slower for these shapes (long inner dimension, small
    // result); Eigen runs both alike. G is [Mg·O, np] with rows ldg apart, Cols [Mx·KK, np].
    // One product per bank, [KK, O] each, of the shape the bank alone has.
    auto add = [&](const T* G, std::int64_t ldg, const T* C, std::int64_t ldc, std::int64_t np) {
      for (std::int64_t mx = 0; mx < Mx; ++mx)
        for (std::int64_t mg = 0; mg < Mg; ++mg)
          gemm_strided<T>(KK, O, np, C + mx * KK * ldc, ldc, false, G + mg * O * ldg, ldg, true,
                          acc + mx * KK * Mg * O + mg * O, Mg * O, T(1), T(1));
    };
    T* xp = zeroed_padding(pad_buf, t, Mx, g);
    T* cols = cols_buf(t);
    for (std::int64_t i = begin; i < end; ++i) {
      if (in_place) {
        add(gy[0] + i * OP, P, x[0] + i * CHW, P, P);
        continue;
      }
      // Bank m's patches come from its own padded buffer (or its image when pad = 0).
      auto source = [&](std::int64_t m) -> const T* { return g.pad > 0 ? xp + m * padded_size(g) : x[m] + i * CHW; };
      if (g.pad > 0)
        for (std::int64_t m = 0; m < Mx; ++m) padded.fill(x[m] + i * CHW, xp + m * padded_size(g));
      for (std::int64_t oh0 = 0; oh0 < g.Ho; oh0 += rb) {
        const std::int64_t oh1 = std::min(g.Ho, oh0 + rb), np = (oh1 - oh0) * g.Wo, p0 = oh0 * g.Wo;
        for (std::int64_t m = 0; m < Mx; ++m) im2col_rows(g, source(m), cols + m * KK * np, oh0, oh1);
        if (Mg == 1) {
          add(gy[0] + i * OP + p0, P, cols, np, np);
        } else {
          T* gb = g_buf(t);
          for (std::int64_t m = 0; m < Mg; ++m)
            for (std::int64_t o = 0; o < O; ++o)
              std::memcpy(gb + (m * O + o) * np, gy[m] + i * OP + o * P + p0, static_cast<std::size_t>(np) * sizeof(T));
          add(gb, np, cols, np, np);
        }
      }
    }
  });
  // Sum the threads' partial sums (in thread order: reproducible) into the output banks. Bank m
  // is rows m·O.. of A when gy has the banks, columns m·KK.. when x has them.
  for (std::int64_t m = 0; m < M; ++m) {
    MatrixMap<T> dst(out[m], O, KK);
    if (!accumulate) dst.setZero();
    const std::int64_t r0 = Mg > 1 ? m * O : 0, c0 = Mx > 1 ? m * KK : 0;
    for (int t = 0; t < threads; ++t) dst += ConstMatrixMap<T>(acc_buf(t), Mx * KK, Mg * O).block(c0, r0, KK, O).transpose();
  }
}

#define GRADHPO_CONV_INSTANTIATE(T)                                                                         \
  template void im2col_conv2d_forward<T>(const ConvGeometry&, std::int64_t, const T*, Banks<const T>, Banks<T>, bool); \
  template void im2col_conv2d_backward_input<T>(const ConvGeometry&, std::int64_t, const T*, Banks<const T>, Banks<T>, \
                                         bool);                                                             \
  template void im2col_conv2d_backward_weight<T>(const ConvGeometry&, std::int64_t, Banks<const T>, Banks<const T>,  \
                                          Banks<T>, bool);
GRADHPO_CONV_INSTANTIATE(float)
GRADHPO_CONV_INSTANTIATE(double)
#undef GRADHPO_CONV_INSTANTIATE

}  // namespace gradhpo::kernels
