// The oneDNN path of the convolution kernels (engine/kernels/conv_dnnl.h) against our im2col
// kernels, in both of its layouts: the three products on several geometries (stride 1 and 2,
// padding, 1×1, 3×3, 5×5, odd sizes), accumulating or not, with several banks; a value bank's
// bits alone and banked; the same bits twice; float64 declined; and the convolution plan file
// (conv_plan.h). Built without oneDNN, every function must decline, having done nothing.
#include <doctest/doctest.h>

#include <gradhpo/engine/kernels/conv.h>
#include <gradhpo/engine/kernels/conv_dnnl.h>
#include <gradhpo/engine/kernels/conv_plan.h>
#include <gradhpo/engine/kernels/im2col.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

using namespace gradhpo::kernels;
using dnnl_conv::Layout;

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

const Geo kGeometries[] = {
    {3, 32, 32, 16, 3, 3, 1, 1},   // WRN's first convolution
    {16, 32, 32, 16, 3, 3, 1, 1},  // WRN's first group
    {16, 32, 32, 32, 3, 3, 2, 1},  // WRN's strided 3×3
    {16, 32, 32, 32, 1, 1, 2, 0},  // and its 1×1 shortcut
    {8, 9, 9, 8, 1, 1, 1, 0},      // 1×1, stride 1
    {5, 11, 13, 7, 3, 3, 1, 0},    // odd sizes, no padding
    {3, 9, 9, 4, 3, 3, 2, 1},      // odd size at stride 2
    {6, 14, 14, 16, 5, 5, 1, 2},   // 5×5, padding 2
};
const Layout kLayouts[] = {Layout::plain, Layout::blocked};
const char* layout_name(Layout l) { return l == Layout::plain ? "plain" : "blocked"; }

std::vector<float> randoms(std::int64_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(static_cast<std::size_t>(n));
  for (float& e : v) e = u(gen);
  return v;
}

// Our result and oneDNN's agree to float32 rounding: every element within 1e-5 of the largest.
void check_close(const std::vector<float>& ours, const std::vector<float>& theirs, const std::string& what) {
  REQUIRE(ours.size() == theirs.size());
  float scale = 0, worst = 0;
  for (std::size_t i = 0; i < ours.size(); ++i) {
    scale = std::max(scale, std::abs(ours[i]));
    worst = std::max(worst, std::abs(ours[i] - theirs[i]));
  }
  CHECK_MESSAGE(worst <= 1e-5f * scale, what << ": largest difference " << worst << " against " << scale);
}

bool same_bits(const float* a, const float* b, std::int64_t n) {
  return std::equal(a, a + n, b, [](float x, float y) { return std::memcmp(&x, &y, sizeof x) == 0; });
}

// One geometry's three products with M banks through oneDNN in `layout` and through im2col,
// starting from the same (random, for accumulate) outputs.
void check_against_ours(const Geo& geo, Layout layout, std::int64_t N, std::int64_t M, bool accumulate) {
  const ConvGeometry g = geo.g();
  const std::int64_t nx = N * g.in_image(), ny = N * g.out_image(), nw = g.filters();
  const auto x = randoms(M * nx, 1), w = randoms(M * nw, 2), gy = randoms(M * ny, 3);
  const std::string what = geo.name() + ", " + layout_name(layout) + ", " + std::to_string(M) + " banks" +
                           (accumulate ? ", accumulating" : "");
  auto start = [&](std::int64_t n) { return accumulate ? randoms(n, 4) : std::vector<float>(static_cast<std::size_t>(n), 7.0f); };
  const auto W = Banks<const float>::uniform(w.data(), nw, M);
  {
    auto ours = start(M * ny), theirs = ours;
    im2col_conv2d_forward<float>(g, N, x.data(), W, Banks<float>::uniform(ours.data(), ny, M), accumulate);
    REQUIRE(dnnl_conv::forward<float>(layout, g, N, x.data(), W, Banks<float>::uniform(theirs.data(), ny, M), accumulate));
    check_close(ours, theirs, "forward, " + what);
  }
  {
    auto ours = start(M * nx), theirs = ours;
    im2col_conv2d_backward_input<float>(g, N, gy.data(), W, Banks<float>::uniform(ours.data(), nx, M), accumulate);
    REQUIRE(dnnl_conv::backward_input<float>(layout, g, N, gy.data(), W, Banks<float>::uniform(theirs.data(), nx, M),
                                             accumulate));
    check_close(ours, theirs, "backward_input, " + what);
  }
  // The filter gradient with banks of adjoints (one image bank), then banks of images.
  for (bool banked_images : {false, true}) {
    const auto GY = banked_images ? Banks<const float>::one(gy.data()) : Banks<const float>::uniform(gy.data(), ny, M);
    const auto X = banked_images ? Banks<const float>::uniform(x.data(), nx, M) : Banks<const float>::one(x.data());
    auto ours = start(M * nw), theirs = ours;
    im2col_conv2d_backward_weight<float>(g, N, GY, X, Banks<float>::uniform(ours.data(), nw, M), accumulate);
    REQUIRE(dnnl_conv::backward_weight<float>(layout, g, N, GY, X, Banks<float>::uniform(theirs.data(), nw, M),
                                              accumulate));
    check_close(ours, theirs, std::string("backward_weight, ") + (banked_images ? "image" : "adjoint") + " banks, " + what);
  }
}

// Calls run(out) twice on outputs that start alike; both must come out with the same bits.
template <class Run> void check_repeats(std::int64_t n, const Run& run, const std::string& what) {
  std::vector<float> first(static_cast<std::size_t>(n), 0.0f), second(first);
  run(first.data());
  run(second.data());
  CHECK_MESSAGE(same_bits(first.data(), second.data(), n), what);
}

}  // namespace

TEST_CASE("conv dnnl: built without oneDNN, every product declines having done nothing") {
  if (dnnl_conv::built()) {
    MESSAGE("built with oneDNN " << dnnl_conv::version() << ": the other conv dnnl cases test it");
    return;
  }
  MESSAGE("built without oneDNN (GRADHPO_DNNL=OFF): our kernels run every convolution");
  const ConvGeometry g = Geo{3, 8, 8, 4, 3, 3, 1, 1}.g();
  const auto x = randoms(g.in_image(), 1), w = randoms(g.filters(), 2), gy = randoms(g.out_image(), 3);
  std::vector<float> out(static_cast<std::size_t>(std::max({g.in_image(), g.out_image(), g.filters()})), 7.0f);
  const auto untouched = out;
  for (Layout layout : kLayouts) {
    CHECK_FALSE(dnnl_conv::forward<float>(layout, g, 1, x.data(), Banks<const float>::one(w.data()),
                                          Banks<float>::one(out.data()), false));
    CHECK_FALSE(dnnl_conv::backward_input<float>(layout, g, 1, gy.data(), Banks<const float>::one(w.data()),
                                                 Banks<float>::one(out.data()), false));
    CHECK_FALSE(dnnl_conv::backward_weight<float>(layout, g, 1, Banks<const float>::one(gy.data()),
                                                  Banks<const float>::one(x.data()), Banks<float>::one(out.data()), false));
  }
  CHECK(out == untouched);
  CHECK(conv_backend(ConvKernel::forward, g, sizeof(float)) == ConvBackend::ours);
}

TEST_CASE("conv dnnl: the three products equal our kernels to float32 rounding, plain and blocked") {
  if (!dnnl_conv::built()) {
    MESSAGE("skipped: built without oneDNN (GRADHPO_DNNL=OFF)");
    return;
  }
  for (const Geo& geo : kGeometries)
    for (Layout layout : kLayouts)
      for (bool accumulate : {false, true}) check_against_ours(geo, layout, 3, 3, accumulate);
  check_against_ours(kGeometries[1], Layout::plain, 1, 1, false);  // one image, one bank
}

TEST_CASE("conv dnnl: a value bank has the same bits alone and banked, and a call repeats its bits") {
  // The forward-over-reverse contract (conv.h): each bank is its own call of one primitive, so
  // bank 0 of a banked call is the call alone, the filter gradient's sum over images included.
  if (!dnnl_conv::built()) {
    MESSAGE("skipped: built without oneDNN (GRADHPO_DNNL=OFF)");
    return;
  }
  constexpr std::int64_t N = 19, M = 4;
  for (const Geo& geo : {kGeometries[1], kGeometries[2], kGeometries[3], kGeometries[5]})
    for (Layout layout : kLayouts)
      for (bool accumulate : {false, true}) {
        const ConvGeometry g = geo.g();
        const std::string what = geo.name() + ", " + layout_name(layout) + (accumulate ? ", accumulating" : "");
        const std::int64_t nx = N * g.in_image(), ny = N * g.out_image(), nw = g.filters();
        const auto x = randoms(M * nx, 11), w = randoms(M * nw, 12), gy = randoms(M * ny, 13);
        const auto W = Banks<const float>::uniform(w.data(), nw, M), one_w = Banks<const float>::one(w.data());
        const auto start = randoms(M * std::max({nx, ny, nw}), 14);
        auto alone_and_banked = [&](std::int64_t n, const auto& run, const std::string& product) {
          std::vector<float> alone(start.begin(), start.begin() + n), banked(start.begin(), start.begin() + M * n);
          run(Banks<float>::one(alone.data()), 1);
          run(Banks<float>::uniform(banked.data(), n, M), M);
          CHECK_MESSAGE(same_bits(alone.data(), banked.data(), n), product << " alone and banked, " << what);
          check_repeats(M * n, [&](float* out) {
            std::copy(start.begin(), start.begin() + M * n, out);
            run(Banks<float>::uniform(out, n, M), M);
          }, product + " twice, " + what);
        };
        alone_and_banked(ny, [&](Banks<float> out, std::int64_t m) {
          REQUIRE(dnnl_conv::forward<float>(layout, g, N, x.data(), m == 1 ? one_w : W, out, accumulate));
        }, "forward");
        alone_and_banked(nx, [&](Banks<float> out, std::int64_t m) {
          REQUIRE(dnnl_conv::backward_input<float>(layout, g, N, gy.data(), m == 1 ? one_w : W, out, accumulate));
        }, "backward_input");
        alone_and_banked(nw, [&](Banks<float> out, std::int64_t m) {
          const auto GY = m == 1 ? Banks<const float>::one(gy.data()) : Banks<const float>::uniform(gy.data(), ny, M);
          REQUIRE(dnnl_conv::backward_weight<float>(layout, g, N, GY, Banks<const float>::one(x.data()), out, accumulate));
        }, "backward_weight, adjoint banks");
        alone_and_banked(nw, [&](Banks<float> out, std::int64_t m) {
          const auto X = m == 1 ? Banks<const float>::one(x.data()) : Banks<const float>::uniform(x.data(), nx, M);
          REQUIRE(dnnl_conv::backward_weight<float>(layout, g, N, Banks<const float>::one(gy.data()), X, out, accumulate));
        }, "backward_weight, image banks");
      }
}

TEST_CASE("conv dnnl: the dispatch (conv2d_*) keeps a value's bits alone and banked, whichever backend it plans") {
  // Through the entry points the ops use: the planner's choice must not depend on the banks.
  constexpr std::int64_t N = 7, M = 3;
  const ConvGeometry g = kGeometries[1].g();
  const std::int64_t nx = N * g.in_image(), ny = N * g.out_image(), nw = g.filters();
  const auto x = randoms(M * nx, 21), w = randoms(M * nw, 22), gy = randoms(M * ny, 23);
  for (ConvKernel k : {ConvKernel::forward, ConvKernel::backward_input, ConvKernel::backward_weight}) {
    const ConvBackend b = conv_backend(k, g, sizeof(float));
    CHECK(conv_backend(k, g, sizeof(float)) == b);  // the plan's, every time
    if (!dnnl_conv::built()) CHECK(b == ConvBackend::ours);
    CHECK(conv_backend(k, g, sizeof(double)) == ConvBackend::ours);  // no float64 convolution in oneDNN 2.6
  }
  std::vector<float> alone(static_cast<std::size_t>(std::max({nx, ny, nw}))), banked(M * alone.size());
  conv2d_forward<float>(g, N, x.data(), Banks<const float>::one(w.data()), Banks<float>::one(alone.data()), false);
  conv2d_forward<float>(g, N, x.data(), Banks<const float>::uniform(w.data(), nw, M),
                        Banks<float>::uniform(banked.data(), ny, M), false);
  CHECK(same_bits(alone.data(), banked.data(), ny));
  conv2d_backward_input<float>(g, N, gy.data(), Banks<const float>::one(w.data()), Banks<float>::one(alone.data()), false);
  conv2d_backward_input<float>(g, N, gy.data(), Banks<const float>::uniform(w.data(), nw, M),
                               Banks<float>::uniform(banked.data(), nx, M), false);
  CHECK(same_bits(alone.data(), banked.data(), nx));
  conv2d_backward_weight<float>(g, N, Banks<const float>::one(gy.data()), Banks<const float>::one(x.data()),
                                Banks<float>::one(alone.data()), false);
  conv2d_backward_weight<float>(g, N, Banks<const float>::one(gy.data()), Banks<const float>::uniform(x.data(), nx, M),
                                Banks<float>::uniform(banked.data(), nw, M), false);
  CHECK(same_bits(alone.data(), banked.data(), nw));
}

TEST_CASE("conv dnnl: float64 is declined having done nothing (oneDNN 2.6 has no float64 convolution)") {
  const ConvGeometry g = Geo{3, 8, 8, 4, 3, 3, 1, 1}.g();
  std::vector<double> x(static_cast<std::size_t>(g.in_image()), 1.0), w(static_cast<std::size_t>(g.filters()), 1.0);
  std::vector<double> out(static_cast<std::size_t>(g.out_image()), 7.0);
  for (Layout layout : kLayouts)
    CHECK_FALSE(dnnl_conv::forward<double>(layout, g, 1, x.data(), Banks<const double>::one(w.data()),
                                           Banks<double>::one(out.data()), false));
  CHECK(std::all_of(out.begin(), out.end(), [](double v) { return v == 7.0; }));
}

TEST_CASE("conv dnnl: the plan file keeps the first measurement and obeys what it lists") {
  const std::string path = "/tmp/gradhpo-conv-plan-test-" + std::to_string(::getpid()) + ".txt";
  std::remove(path.c_str());
  int measured = 0;
  auto measure = [&](const char* choice) {
    return [&measured, choice] {
      ++measured;
      return std::string(choice);
    };
  };
  CHECK(plan_file_choice(path, "forward 1 2 3 4 3 3 1 1 f32", "ours", measure("dnnl")) == "dnnl");
  CHECK(measured == 1);
  CHECK(plan_file_choice(path, "forward 1 2 3 4 3 3 1 1 f32", "ours", measure("ours")) == "dnnl");  // known
  CHECK(measured == 1);
  {  // another process's choice, written meanwhile, wins over measuring
    std::ofstream out(path, std::ios::app);
    out << "backward_input 1 2 3 4 3 3 1 1 f32 dnnl-blocked\n";
  }
  CHECK(plan_file_choice(path, "backward_input 1 2 3 4 3 3 1 1 f32", "ours", measure("ours")) == "dnnl-blocked");
  CHECK(measured == 1);
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(text.find("forward 1 2 3 4 3 3 1 1 f32 dnnl\n") != std::string::npos);
  // A file that cannot be written: the fallback, without failing.
  CHECK(plan_file_choice("/proc/no-such-dir/plan.txt", "forward 1 f32", "ours", measure("dnnl")) == "ours");
  std::remove(path.c_str());
  std::remove((path + ".lock").c_str());
}
