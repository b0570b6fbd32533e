// The model benchmarks on the GPU: MLP 784-256-256-10, LeNet-5 (1×28×28) and WRN-16-1 (3×32×32,
// batch norm in training mode) at batch 128 and 512, float32, in the modes of bench_models.cpp:
// forward (plain mode), gradient, JVP, HVP, mixed product (per-parameter L2 λ) and K = 8 HVPs,
// each timed to the end of its GPU work (cuda::synchronize), median of repeated runs after a
// warm-up that fills the tape arena and the device pool. Ratios are of medians from the same
// run: jvp/forward, hvp/gradient, mixed/gradient, hvp_k8/(8 × hvp).
//
// The GPU's GEMM ceiling is measured in the same program: cuBLAS SGEMM through the engine's
// matmul at the MLP's first-layer shapes and at 4096³, in GFLOP/s, next to the MLP gradient's
// own rate (6·B·Σ in·out FLOPs: forward, and the two adjoint products per layer).
//
//   bench_gpu [--quick] [--models mlp,lenet5,wrn16] [--batches 128,512]
//
// Output: a readable table, then the same rows as CSV after a line "csv:" for scripts
// (cuda/pytorch_gpu.py reads it).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <gradhpo/cuda/cuda.h>
#include <gradhpo/engine/autodiff.h>
#include <gradhpo/nn/nn.h>

using namespace gradhpo;

namespace {

struct Options {
  bool quick = false;
  std::vector<std::string> models = {"mlp", "lenet5", "wrn16"};
  std::vector<std::int64_t> batches = {128, 512};
};

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

Tensor normal(const Shape& s, double scale, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> n(0.0, scale);
  std::vector<double> v(static_cast<std::size_t>(s.numel()));
  for (double& x : v) x = n(rng);
  return Tensor::from(v, s, DType::f32).to(Device::cuda);
}

/// Median milliseconds of f() run to the end of its GPU work, after warm-up runs.
double median_ms(const std::function<void()>& f, bool quick) {
  for (int i = 0; i < 2; ++i) f();
  cuda::synchronize();
  std::vector<double> times;
  const int min_runs = quick ? 3 : 10;
  const double min_seconds = quick ? 0.1 : 0.5;
  double total = 0;
  while (static_cast<int>(times.size()) < min_runs || (total < min_seconds && times.size() < 500)) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    cuda::synchronize();
    const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    times.push_back(1e3 * t);
    total += t;
  }
  std::nth_element(times.begin(), times.begin() + static_cast<long>(times.size() / 2), times.end());
  return times[times.size() / 2];
}

struct Row {
  std::string model, mode;
  std::int64_t batch;
  double ms, ratio;  // ratio < 0: none
  std::string ratio_name;
};

std::unique_ptr<nn::Model> make(const std::string& name) {
  nn::ModelOptions o;
  o.mlp.hidden = {256, 256};
  if (name == "wrn16") return nn::make_model(name, Shape{3, 32, 32}, 10, o);
  return nn::make_model(name, Shape{1, 28, 28}, 10, o);
}

void bench_model(const std::string& name, std::int64_t batch, bool quick, std::vector<Row>& rows) {
  const auto model = make(name);
  const Shape in = model->input_shape();
  const std::int64_t n = model->num_params();
  const Tensor x = normal(Shape{batch, in[0], in[1], in[2]}, 1.0, 1);
  std::vector<std::int32_t> y(static_cast<std::size_t>(batch));
  for (std::size_t i = 0; i < y.size(); ++i) y[i] = static_cast<std::int32_t>(i % 10);
  const Tensor labels = Tensor::from_labels(y).to(Device::cuda);
  const Tensor w = model->init(3).to(Device::cuda);
  const Tensor lam = Tensor::full(Shape{n}, 1e-3, DType::f32, Device::cuda);
  const Tensor v = normal(Shape{n}, 1.0, 4), V8 = normal(Shape{8, n}, 1.0, 5);

  auto loss = [&](const Var& W) { return cross_entropy(model->forward(W, x, nn::Context::train()), labels); };
  auto regularised = [&](const Var& W, const Var& L) { return loss(W) + nn::l2_penalty(W, L); };
  Tape tape, plain;
  plain.set_recording(false);

  const double fwd = median_ms([&] { plain.reset(); (void)loss(plain.constant(w)); }, quick);
  const double grad = median_ms([&] { (void)value_and_grad(tape, loss, w); }, quick);
  const double jv = median_ms([&] { (void)jvp(tape, loss, w, v); }, quick);
  const double hv = median_ms([&] { (void)hvp(tape, loss, w, v); }, quick);
  const double mx = median_ms([&] { (void)mixed_vjp(tape, regularised, w, lam, v); }, quick);
  const double k8 = median_ms([&] { (void)hvp(tape, loss, w, V8); }, quick);
  rows.push_back({name, "forward", batch, fwd, -1, ""});
  rows.push_back({name, "gradient", batch, grad, -1, ""});
  rows.push_back({name, "jvp", batch, jv, jv / fwd, "jvp_vs_forward"});
  rows.push_back({name, "hvp", batch, hv, hv / grad, "hvp_vs_grad"});
  rows.push_back({name, "mixed", batch, mx, mx / grad, "mixed_vs_grad"});
  rows.push_back({name, "hvp_k8", batch, k8, k8 / (8 * hv), "k8_vs_8x_hvp"});
  if (name == "mlp") {  // the gradient's own GEMM rate: 3 products of 2·B·in·out FLOPs per layer
    const double flops = 6.0 * static_cast<double>(batch) * (784.0 * 256 + 256.0 * 256 + 256.0 * 10);
    rows.push_back({name, "gradient_gflops", batch, grad, flops / (grad * 1e6), "GFLOP/s"});
  }
}

/// cuBLAS SGEMM through the engine: C [m, n] = A [m, k] B [k, n], in GFLOP/s.
void bench_gemm(std::int64_t m, std::int64_t n, std::int64_t k, bool quick, std::vector<Row>& rows) {
  const Tensor a = normal(Shape{m, k}, 1.0, 6), b = normal(Shape{k, n}, 1.0, 7);
  Tape tape;
  tape.set_recording(false);
  const double ms = median_ms([&] { tape.reset(); (void)matmul(tape.constant(a), tape.constant(b)); }, quick);
  const std::string shape = std::to_string(m) + "x" + std::to_string(n) + "x" + std::to_string(k);
  rows.push_back({"sgemm " + shape, "gemm", m, ms, 2.0 * m * n * k / (ms * 1e6), "GFLOP/s"});
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) opt.quick = true;
    else if (std::strcmp(argv[i], "--models") == 0 && i + 1 < argc) opt.models = split(argv[++i]);
    else if (std::strcmp(argv[i], "--batches") == 0 && i + 1 < argc) {
      opt.batches.clear();
      for (const std::string& b : split(argv[++i])) opt.batches.push_back(std::stoll(b));
    } else {
      std::fprintf(stderr, "usage: bench_gpu [--quick] [--models mlp,lenet5,wrn16] [--batches 128,512]\n");
      return 2;
    }
  }
  if (!cuda::available()) {
    std::printf("bench_gpu: skipped: %s\n", cuda::describe_device().c_str());
    return 0;
  }
  std::printf("bench_gpu on %s, float32, TF32 off\n", cuda::describe_device().c_str());
  std::vector<Row> rows;
  try {
    for (std::int64_t b : opt.batches) bench_gemm(b, 256, 784, opt.quick, rows);
    bench_gemm(4096, 4096, 4096, opt.quick, rows);
    for (const std::string& m : opt.models)
      for (std::int64_t b : opt.batches) bench_model(m, b, opt.quick, rows);
  } catch (const Error& e) {
    std::printf("bench_gpu: error: %s\n", e.what());
    return 1;
  }
  std::printf("%-22s %-16s %6s %10s  %s\n", "model", "mode", "batch", "ms", "ratio");
  for (const Row& r : rows) {
    std::printf("%-22s %-16s %6lld %10.3f", r.model.c_str(), r.mode.c_str(), static_cast<long long>(r.batch), r.ms);
    if (r.ratio >= 0) std::printf("  %s %.3f", r.ratio_name.c_str(), r.ratio);
    std::printf("\n");
  }
  std::printf("csv:\nmodel,mode,batch,ms,ratio_name,ratio\n");
  for (const Row& r : rows)
    std::printf("%s,%s,%lld,%.6f,%s,%.6f\n", r.model.c_str(), r.mode.c_str(), static_cast<long long>(r.batch), r.ms,
                r.ratio_name.c_str(), r.ratio);
  return 0;
}
