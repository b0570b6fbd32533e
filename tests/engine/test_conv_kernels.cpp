// The two algorithms of the convolution kernels (engine/kernels/im2col.h and conv_direct.h),
// each kernel against the definition written here as plain loops: filter, adjoint and input
// banks, accumulation, one and two threads, rows that end part way through a SIMD packet, and
// the dispatch (conv_algorithm) that the ops go through.
#include "check_ad.h"

#include <gradhpo/engine/kernels/conv_direct.h>
#include <gradhpo/engine/kernels/gemm.h>
#include <gradhpo/engine/kernels/im2col.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <limits>
#include <sstream>
#include <tuple>

using namespace gradhpo;
using namespace gradhpo::kernels;
using namespace gradhpo::testing;

namespace {

struct Geo {
  std::int64_t C, H, W, O, kh, kw, stride, pad;
  ConvGeometry g() const { return ConvGeometry::make("test", C, H, W, O, kh, kw, stride, pad); }
  std::string name() const {
    std::ostringstream s;
    s << "C" << C << " " << H << "x" << W << " O" << O << " k" << kh << "x" << kw << " s" << stride << " p" << pad;
    return s.str();
  }
};

// x [N, C, H, W] at (n, c, r, q), zero outside the image.
double at(const std::vector<double>& x, const ConvGeometry& g, std::int64_t n, std::int64_t c, std::int64_t r,
          std::int64_t q) {
  if (r < 0 || r >= g.H || q < 0 || q >= g.W) return 0;
  return x[static_cast<std::size_t>(((n * g.C + c) * g.H + r) * g.W + q)];
}

// The definitions, summing every (pixel, tap) pair: y = F(x, W), x̄ = Bx(ḡ, W), W̄ = Bw(ḡ, x).
std::vector<double> def_forward(const ConvGeometry& g, std::int64_t N, const std::vector<double>& x,
                                const std::vector<double>& w) {
  std::vector<double> y(static_cast<std::size_t>(N * g.out_image()), 0.0);
  for (std::int64_t n = 0; n < N; ++n)
    for (std::int64_t o = 0; o < g.O; ++o)
      for (std::int64_t oh = 0; oh < g.Ho; ++oh)
        for (std::int64_t ow = 0; ow < g.Wo; ++ow) {
          double s = 0;
          for (std::int64_t c = 0; c < g.C; ++c)
            for (std::int64_t i = 0; i < g.kh; ++i)
              for (std::int64_t j = 0; j < g.kw; ++j)
                s += w[static_cast<std::size_t>(((o * g.C + c) * g.kh + i) * g.kw + j)] *
                     at(x, g, n, c, oh * g.stride - g.pad + i, ow * g.stride - g.pad + j);
          y[static_cast<std::size_t>(((n * g.O + o) * g.Ho + oh) * g.Wo + ow)] = s;
        }
  return y;
}
std::vector<double> def_backward_input(const ConvGeometry& g, std::int64_t N, const std::vector<double>& gy,
                                       const std::vector<double>& w) {
  std::vector<double> xb(static_cast<std::size_t>(N * g.in_image()), 0.0);
  for (std::int64_t n = 0; n < N; ++n)
    for (std::int64_t o = 0; o < g.O; ++o)
      for (std::int64_t oh = 0; oh < g.Ho; ++oh)
        for (std::int64_t ow = 0; ow < g.Wo; ++ow)
          for (std::int64_t c = 0; c < g.C; ++c)
            for (std::int64_t i = 0; i < g.kh; ++i)
              for (std::int64_t j = 0; j < g.kw; ++j) {
                const std::int64_t r = oh * g.stride - g.pad + i, q = ow * g.stride - g.pad + j;
                if (r < 0 || r >= g.H || q < 0 || q >= g.W) continue;
                xb[static_cast<std::size_t>(((n * g.C + c) * g.H + r) * g.W + q)] +=
                    gy[static_cast<std::size_t>(((n * g.O + o) * g.Ho + oh) * g.Wo + ow)] *
                    w[static_cast<std::size_t>(((o * g.C + c) * g.kh + i) * g.kw + j)];
              }
  return xb;
}
std::vector<double> def_backward_weight(const ConvGeometry& g, std::int64_t N, const std::vector<double>& gy,
                                        const std::vector<double>& x) {
  std::vector<double> wb(static_cast<std::size_t>(g.filters()), 0.0);
  for (std::int64_t o = 0; o < g.O; ++o)
    for (std::int64_t c = 0; c < g.C; ++c)
      for (std::int64_t i = 0; i < g.kh; ++i)
        for (std::int64_t j = 0; j < g.kw; ++j) {
          double s = 0;
          for (std::int64_t n = 0; n < N; ++n)
            for (std::int64_t oh = 0; oh < g.Ho; ++oh)
              for (std::int64_t ow = 0; ow < g.Wo; ++ow)
                s += gy[static_cast<std::size_t>(((n * g.O + o) * g.Ho + oh) * g.Wo + ow)] *
                     at(x, g, n, c, oh * g.stride - g.pad + i, ow * g.stride - g.pad + j);
          wb[static_cast<std::size_t>(((o * g.C + c) * g.kh + i) * g.kw + j)] = s;
        }
  return wb;
}

std::vector<double> randoms(std::int64_t n, unsigned seed) { return random_tensor(Shape{n}, seed).to_vector(); }

template <class T> std::vector<T> as(const std::vector<double>& v) { return std::vector<T>(v.begin(), v.end()); }

// Relative max-norm error of `got` (M banks of `size`, bank m at m·size) against `want`.
template <class T> double bank_error(const std::vector<T>& got, std::int64_t m, const std::vector<double>& want) {
  const std::size_t size = want.size();
  return rel_error(std::vector<double>(got.begin() + static_cast<std::ptrdiff_t>(m * size),
                                       got.begin() + static_cast<std::ptrdiff_t>((m + 1) * size)),
                   want);
}

enum class Algo { im2col, direct };
const char* algo_name(Algo a) { return a == Algo::im2col ? "im2col" : "direct"; }

template <class T>
void forward(Algo a, const ConvGeometry& g, std::int64_t N, const T* x, Banks<const T> w, Banks<T> out, bool acc) {
  a == Algo::direct ? direct_conv2d_forward<T>(g, N, x, w, out, acc) : im2col_conv2d_forward<T>(g, N, x, w, out, acc);
}
template <class T>
void backward_input(Algo a, const ConvGeometry& g, std::int64_t N, const T* gy, Banks<const T> w, Banks<T> out,
                    bool acc) {
  a == Algo::direct ? direct_conv2d_backward_input<T>(g, N, gy, w, out, acc)
                    : im2col_conv2d_backward_input<T>(g, N, gy, w, out, acc);
}
template <class T>
void backward_weight(Algo a, const ConvGeometry& g, std::int64_t N, Banks<const T> gy, Banks<const T> x, Banks<T> out,
                     bool acc) {
  a == Algo::direct ? direct_conv2d_backward_weight<T>(g, N, gy, x, out, acc)
                    : im2col_conv2d_backward_weight<T>(g, N, gy, x, out, acc);
}

// Every kernel of algorithm `a` on geometry `geo`, N images, 2 banks, written and accumulated
// into a non-zero output, against the definition.
template <class T> void check_kernels(Algo a, const Geo& geo, std::int64_t N, double tol) {
  const ConvGeometry g = geo.g();
  constexpr std::int64_t M = 2;
  const std::int64_t nx = N * g.in_image(), ny = N * g.out_image(), nw = g.filters();
  const auto x = randoms(M * nx, 1), w = randoms(M * nw, 2), gy = randoms(M * ny, 3);
  const auto xt = as<T>(x), wt = as<T>(w), gyt = as<T>(gy);
  auto part = [](const std::vector<double>& v, std::int64_t m, std::int64_t n) {
    return std::vector<double>(v.begin() + static_cast<std::ptrdiff_t>(m * n), v.begin() + static_cast<std::ptrdiff_t>((m + 1) * n));
  };
  for (bool accumulate : {false, true}) {
    const double prior = accumulate ? 0.5 : 0.0;
    auto plus_prior = [&](std::vector<double> v) {
      for (double& e : v) e += prior;
      return v;
    };
    // Forward: filter banks [W_0; W_1] against one image set.
    std::vector<T> y(static_cast<std::size_t>(M * ny), T(prior));
    forward<T>(a, g, N, xt.data(), Banks<const T>::uniform(wt.data(), nw, M), Banks<T>::uniform(y.data(), ny, M), accumulate);
    for (std::int64_t m = 0; m < M; ++m)
      CHECK_MESSAGE(bank_error(y, m, plus_prior(def_forward(g, N, part(x, 0, nx), part(w, m, nw)))) <= tol,
                    algo_name(a) << " forward " << geo.name() << " bank " << m << " accumulate " << accumulate);
    // backward_input: filter banks against one adjoint (the direct kernel: pad < k at stride 1).
    if (a == Algo::im2col || direct_conv_applies(ConvKernel::backward_input, g)) {
    std::vector<T> xb(static_cast<std::size_t>(M * nx), T(prior));
    backward_input<T>(a, g, N, gyt.data(), Banks<const T>::uniform(wt.data(), nw, M), Banks<T>::uniform(xb.data(), nx, M),
                      accumulate);
    for (std::int64_t m = 0; m < M; ++m)
      CHECK_MESSAGE(bank_error(xb, m, plus_prior(def_backward_input(g, N, part(gy, 0, ny), part(w, m, nw)))) <= tol,
                    algo_name(a) << " backward_input " << geo.name() << " bank " << m << " accumulate " << accumulate);
    }
    // backward_weight: adjoint banks against one image set, then image banks against one adjoint.
    for (bool adjoint_banks : {true, false}) {
      std::vector<T> wb(static_cast<std::size_t>(M * nw), T(prior));
      const Banks<const T> gb = adjoint_banks ? Banks<const T>::uniform(gyt.data(), ny, M) : Banks<const T>::one(gyt.data());
      const Banks<const T> xbk = adjoint_banks ? Banks<const T>::one(xt.data()) : Banks<const T>::uniform(xt.data(), nx, M);
      backward_weight<T>(a, g, N, gb, xbk, Banks<T>::uniform(wb.data(), nw, M), accumulate);
      for (std::int64_t m = 0; m < M; ++m) {
        const auto want = def_backward_weight(g, N, part(gy, adjoint_banks ? m : 0, ny), part(x, adjoint_banks ? 0 : m, nx));
        CHECK_MESSAGE(bank_error(wb, m, plus_prior(want)) <= tol,
                      algo_name(a) << " backward_weight " << geo.name() << " bank " << m << " accumulate "
                                   << accumulate << (adjoint_banks ? " (adjoint banks)" : " (image banks)"));
      }
    }
  }
}

// Stride 1 with packets filled, half filled and ending mid-row; 1×1, 5×5, non-square kernels;
// no padding and the largest padding the direct kernels take (k − 1).
const Geo kStrideOne[] = {
    {3, 32, 32, 16, 3, 3, 1, 1},  // WRN's first convolution: rows of whole packets
    {4, 8, 8, 6, 3, 3, 1, 1},     // WRN's last group: 8-pixel rows
    {2, 9, 11, 5, 3, 3, 1, 1},    // 11-pixel rows: a packet ends part way through each
    {3, 7, 19, 9, 5, 5, 1, 2},    // 5×5 with padding 2, 19-pixel rows
    {2, 6, 5, 3, 2, 3, 1, 0},     // 2×3, no padding, 3-pixel rows
    {5, 10, 17, 11, 1, 1, 1, 0},  // 1×1
    {2, 6, 7, 3, 3, 3, 1, 2},     // padding k − 1: backward_input pads the adjoint by 0
    {1, 12, 40, 2, 3, 1, 1, 0},   // one input channel, 40-pixel rows
    {16, 32, 32, 16, 3, 3, 1, 1},  // WRN's first group: 16 channels in, 16 out
    {8, 16, 16, 12, 3, 3, 1, 1},   // WRN's second group: 16-pixel rows
    {16, 15, 17, 9, 3, 3, 1, 1},   // odd sizes
    {9, 10, 18, 8, 3, 3, 1, 0},    // no padding: 16-pixel rows from 18
    {8, 6, 20, 10, 3, 3, 1, 2},    // padding 2 (backward_input pads by 0)
};
// Strided: the direct forward and backward_weight read stride × stride phases of the input.
const Geo kStrided[] = {
    {16, 32, 32, 32, 3, 3, 2, 1},  // WRN's second group, first convolution
    {16, 32, 32, 32, 1, 1, 2, 0},  // and its 1×1 shortcut
    {3, 9, 9, 4, 3, 3, 2, 1},      // odd size: the phases differ in size
    {2, 8, 7, 5, 1, 1, 2, 0},
    {2, 7, 6, 3, 3, 2, 3, 2},      // stride 3, padding larger than the kernel is wide
    {3, 11, 13, 4, 5, 5, 2, 3},    // padding ≥ kernel/2, 5×5
};

}  // namespace

TEST_CASE("conv kernels: the direct algorithm equals the definition in float64 and float32, on 1 and 2 threads") {
  std::vector<Geo> geos(std::begin(kStrideOne), std::end(kStrideOne));
  geos.insert(geos.end(), std::begin(kStrided), std::end(kStrided));
  for (const Geo& geo : geos) {
    CHECK(direct_conv_applies(ConvKernel::forward, geo.g()));
    CHECK(direct_conv_applies(ConvKernel::backward_weight, geo.g()));
    CHECK(direct_conv_applies(ConvKernel::backward_input, geo.g()) == (geo.stride > 1 || (geo.pad < geo.kh && geo.pad < geo.kw)));
    for (int threads : {1, 2})
      with_threads(threads, [&] {
        check_kernels<double>(Algo::direct, geo, 3, 1e-13);
        check_kernels<float>(Algo::direct, geo, 3, 2e-6);
      });
  }
}

TEST_CASE("conv kernels: the im2col algorithm equals the definition, stride 1 and 2") {
  std::vector<Geo> geos(std::begin(kStrideOne), std::end(kStrideOne));
  geos.insert(geos.end(), std::begin(kStrided), std::end(kStrided));
  for (const Geo& geo : geos)
    for (int threads : {1, 2})
      with_threads(threads, [&] {
        check_kernels<double>(Algo::im2col, geo, 3, 1e-13);
        check_kernels<float>(Algo::im2col, geo, 3, 2e-6);
      });
}

// Every kernel of algorithm `a` on `geo` with N images, with 3 banks and alone: bank 0 of the
// stacked result must have the bits of the result alone.
void check_bank_bits(Algo a, const Geo& geo, std::int64_t N) {
  const ConvGeometry g = geo.g();
  constexpr std::int64_t M = 3;
  const std::int64_t nx = N * g.in_image(), ny = N * g.out_image(), nw = g.filters();
  const auto x = as<float>(randoms(M * nx, 11)), w = as<float>(randoms(M * nw, 12)), gy = as<float>(randoms(M * ny, 13));
  std::vector<float> alone(static_cast<std::size_t>(std::max({nx, ny, nw})));
  auto same = [&](const std::vector<float>& stacked, std::int64_t n, const char* what) {
    CHECK_MESSAGE(std::equal(alone.begin(), alone.begin() + n, stacked.begin()),
                  algo_name(a) << ", " << geo.name() << ": " << std::string(what));
  };
  std::vector<float> y(M * ny), xb(M * nx), wb(M * nw);
  forward<float>(a, g, N, x.data(), Banks<const float>::uniform(w.data(), nw, M), Banks<float>::uniform(y.data(), ny, M),
                 false);
  forward<float>(a, g, N, x.data(), Banks<const float>::one(w.data()), Banks<float>::one(alone.data()), false);
  same(y, ny, "forward, filter banks");
  if (a == Algo::im2col || direct_conv_applies(ConvKernel::backward_input, g)) {
    backward_input<float>(a, g, N, gy.data(), Banks<const float>::uniform(w.data(), nw, M),
                          Banks<float>::uniform(xb.data(), nx, M), false);
    backward_input<float>(a, g, N, gy.data(), Banks<const float>::one(w.data()), Banks<float>::one(alone.data()), false);
    same(xb, nx, "backward_input, filter banks");
  }
  backward_weight<float>(a, g, N, Banks<const float>::one(gy.data()), Banks<const float>::one(x.data()),
                         Banks<float>::one(alone.data()), false);
  backward_weight<float>(a, g, N, Banks<const float>::uniform(gy.data(), ny, M), Banks<const float>::one(x.data()),
                         Banks<float>::uniform(wb.data(), nw, M), false);
  same(wb, nw, "backward_weight, adjoint banks");
  backward_weight<float>(a, g, N, Banks<const float>::one(gy.data()), Banks<const float>::uniform(x.data(), nx, M),
                         Banks<float>::uniform(wb.data(), nw, M), false);
  same(wb, nw, "backward_weight, image banks");
}

TEST_CASE("conv kernels: a bank has the same bits alone and stacked with others (the forward-over-reverse contract)") {
  // An HVP pass runs each product once with the value's operands stacked with the tangents'
  // (banks); the value part must come out exactly as the gradient computes it alone. Enough
  // 32×32 images for the direct filter gradient to take several groups between its reductions
  // (a group's size must not depend on the banks), on 1 and 2 threads, both algorithms.
  // The last: im2col's pointwise filter gradient, whose images are large enough to be split
  // into blocks of rows when banked (it runs one product per image alone).
  for (const auto& [geo, N] : {std::pair{Geo{16, 32, 32, 16, 3, 3, 1, 1}, 19}, {Geo{16, 32, 32, 32, 3, 3, 2, 1}, 19},
                               {Geo{8, 16, 16, 16, 1, 1, 1, 0}, 19}, {Geo{16, 32, 32, 32, 1, 1, 2, 0}, 19},
                               {Geo{64, 48, 48, 8, 1, 1, 1, 0}, 2}})
    for (Algo a : {Algo::direct, Algo::im2col})
      for (int threads : {1, 2}) {
        INFO(threads << " threads");
        with_threads(threads, [&] { check_bank_bits(a, geo, N); });
      }
}

TEST_CASE("conv kernels: a direct convolution notes in a GemmTrace the products im2col runs") {
  // A benchmark's GEMM ceiling times the products a pass traces; a direct convolution notes
  // those of its im2col form, which must be the products im2col really runs: the forward's
  // banks stacked in one product, the gradients' one product per bank. On an image im2col does
  // not split into blocks of rows, with 3 banks, on 1 and 2 threads (team sizes too).
  const char* env = std::getenv("GRADHPO_CONV");
  if (env && *env && std::string(env) != "auto") return;  // a forced algorithm: nothing to compare
  const ConvGeometry g = Geo{8, 16, 16, 12, 3, 3, 1, 1}.g();
  for (ConvKernel k : {ConvKernel::forward, ConvKernel::backward_input, ConvKernel::backward_weight})
    REQUIRE(conv_algorithm(k, g, sizeof(float)) == ConvAlgorithm::direct);
  constexpr std::int64_t N = 5, M = 3;
  const std::int64_t nx = N * g.in_image(), ny = N * g.out_image(), nw = g.filters();
  const auto x = as<float>(randoms(M * nx, 21)), w = as<float>(randoms(M * nw, 22)), gy = as<float>(randoms(M * ny, 23));
  std::vector<float> out(static_cast<std::size_t>(M * std::max({nx, ny, nw})));
  using Key = std::tuple<std::int64_t, std::int64_t, std::int64_t, bool, bool, bool, int, int>;
  auto traced = [](const std::function<void()>& run) {
    GemmTrace trace;
    run();
    std::vector<Key> keys;
    for (const auto& [p, team] : trace.entries())
      keys.emplace_back(p.m, p.n, p.k, p.trans_a, p.trans_b, p.is_double, p.threads, team);
    std::sort(keys.begin(), keys.end());
    return keys;
  };
  const auto W = Banks<const float>::uniform(w.data(), nw, M), GY = Banks<const float>::uniform(gy.data(), ny, M);
  const auto X = Banks<const float>::uniform(x.data(), nx, M);
  const auto one_x = Banks<const float>::one(x.data()), one_gy = Banks<const float>::one(gy.data());
  auto o = [&](std::int64_t n) { return Banks<float>::uniform(out.data(), n, M); };
  for (int threads : {1, 2})
    with_threads(threads, [&] {
      INFO(threads << " threads");
      CHECK(traced([&] { conv2d_forward<float>(g, N, x.data(), W, o(ny), false); }) ==
            traced([&] { im2col_conv2d_forward<float>(g, N, x.data(), W, o(ny), false); }));
      CHECK(traced([&] { conv2d_backward_input<float>(g, N, gy.data(), W, o(nx), false); }) ==
            traced([&] { im2col_conv2d_backward_input<float>(g, N, gy.data(), W, o(nx), false); }));
      CHECK(traced([&] { conv2d_backward_weight<float>(g, N, GY, one_x, o(nw), false); }) ==
            traced([&] { im2col_conv2d_backward_weight<float>(g, N, GY, one_x, o(nw), false); }));
      CHECK(traced([&] { conv2d_backward_weight<float>(g, N, one_gy, X, o(nw), false); }) ==
            traced([&] { im2col_conv2d_backward_weight<float>(g, N, one_gy, X, o(nw), false); }));
    });
}

TEST_CASE("conv kernels: the direct algorithm's lanes past a row never meet an input (∞ stays where it belongs)") {
  // One infinite pixel in the last column. Filter tap column 0 never pairs an output pixel
  // with that column, so its gradient entries are finite by definition; the direct weight
  // kernel's last packet of each row reads that pixel in lanes past the row, which must not
  // turn into 0 · ∞ = NaN there.
  const Geo geo{1, 5, 5, 1, 3, 3, 1, 1};
  const ConvGeometry g = geo.g();
  std::vector<double> x = randoms(g.in_image(), 4), gy = randoms(g.out_image(), 5);
  x[static_cast<std::size_t>(2 * g.W + 4)] = std::numeric_limits<double>::infinity();
  const auto want = def_backward_weight(g, 1, gy, x);
  std::vector<double> got(static_cast<std::size_t>(g.filters()));
  direct_conv2d_backward_weight<double>(g, 1, Banks<const double>::one(gy.data()), Banks<const double>::one(x.data()),
                                        Banks<double>::one(got.data()), false);
  for (std::size_t k = 0; k < want.size(); ++k) {
    CHECK_MESSAGE(std::isfinite(got[k]) == std::isfinite(want[k]), "tap " << k << ": " << got[k] << " vs " << want[k]);
    if (std::isfinite(want[k])) CHECK(std::abs(got[k] - want[k]) <= 1e-13 * (1 + std::abs(want[k])));
  }
  CHECK(std::isfinite(want[0]));  // the test means something: tap (0, 0) is finite
}

TEST_CASE("conv kernels: the dispatch takes direct where it applies and the image fits the cache, im2col otherwise") {
  // GRADHPO_CONV (unset in the suite) would force one; the suite runs the automatic choice.
  const char* env = std::getenv("GRADHPO_CONV");
  if (env && *env && std::string(env) != "auto") return;
  using K = ConvKernel;
  for (K k : {K::forward, K::backward_input, K::backward_weight}) {
    CHECK(conv_algorithm(k, Geo{16, 32, 32, 16, 3, 3, 1, 1}.g(), 4) == ConvAlgorithm::direct);
    CHECK(conv_algorithm(k, Geo{512, 224, 224, 64, 3, 3, 1, 1}.g(), 4) == ConvAlgorithm::im2col);  // 100 MB images
  }
  const ConvGeometry strided = Geo{16, 32, 32, 32, 3, 3, 2, 1}.g(), wide_pad = Geo{2, 8, 8, 2, 3, 3, 1, 3}.g();
  CHECK(conv_algorithm(K::forward, strided, 4) == ConvAlgorithm::direct);
  CHECK(conv_algorithm(K::backward_weight, strided, 4) == ConvAlgorithm::direct);
  CHECK(conv_algorithm(K::backward_input, strided, 4) == ConvAlgorithm::direct);  // phase by phase
  CHECK(conv_algorithm(K::backward_input, Geo{16, 32, 32, 32, 1, 1, 2, 0}.g(), 4) == ConvAlgorithm::im2col);  // 1 tap, 4 phases
  CHECK(conv_algorithm(K::backward_input, wide_pad, 4) == ConvAlgorithm::im2col);
  // Lanes: a 32-pixel row fills whole packets; LeNet's second convolution (10-pixel output
  // rows) fills 10 of 16 float lanes with AVX-512 (or 10 of 12 with AVX2's 8-lane packets).
  CHECK(direct_lane_use(32, 4) == 1.0);
  CHECK(direct_lane_use(10, 4) < 1.0);
  const ConvGeometry lenet2 = Geo{6, 14, 14, 16, 5, 5, 1, 0}.g();
  const auto expect = [](double use) { return use >= 0.75 ? ConvAlgorithm::direct : ConvAlgorithm::im2col; };
  CHECK(conv_algorithm(K::forward, lenet2, 4) == expect(direct_lane_use(10, 4)));
  CHECK(conv_algorithm(K::backward_input, lenet2, 4) == ConvAlgorithm::im2col);  // 14×14 from 10×10: 1.96× the terms
  CHECK(conv_algorithm(K::backward_input, Geo{6, 28, 28, 16, 5, 5, 1, 2}.g(), 4) == expect(direct_lane_use(28, 4)));
}
