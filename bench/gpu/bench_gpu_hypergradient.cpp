// One hypergradient of each method of hpo/ that runs on the GPU, LeNet-5 on 1×28×28 images,
// batch 128, T = 100 inner SGD steps with momentum, float32, weights and data on the GPU: the
// GPU counterpart of bench/bench_methods.cpp. θ: a global L2 (exp), the learning rate in two
// blocks, momentum (sigmoid) and weight decay (5 hyperparameters, so forward mode carries K = 5
// tangents). Each method's seconds (best of `--repeat` runs, after one warm-up run that fills
// the tape arenas and the device pool) and its multiple of plain training (T gradients + steps).
// The problem is tests/cuda/hpo_problem.h's (synthetic data; no data/ library on the GPU machine).
//
//   bench_gpu_hypergradient [--horizon T] [--batch B] [--repeat n] [--cpu]
//
// --cpu also runs every method with the weights on the CPU, for the GPU/CPU speed-up and the
// relative difference of the two hypergradients (float32: rounding, ~1e-5).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <gradhpo/cuda/cuda.h>
#include <gradhpo/hpo/inner_run.h>
#include <gradhpo/hpo/registry.h>

#include "../../tests/cuda/hpo_problem.h"

using namespace gradhpo;

namespace {

using Clock = std::chrono::steady_clock;

double seconds_of(const std::function<void()>& f, int repeat) {
  f();  // warm-up
  double best = 1e300;
  for (int i = 0; i < repeat; ++i) {
    const auto t0 = Clock::now();
    f();
    best = std::min(best, std::chrono::duration<double>(Clock::now() - t0).count());
  }
  return best;
}

double rel(const std::vector<double>& a, const std::vector<double>& b) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

}  // namespace

int main(int argc, char** argv) {
  testing::ModelProblemSpec spec;
  spec.horizon = 100;
  spec.batch = 128;
  spec.train_size = 1024;
  spec.val_size = 512;
  spec.dtype = DType::f32;
  spec.lr = 0.05;
  int repeat = 2;
  bool with_cpu = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--horizon" && i + 1 < argc) spec.horizon = std::stoll(argv[++i]);
    else if (a == "--batch" && i + 1 < argc) spec.batch = std::stoll(argv[++i]);
    else if (a == "--repeat" && i + 1 < argc) repeat = std::stoi(argv[++i]);
    else if (a == "--cpu") with_cpu = true;
    else {
      std::fprintf(stderr, "usage: bench_gpu_hypergradient [--horizon T] [--batch B] [--repeat n] [--cpu]\n");
      return 2;
    }
  }
  if (!cuda::available()) {
    std::printf("bench_gpu_hypergradient: skipped: %s\n", cuda::describe_device().c_str());
    return 0;
  }
  std::printf("bench_gpu_hypergradient on %s: LeNet-5, batch %lld, T = %lld, float32\n", cuda::describe_device().c_str(),
              static_cast<long long>(spec.batch), static_cast<long long>(spec.horizon));
  const auto model = std::make_shared<nn::LeNet5>(Shape{1, 28, 28}, 10);

  // The methods by name from the registry; the first row (no method) is plain training.
  hpo::register_builtin_methods();
  const hpo::Registry& registry = hpo::Registry::global();
  struct Row {
    const char* name;
    std::shared_ptr<const hpo::Method> method;
    Tensor run(const hpo::BilevelProblem& p, const Tensor& th) const {
      return method ? method->compute(p, th).d_theta : Tensor::scalar(hpo::run_inner(p, th).val_loss);
    }
  };
  const std::vector<Row> rows = {
      {"train (T gradients + steps)", nullptr},
      {"reverse store-all", registry.make_offline("reverse")},
      {"reverse checkpoint (sqrt T)", registry.make_offline("reverse", {{"policy", "checkpoint"}})},
      {"forward (K = 5)", registry.make_offline("forward")},
      {"DrMAD", registry.make_offline("drmad")},
  };

  std::printf("%-30s %12s %10s", "method", "GPU s", "x train");
  if (with_cpu) std::printf(" %12s %10s %12s", "CPU s", "CPU/GPU", "rel diff");
  std::printf("\n");
  spec.device = Device::cuda;
  const hpo::BilevelProblem gpu = testing::model_problem(model, spec);
  spec.device = Device::cpu;
  const hpo::BilevelProblem cpu = testing::model_problem(model, spec);
  const Tensor theta = gpu.hyper.initial(DType::f64);
  double train_s = 0;
  for (const Row& r : rows) {
    Tensor g_gpu, g_cpu;
    const double s = seconds_of([&] { g_gpu = r.run(gpu, theta); }, repeat);
    if (train_s == 0) train_s = s;
    std::printf("%-30s %12.3f %10.2f", r.name, s, s / train_s);
    if (with_cpu) {
      const double c = seconds_of([&] { g_cpu = r.run(cpu, theta); }, 1);
      std::printf(" %12.3f %10.1f %12.2e", c, c / s, rel(g_gpu.to_vector(), g_cpu.to_vector()));
    }
    std::printf("\n");
    std::fflush(stdout);
  }
  // The IFT needs loss-defining groups only: its own problem (λ_l2 alone), CG with 20 iterations.
  spec.learn_optimizer = false;
  spec.device = Device::cuda;
  const hpo::BilevelProblem ift = testing::model_problem(model, spec);
  const Tensor theta_l2 = ift.hyper.initial(DType::f64);
  const auto cg = registry.make_offline("ift", {{"iterations", "20"}, {"cg-tolerance", "0"}});
  const double s = seconds_of([&] { (void)cg->compute(ift, theta_l2); }, repeat);
  std::printf("%-30s %12.3f %10.2f  (training to w_T included, lambda_l2 only)\n", "IFT (CG, 20 iterations)", s,
              s / train_s);
  return 0;
}
