#include "conv.h"

#include <algorithm>
#include <chrono>
#include <type_traits>
#include <vector>

#include "../work_count.h"
#include "conv_direct.h"
#include "conv_dnnl.h"
#include "conv_plan.h"
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

namespace {

// In env_choice's order; "ours" keeps conv_algorithm's own choice and leaves oneDNN out.
enum Forced { none, forced_direct, forced_im2col, forced_ours, forced_dnnl, forced_dnnl_blocked };

// GRADHPO_CONV, read once; throws Error for an unknown value or a oneDNN one without oneDNN.
int forced_conv() {
  static const int forced = [] {
    const int choice = env_choice("GRADHPO_CONV", {"direct", "im2col", "ours", "dnnl", "dnnl-blocked"});
    GRADHPO_CHECK(choice < forced_dnnl || dnnl_conv::built(),
                  "GRADHPO_CONV=dnnl: gradhpo was built without oneDNN (GRADHPO_DNNL=OFF or libdnnl-dev missing)");
    return choice;
  }();
  return forced;
}

}  // namespace

ConvAlgorithm conv_algorithm(ConvKernel kernel, const ConvGeometry& g, std::size_t element_bytes) {
  const int forced = forced_conv();
  if (forced == forced_im2col || !direct_conv_applies(kernel, g)) return ConvAlgorithm::im2col;
  if (forced == forced_direct) return ConvAlgorithm::direct;
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

GemmProblem product(std::int64_t m, std::int64_t n, std::int64_t k, bool trans_b) {
  GemmProblem p;
  p.m = m, p.n = n, p.k = k, p.trans_b = trans_b;
  return p;
}

// The product each image of `kernel` amounts to (what im2col.cpp runs per image and bank).
GemmProblem image_product(ConvKernel kernel, const ConvGeometry& g) {
  switch (kernel) {
    case ConvKernel::forward: return product(g.O, g.pixels(), g.patch(), false);
    case ConvKernel::backward_input: return product(g.patch(), g.pixels(), g.O, false);
    default: return product(g.patch(), g.O, g.pixels(), true);
  }
}

/// For a kernel that computes the products without calling gemm (the direct kernels, oneDNN):
/// the products the im2col path would have run for each image (`per_image` of them, one per
/// bank, as im2col.cpp runs them; whole images, where im2col may split a large one into blocks
/// of rows) are counted and, when a benchmark traces the GEMMs of a pass, noted in their place,
/// `team` at a time as in its image loop, so that neither the work count nor a pass's GEMM
/// ceiling depends on the algorithm.
template <class T>
void note_products(ConvKernel kernel, const ConvGeometry& g, std::int64_t count, std::int64_t per_image) {
  GemmProblem p = image_product(kernel, g);
  const int team = image_loop::image_threads(count, 2.0 * count * per_image * p.m * p.n * p.k);
  p.is_double = std::is_same_v<T, double>;
  p.threads = team > 1 ? 1 : gemm_threads();
  GemmTrace::note(p, team, count * per_image);
}

// ---- our kernels: direct where conv_algorithm takes it, else im2col + GEMM -------------------

template <class T>
void ours_forward(const ConvGeometry& g, std::int64_t count, const T* x, Banks<const T> w, Banks<T> out,
                  bool accumulate) {
  if (conv_algorithm(ConvKernel::forward, g, sizeof(T)) != ConvAlgorithm::direct)
    return im2col_conv2d_forward(g, count, x, w, out, accumulate);
  note_products<T>(ConvKernel::forward, g, count, w.count);
  direct_conv2d_forward(g, count, x, w, out, accumulate);
}

template <class T>
void ours_backward_input(const ConvGeometry& g, std::int64_t count, const T* gy, Banks<const T> w, Banks<T> out,
                         bool accumulate) {
  if (conv_algorithm(ConvKernel::backward_input, g, sizeof(T)) != ConvAlgorithm::direct)
    return im2col_conv2d_backward_input(g, count, gy, w, out, accumulate);
  note_products<T>(ConvKernel::backward_input, g, count, w.count);
  direct_conv2d_backward_input(g, count, gy, w, out, accumulate);
}

template <class T>
void ours_backward_weight(const ConvGeometry& g, std::int64_t count, Banks<const T> gy, Banks<const T> x,
                          Banks<T> out, bool accumulate) {
  if (conv_algorithm(ConvKernel::backward_weight, g, sizeof(T)) != ConvAlgorithm::direct)
    return im2col_conv2d_backward_weight(g, count, gy, x, out, accumulate);
  note_products<T>(ConvKernel::backward_weight, g, count, x.count * gy.count);
  direct_conv2d_backward_weight(g, count, gy, x, out, accumulate);
}

// ---- the planner: ours or oneDNN's, per kernel and geometry ----------------------------------

const char* backend_name(ConvBackend b) {
  return b == ConvBackend::ours ? "ours" : b == ConvBackend::dnnl ? "dnnl" : "dnnl-blocked";
}

// The images the planner times a case on: the first power of two whose products reach 2·10⁷
// multiply-adds (a few milliseconds on one core), at most 32.
std::int64_t planning_images(ConvKernel kernel, const ConvGeometry& g) {
  const GemmProblem p = image_product(kernel, g);
  std::int64_t n = 1;
  while (n < 32 && n * p.m * p.n * p.k < 20'000'000) n *= 2;
  return n;
}

// Times every backend on `planning_images` images of scratch data, one bank, one thread
// (interleaved, best of three rounds, like the GEMM planner), and names the fastest. Ours is
// timed through the same functions the kernels run; the multiply-adds its im2col products count
// are taken back out of the work count, so that planning costs a run nothing in its budget.
std::string plan_backend(ConvKernel kernel, const ConvGeometry& g) {
  const std::int64_t n = planning_images(kernel, g);
  std::vector<float> image(static_cast<std::size_t>(n * g.in_image()), 0.5f);
  std::vector<float> filters(static_cast<std::size_t>(g.filters()), 0.25f);
  std::vector<float> adjoint(static_cast<std::size_t>(n * g.out_image()), 0.125f);
  std::vector<float> result(static_cast<std::size_t>(std::max(n * std::max(g.in_image(), g.out_image()), g.filters())));
  const Banks<const float> w = Banks<const float>::one(filters.data()), x = Banks<const float>::one(image.data());
  const Banks<const float> gy = Banks<const float>::one(adjoint.data());
  const Banks<float> out = Banks<float>::one(result.data());
  const bool im2col = conv_algorithm(kernel, g, sizeof(float)) == ConvAlgorithm::im2col;
  std::int64_t counted = 0;  // multiply-adds the timed im2col calls added to the work count
  auto call = [&](ConvBackend b) {
    const dnnl_conv::Layout layout = b == ConvBackend::dnnl ? dnnl_conv::Layout::plain : dnnl_conv::Layout::blocked;
    switch (kernel) {
      case ConvKernel::forward:
        if (b != ConvBackend::ours) return dnnl_conv::forward(layout, g, n, image.data(), w, out, false);
        im2col ? im2col_conv2d_forward(g, n, image.data(), w, out, false)
               : direct_conv2d_forward(g, n, image.data(), w, out, false);
        break;
      case ConvKernel::backward_input:
        if (b != ConvBackend::ours) return dnnl_conv::backward_input(layout, g, n, adjoint.data(), w, out, false);
        im2col ? im2col_conv2d_backward_input(g, n, adjoint.data(), w, out, false)
               : direct_conv2d_backward_input(g, n, adjoint.data(), w, out, false);
        break;
      case ConvKernel::backward_weight:
        if (b != ConvBackend::ours) return dnnl_conv::backward_weight(layout, g, n, gy, x, out, false);
        im2col ? im2col_conv2d_backward_weight(g, n, gy, x, out, false)
               : direct_conv2d_backward_weight(g, n, gy, x, out, false);
        break;
    }
    if (im2col) {
      const GemmProblem p = image_product(kernel, g);
      counted += n * p.m * p.n * p.k;
    }
    return true;
  };
  auto seconds = [&](ConvBackend b) {
    if (!call(b)) return 1e30;  // oneDNN has no implementation for this case (warms up otherwise)
    double best = 1e30, spent = 0;
    for (int i = 0; i < 3 || (spent < 5e-3 && i < 50); ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      call(b);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      best = std::min(best, s);
      spent += s;
    }
    return best;
  };
#ifdef _OPENMP
  const int threads_before = omp_get_max_threads();
  omp_set_num_threads(1);
#endif
  const ConvBackend backends[] = {ConvBackend::ours, ConvBackend::dnnl, ConvBackend::dnnl_blocked};
  double best[3] = {1e30, 1e30, 1e30};
  for (int round = 0; round < 3; ++round)
    for (int b = 0; b < 3; ++b) best[b] = std::min(best[b], seconds(backends[b]));
#ifdef _OPENMP
  omp_set_num_threads(threads_before);
#endif
  count_multiply_adds(-counted);
  const int fastest = static_cast<int>(std::min_element(best, best + 3) - best);
  return backend_name(backends[fastest]);
}

}  // namespace

ConvBackend conv_backend(ConvKernel kernel, const ConvGeometry& g, std::size_t element_bytes) {
  const int forced = forced_conv();
  if (element_bytes != sizeof(float) || !dnnl_conv::built() || forced == forced_direct || forced == forced_im2col ||
      forced == forced_ours)
    return ConvBackend::ours;
  if (forced == forced_dnnl) return ConvBackend::dnnl;
  if (forced == forced_dnnl_blocked) return ConvBackend::dnnl_blocked;
  const std::string key = std::string(kernel == ConvKernel::forward          ? "forward"
                                      : kernel == ConvKernel::backward_input ? "backward_input"
                                                                             : "backward_weight") +
                          ' ' + std::to_string(g.C) + ' ' + std::to_string(g.H) + ' ' + std::to_string(g.W) + ' ' +
                          std::to_string(g.O) + ' ' + std::to_string(g.kh) + ' ' + std::to_string(g.kw) + ' ' +
                          std::to_string(g.stride) + ' ' + std::to_string(g.pad) + " f32";
  const std::string choice =
      plan_file_choice(conv_plan_path(), key, "ours", [&] { return plan_backend(kernel, g); });
  return choice == "dnnl" ? ConvBackend::dnnl : choice == "dnnl-blocked" ? ConvBackend::dnnl_blocked : ConvBackend::ours;
}

namespace {
dnnl_conv::Layout layout_of(ConvBackend b) {
  return b == ConvBackend::dnnl_blocked ? dnnl_conv::Layout::blocked : dnnl_conv::Layout::plain;
}
}  // namespace

template <class T>
void conv2d_forward(const ConvGeometry& g, std::int64_t count, const T* x, Banks<const T> w, Banks<T> out,
                    bool accumulate) {
  const ConvBackend b = conv_backend(ConvKernel::forward, g, sizeof(T));
  if (b != ConvBackend::ours && dnnl_conv::forward(layout_of(b), g, count, x, w, out, accumulate))
    return note_products<T>(ConvKernel::forward, g, count, w.count);
  ours_forward(g, count, x, w, out, accumulate);
}

template <class T>
void conv2d_backward_input(const ConvGeometry& g, std::int64_t count, const T* gy, Banks<const T> w, Banks<T> out,
                           bool accumulate) {
  const ConvBackend b = conv_backend(ConvKernel::backward_input, g, sizeof(T));
  if (b != ConvBackend::ours && dnnl_conv::backward_input(layout_of(b), g, count, gy, w, out, accumulate))
    return note_products<T>(ConvKernel::backward_input, g, count, w.count);
  ours_backward_input(g, count, gy, w, out, accumulate);
}

template <class T>
void conv2d_backward_weight(const ConvGeometry& g, std::int64_t count, Banks<const T> gy, Banks<const T> x,
                            Banks<T> out, bool accumulate) {
  const ConvBackend b = conv_backend(ConvKernel::backward_weight, g, sizeof(T));
  if (b != ConvBackend::ours && dnnl_conv::backward_weight(layout_of(b), g, count, gy, x, out, accumulate))
    return note_products<T>(ConvKernel::backward_weight, g, count, x.count * gy.count);
  ours_backward_weight(g, count, gy, x, out, accumulate);
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
