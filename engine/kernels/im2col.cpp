#include "im2col.h"

#include <algorithm>
#include <cstring>

#include "cpu.h"

// Note [BLAS threads]
// With EIGEN_USE_BLAS, Eigen hands every float/double product to the BLAS. A pthreads OpenBLAS
// does not know it is called from inside an OpenMP region and starts its own threads for large
// products: two image threads × two BLAS threads on two cores, with spinning waits. While a
// convolution's image loop runs, OpenBLAS is therefore set to one thread, and restored after.
// The OpenBLAS entry points are weak references, so this costs nothing (and links) when Eigen
// uses its own GEMM or another BLAS; an OpenMP OpenBLAS (openblas_get_parallel() == 2) already
// runs single-threaded inside a parallel region and is left alone. This assumes, as the whole
// engine does, that one thread drives the tape at a time.
#if defined(EIGEN_USE_BLAS) && defined(__GNUC__)
extern "C" {
__attribute__((weak)) int openblas_get_num_threads(void);
__attribute__((weak)) void openblas_set_num_threads(int);
__attribute__((weak)) int openblas_get_parallel(void);
}
#define GRADHPO_OPENBLAS_WEAK 1
#endif

namespace gradhpo::kernels {

ConvGeometry ConvGeometry::make(const char* op, std::int64_t C, std::int64_t H, std::int64_t W, std::int64_t O,
                                std::int64_t kh, std::int64_t kw, std::int64_t stride, std::int64_t pad) {
  require(stride >= 1 && pad >= 0, std::string(op) + ": stride must be ≥ 1 and padding ≥ 0, got stride " +
                                       std::to_string(stride) + ", padding " + std::to_string(pad));
  require(kh >= 1 && kw >= 1 && kh <= H + 2 * pad && kw <= W + 2 * pad,
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

namespace {

// Unaligned array views: image and bank offsets are not multiples of 16 bytes in general
// (cpu.h's ArrayMap promises Aligned16).
template <class T> using Vec = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>;
template <class T> using ConstVec = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>;

// ---- threading ------------------------------------------------------------------------------

class SerialBlas {  // See Note [BLAS threads]
 public:
  explicit SerialBlas(bool active) {
#ifdef GRADHPO_OPENBLAS_WEAK
    if (active && openblas_get_parallel && openblas_get_num_threads && openblas_set_num_threads &&
        openblas_get_parallel() == 1) {
      saved_ = openblas_get_num_threads();
      if (saved_ > 1) openblas_set_num_threads(1);
    }
#else
    (void)active;
#endif
  }
  ~SerialBlas() {
#ifdef GRADHPO_OPENBLAS_WEAK
    if (saved_ > 1) openblas_set_num_threads(saved_);
#endif
  }
  SerialBlas(const SerialBlas&) = delete;
  SerialBlas& operator=(const SerialBlas&) = delete;

 private:
  int saved_ = 0;
};

/// Threads for a loop over `count` images doing `flops` in all: one when the work is too small
/// to pay for waking a thread, or when already inside a parallel region.
int image_threads(std::int64_t count, double flops) {
#ifdef _OPENMP
  if (count < 2 || flops < 4e5 || omp_in_parallel()) return 1;
  return static_cast<int>(std::min<std::int64_t>(omp_get_max_threads(), count));
#else
  (void)count, (void)flops;
  return 1;
#endif
}

/// Runs body(thread, begin, end) over contiguous chunks of [0, count) on `threads` threads.
/// The partition depends only on (count, threads), so results are reproducible.
template <class Body> void for_images(int threads, std::int64_t count, Body&& body) {
  if (threads <= 1) {
    body(0, std::int64_t{0}, count);
    return;
  }
  SerialBlas serial(true);
#ifdef _OPENMP
#pragma omp parallel num_threads(threads)
  {
    const std::int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    const std::int64_t begin = count * t / nt, end = count * (t + 1) / nt;
    if (begin < end) body(static_cast<int>(t), begin, end);
  }
#else
  body(0, std::int64_t{0}, count);
#endif
}

/// Per-thread scratch: `threads` slices of `per_thread` elements from one pooled tensor, each
/// slice starting on a 64-byte boundary.
template <class T> class Scratch {
 public:
  Scratch(int threads, std::int64_t per_thread) {
    stride_ = (std::max<std::int64_t>(per_thread, 1) + 15) / 16 * 16;
    if (per_thread > 0) buf_ = Tensor::empty(Shape{stride_ * threads}, dtype_of<T>());
  }
  T* operator()(int thread) { return buf_.defined() ? buf_.data<T>() + stride_ * thread : nullptr; }

 private:
  Tensor buf_;
  std::int64_t stride_ = 0;
};

// ---- im2col / col2im ------------------------------------------------------------------------

// Output columns ow whose input column ow·stride − pad + j lies inside [0, W): [lo, hi).
inline void valid_columns(const ConvGeometry& g, std::int64_t j, std::int64_t& lo, std::int64_t& hi) {
  const std::int64_t first = g.pad - j;  // need ow·stride ≥ first
  lo = first <= 0 ? 0 : (first + g.stride - 1) / g.stride;
  const std::int64_t last = g.W - 1 + g.pad - j;  // need ow·stride ≤ last
  hi = last < 0 ? 0 : std::min(g.Wo, last / g.stride + 1);
  lo = std::min(lo, hi);
}

/// cols [C·kh·kw, Ho·Wo] (row (c, i, j), column (oh, ow)) from one image [C, H, W].
template <class T> void im2col(const ConvGeometry& g, const T* x, T* cols) {
  const std::int64_t P = g.pixels();
  for (std::int64_t c = 0; c < g.C; ++c)
    for (std::int64_t i = 0; i < g.kh; ++i)
      for (std::int64_t j = 0; j < g.kw; ++j) {
        T* row = cols + ((c * g.kh + i) * g.kw + j) * P;
        std::int64_t lo, hi;
        valid_columns(g, j, lo, hi);
        for (std::int64_t oh = 0; oh < g.Ho; ++oh) {
          T* dst = row + oh * g.Wo;
          const std::int64_t ih = oh * g.stride - g.pad + i;
          if (ih < 0 || ih >= g.H) {
            std::fill(dst, dst + g.Wo, T(0));
            continue;
          }
          const T* src = x + (c * g.H + ih) * g.W - g.pad + j;  // src[ow·stride] is column ow
          std::fill(dst, dst + lo, T(0));
          if (g.stride == 1) {
            std::memcpy(dst + lo, src + lo, static_cast<std::size_t>(hi - lo) * sizeof(T));
          } else {
            for (std::int64_t ow = lo; ow < hi; ++ow) dst[ow] = src[ow * g.stride];
          }
          std::fill(dst + hi, dst + g.Wo, T(0));
        }
      }
}

/// x += col2im(cols): every patch entry added back to the pixel it was read from.
template <class T> void col2im_add(const ConvGeometry& g, const T* cols, T* x) {
  const std::int64_t P = g.pixels();
  for (std::int64_t c = 0; c < g.C; ++c)
    for (std::int64_t i = 0; i < g.kh; ++i)
      for (std::int64_t j = 0; j < g.kw; ++j) {
        const T* row = cols + ((c * g.kh + i) * g.kw + j) * P;
        std::int64_t lo, hi;
        valid_columns(g, j, lo, hi);
        for (std::int64_t oh = 0; oh < g.Ho; ++oh) {
          const std::int64_t ih = oh * g.stride - g.pad + i;
          if (ih < 0 || ih >= g.H) continue;
          const T* src = row + oh * g.Wo;
          T* dst = x + (c * g.H + ih) * g.W - g.pad + j;
          if (g.stride == 1) {
            for (std::int64_t ow = lo; ow < hi; ++ow) dst[ow] += src[ow];
          } else {
            for (std::int64_t ow = lo; ow < hi; ++ow) dst[ow * g.stride] += src[ow];
          }
        }
      }
}

/// The M banks of `b` as one [M·rows, cols] row-major matrix: a view when they are already
/// stacked contiguously, else a copy into `buf` (filters are small).
template <class T>
const T* stacked(Banks<const T> b, std::int64_t size, Tensor& buf) {
  bool contiguous = true;
  for (std::int64_t m = 1; m < b.count && contiguous; ++m) contiguous = b[m] == b.first + m * size;
  if (contiguous) return b.first;
  buf = Tensor::empty(Shape{b.count * size}, dtype_of<T>());
  T* p = buf.data<T>();
  for (std::int64_t m = 0; m < b.count; ++m) std::memcpy(p + m * size, b[m], static_cast<std::size_t>(size) * sizeof(T));
  return p;
}

}  // namespace

// ---- forward: y_i = W cols(x_i) ---------------------------------------------------------------

template <class T>
void conv2d_forward(const ConvGeometry& g, std::int64_t count, const T* x, Banks<const T> w, Banks<T> out,
                    bool accumulate) {
  const std::int64_t M = w.count, O = g.O, KK = g.patch(), P = g.pixels();
  Tensor wbuf;
  const T* W = stacked(w, g.filters(), wbuf);  // [M·O, KK]
  const int threads = image_threads(count, 2.0 * count * M * O * KK * P);
  Scratch<T> cols_buf(threads, g.pointwise() ? 0 : KK * P);
  Scratch<T> res_buf(threads, M > 1 ? M * O * P : 0);
  for_images(threads, count, [&](int t, std::int64_t begin, std::int64_t end) {
    ConstMatrixMap<T> Wm(W, M * O, KK);
    T* cols = cols_buf(t);
    for (std::int64_t i = begin; i < end; ++i) {
      const T* xi = x + i * g.in_image();
      if (!g.pointwise()) im2col(g, xi, cols);
      ConstMatrixMap<T> Cm(g.pointwise() ? xi : cols, KK, P);
      if (M == 1) {
        MatrixMap<T> Y(out[0] + i * O * P, O, P);
        if (accumulate) Y.noalias() += Wm * Cm;
        else Y.noalias() = Wm * Cm;
        continue;
      }
      MatrixMap<T> R(res_buf(t), M * O, P);
      R.noalias() = Wm * Cm;
      for (std::int64_t m = 0; m < M; ++m) {
        Vec<T> dst(out[m] + i * O * P, O * P);
        ConstVec<T> src(res_buf(t) + m * O * P, O * P);
        if (accumulate) dst += src;
        else dst = src;
      }
    }
  });
}

// ---- backward_input: x̄_i = col2im(Wᵀ ḡ_i) -----------------------------------------------------

template <class T>
void conv2d_backward_input(const ConvGeometry& g, std::int64_t count, const T* gy, Banks<const T> w, Banks<T> out,
                           bool accumulate) {
  const std::int64_t M = w.count, O = g.O, KK = g.patch(), P = g.pixels(), CHW = g.in_image();
  // The filters transposed and stacked, [M·KK, O], so that one product per image serves all banks.
  Tensor wt_t = Tensor::empty(Shape{M * KK * O}, dtype_of<T>());
  T* WT = wt_t.data<T>();
  for (std::int64_t m = 0; m < M; ++m)
    MatrixMap<T>(WT + m * KK * O, KK, O) = ConstMatrixMap<T>(w[m], O, KK).transpose();
  const int threads = image_threads(count, 2.0 * count * M * O * KK * P);
  const bool direct = g.pointwise() && M == 1;  // col2im is the identity: write x̄_i straight
  Scratch<T> cols_buf(threads, direct ? 0 : M * KK * P);
  for_images(threads, count, [&](int t, std::int64_t begin, std::int64_t end) {
    ConstMatrixMap<T> WTm(WT, M * KK, O);
    T* cols = cols_buf(t);
    for (std::int64_t i = begin; i < end; ++i) {
      ConstMatrixMap<T> G(gy + i * O * P, O, P);
      if (direct) {
        MatrixMap<T> X(out[0] + i * CHW, KK, P);
        if (accumulate) X.noalias() += WTm * G;
        else X.noalias() = WTm * G;
        continue;
      }
      MatrixMap<T>(cols, M * KK, P).noalias() = WTm * G;
      for (std::int64_t m = 0; m < M; ++m) {
        T* xi = out[m] + i * CHW;
        const T* cm = cols + m * KK * P;
        if (g.pointwise()) {
          Vec<T> dst(xi, CHW);
          ConstVec<T> src(cm, CHW);
          if (accumulate) dst += src;
          else dst = src;
          continue;
        }
        if (!accumulate) std::fill(xi, xi + CHW, T(0));
        col2im_add(g, cm, xi);
      }
    }
  });
}

// ---- backward_weight: W̄ = Σ_i ḡ_i cols(x_i)ᵀ --------------------------------------------------

template <class T>
void conv2d_backward_weight(const ConvGeometry& g, std::int64_t count, Banks<const T> gy, Banks<const T> x,
                            Banks<T> out, bool accumulate) {
  require(gy.count == 1 || x.count == 1, "conv2d_backward_weight: one operand must have a single bank");
  const std::int64_t Mg = gy.count, Mx = x.count, M = std::max(Mg, Mx);
  const std::int64_t O = g.O, KK = g.patch(), P = g.pixels(), OP = g.out_image(), CHW = g.in_image();
  const int threads = image_threads(count, 2.0 * count * M * O * KK * P);
  // Per thread: its partial sum, [Mg·O, KK] (one x bank) or [O, Mx·KK] (one ḡ bank); the ḡ
  // rows of all banks stacked, [Mg·O, P]; and the im2col rows of all x banks, [Mx·KK, P].
  const bool stack_g = Mg > 1, direct_cols = g.pointwise() && Mx == 1;
  Scratch<T> acc_buf(threads, M * O * KK);
  Scratch<T> g_buf(threads, stack_g ? Mg * OP : 0);
  Scratch<T> cols_buf(threads, direct_cols ? 0 : Mx * KK * P);
  for_images(threads, count, [&](int t, std::int64_t begin, std::int64_t end) {
    T* acc = acc_buf(t);
    std::fill(acc, acc + M * O * KK, T(0));
    for (std::int64_t i = begin; i < end; ++i) {
      const T* cols = cols_buf(t);
      if (direct_cols) {
        cols = x[0] + i * CHW;
      } else {
        for (std::int64_t m = 0; m < Mx; ++m) {
          if (g.pointwise()) std::memcpy(cols_buf(t) + m * KK * P, x[m] + i * CHW, static_cast<std::size_t>(CHW) * sizeof(T));
          else im2col(g, x[m] + i * CHW, cols_buf(t) + m * KK * P);
        }
      }
      const T* G = gy[0] + i * OP;
      if (stack_g) {
        for (std::int64_t m = 0; m < Mg; ++m)
          std::memcpy(g_buf(t) + m * OP, gy[m] + i * OP, static_cast<std::size_t>(OP) * sizeof(T));
        G = g_buf(t);
      }
      // [Mg·O, P] × [P, Mx·KK]ᵀ-view: the bank that has one entry broadcasts over the other.
      MatrixMap<T>(acc, Mg * O, Mx * KK).noalias() +=
          ConstMatrixMap<T>(G, Mg * O, P) * ConstMatrixMap<T>(cols, Mx * KK, P).transpose();
    }
  });
  // Sum the threads' partial sums (in thread order: reproducible) into the output banks.
  const std::int64_t per = O * KK;
  for (std::int64_t m = 0; m < M; ++m) {
    T* dst = out[m];
    if (!accumulate) std::fill(dst, dst + per, T(0));
    for (int t = 0; t < threads; ++t) {
      const T* acc = acc_buf(t);
      if (Mx == 1) {  // acc is [Mg·O, KK]: bank m is rows m·O ..
        Vec<T>(dst, per) += ConstVec<T>(acc + m * per, per);
      } else {  // acc is [O, Mx·KK]: bank m is columns m·KK ..
        for (std::int64_t o = 0; o < O; ++o)
          Vec<T>(dst + o * KK, KK) += ConstVec<T>(acc + o * Mx * KK + m * KK, KK);
      }
    }
  }
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
