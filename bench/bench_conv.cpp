// The convolution products of WRN-16-1 (batch 128, float32, one bank) by each backend: ours
// (direct or im2col, as conv_algorithm chooses), oneDNN's direct primitive in plain layouts
// (NCHW/OIHW in place) and in its blocked layouts (with the reorders in and out). What the
// convolution planner (engine/kernels/conv.h, conv_backend) chooses between, on the shapes the
// WRN rows of bench/pytorch_compare.py run; the planner's own choice is printed as a label.
// Names "<kernel>/<geometry>/<backend>/threads:<n>", ms per call.
#include <benchmark/benchmark.h>

#include <gradhpo/engine/kernels/conv.h>
#include <gradhpo/engine/kernels/conv_direct.h>
#include <gradhpo/engine/kernels/conv_dnnl.h>
#include <gradhpo/engine/kernels/im2col.h>

#include <omp.h>

#include <string>
#include <vector>

using namespace gradhpo::kernels;

namespace {

constexpr std::int64_t kBatch = 128;

struct Case {
  const char* name;
  std::int64_t C, H, W, O, k, stride, pad;
};
// WRN-16-1's convolutions: the stem, the 3×3s of the three groups (first of a group strided),
// the 1×1 strided shortcuts.
const Case kCases[] = {
    {"stem_3to16_32x32", 3, 32, 32, 16, 3, 1, 1},  {"g1_16to16_32x32", 16, 32, 32, 16, 3, 1, 1},
    {"g2_16to32_s2", 16, 32, 32, 32, 3, 2, 1},     {"g2_32to32_16x16", 32, 16, 16, 32, 3, 1, 1},
    {"g2_short_16to32_s2", 16, 32, 32, 32, 1, 2, 0}, {"g3_32to64_s2", 32, 16, 16, 64, 3, 2, 1},
    {"g3_64to64_8x8", 64, 8, 8, 64, 3, 1, 1},       {"g3_short_32to64_s2", 32, 16, 16, 64, 1, 2, 0},
};

const char* kernel_name(ConvKernel k) {
  return k == ConvKernel::forward ? "forward" : k == ConvKernel::backward_input ? "backward_input" : "backward_weight";
}
const char* backend_name(ConvBackend b) {
  return b == ConvBackend::ours ? "ours" : b == ConvBackend::dnnl ? "dnnl" : "dnnl-blocked";
}

void run(benchmark::State& state, ConvKernel kernel, Case c, ConvBackend backend, int threads) {
  omp_set_num_threads(threads);
  const ConvGeometry g = ConvGeometry::make("bench", c.C, c.H, c.W, c.O, c.k, c.k, c.stride, c.pad);
  std::vector<float> x(kBatch * g.in_image(), 0.5f), w(g.filters(), 0.25f), gy(kBatch * g.out_image(), 0.125f);
  std::vector<float> out(std::max(kBatch * std::max(g.in_image(), g.out_image()), g.filters()));
  const auto W = Banks<const float>::one(w.data()), X = Banks<const float>::one(x.data());
  const auto GY = Banks<const float>::one(gy.data());
  const auto O = Banks<float>::one(out.data());
  const bool direct = conv_algorithm(kernel, g, sizeof(float)) == ConvAlgorithm::direct;
  const auto layout = backend == ConvBackend::dnnl ? dnnl_conv::Layout::plain : dnnl_conv::Layout::blocked;
  auto call = [&] {
    switch (kernel) {
      case ConvKernel::forward:
        if (backend != ConvBackend::ours) return dnnl_conv::forward(layout, g, kBatch, x.data(), W, O, false);
        direct ? direct_conv2d_forward(g, kBatch, x.data(), W, O, false)
               : im2col_conv2d_forward(g, kBatch, x.data(), W, O, false);
        return true;
      case ConvKernel::backward_input:
        if (backend != ConvBackend::ours) return dnnl_conv::backward_input(layout, g, kBatch, gy.data(), W, O, false);
        direct ? direct_conv2d_backward_input(g, kBatch, gy.data(), W, O, false)
               : im2col_conv2d_backward_input(g, kBatch, gy.data(), W, O, false);
        return true;
      default:
        if (backend != ConvBackend::ours) return dnnl_conv::backward_weight(layout, g, kBatch, GY, X, O, false);
        direct ? direct_conv2d_backward_weight(g, kBatch, GY, X, O, false)
               : im2col_conv2d_backward_weight(g, kBatch, GY, X, O, false);
        return true;
    }
  };
  if (!call()) {
    state.SkipWithError("oneDNN has no implementation here (or gradhpo was built without it)");
    return;
  }
  for (auto _ : state) call();
  std::string label = std::string(backend == ConvBackend::ours ? (direct ? "direct" : "im2col")
                                                               : dnnl_conv::implementation(kernel, g, kBatch, layout)) +
                      "; planned: " + backend_name(conv_backend(kernel, g, sizeof(float)));
  state.SetLabel(label);
}

const int registered = [] {
  for (const Case& c : kCases)
    for (ConvKernel k : {ConvKernel::forward, ConvKernel::backward_input, ConvKernel::backward_weight})
      for (ConvBackend b : {ConvBackend::ours, ConvBackend::dnnl, ConvBackend::dnnl_blocked})
        for (int threads : {1, 2})
          benchmark::RegisterBenchmark((std::string(kernel_name(k)) + "/" + c.name + "/" + backend_name(b) +
                                        "/threads:" + std::to_string(threads))
                                           .c_str(),
                                       [=](benchmark::State& s) { run(s, k, c, b, threads); })
              ->Unit(benchmark::kMillisecond)
              ->UseRealTime()
              ->MinTime(0.2);
  return 0;
}();

}  // namespace

BENCHMARK_MAIN();
