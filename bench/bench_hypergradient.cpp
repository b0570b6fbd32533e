// The cost of one exact hypergradient on LeNet-5 (T = 100 steps, batch 128, float32), as a
// multiple of the plain training run of the same T, measured in this program:
//   reverse mode, three memory policies   counters vs_training, vs_store_all, peak_MB
//   forward mode with K = 1, 10, 30        counters vs_training, vs_single_passes (the same run
//                                          doing K single-direction passes per step), peak_MB
// Issue goals: store-all ≤ 4× training, exact reversal ≤ 1.3× store-all, checkpointing ≤ 2×
// store-all, forward mode with K columns ≤ 0.6× the K-single-pass run.
// Data are seeded random images (the cost does not depend on what the pixels are).
#include "bench_common.h"

#include <algorithm>
#include <memory>

#include <gradhpo/hpo/classification.h>
#include <gradhpo/hpo/forward.h>
#include <gradhpo/hpo/inner_run.h>
#include <gradhpo/hpo/reverse.h>

using namespace gradhpo;

namespace {

constexpr std::int64_t kSteps = 100, kBatch = 128;

hpo::ClassificationTask lenet_task(std::int64_t lr_blocks) {
  static const std::shared_ptr<const nn::Model> model = nn::make_model("lenet5", Shape{1, 28, 28}, 10);
  data::Dataset train, val;
  train.images = bench::random_normal(Shape{1280, 1, 28, 28}, 1.0, 1);
  val.images = bench::random_normal(Shape{500, 1, 28, 28}, 1.0, 2);
  for (int i = 0; i < 1280; ++i) train.labels.push_back(i % 10);
  for (int i = 0; i < 500; ++i) val.labels.push_back((i * 7) % 10);
  train.num_classes = val.num_classes = 10;
  train.name = "random:train";
  val.name = "random:val";
  hpo::Hyperparameters h;
  h.add(hpo::Hyperparameters::learning_rate(lr_blocks, 0.02));
  if (lr_blocks > 1) {
    h.add(hpo::Hyperparameters::momentum(1, 0.5));
    h.add(hpo::Hyperparameters::weight_decay(1, 1e-4));
  }
  nn::OptimizerConfig opt;
  opt.momentum = 0.5;
  hpo::ClassificationOptions co;
  co.batch_size = kBatch;
  return hpo::make_classification_task(model, train, val, std::move(h), opt, kSteps, co);
}

/// Seconds of the plain training run (the unit of every vs_training counter), best of 3.
double training_seconds() {
  static const double t = [] {
    const hpo::ClassificationTask task = lenet_task(1);
    const Tensor th = task.problem.hyper.initial();
    double best = 1e30;
    for (int i = 0; i < 3; ++i) best = std::min(best, hpo::run_inner(task.problem, th).seconds);
    return best;
  }();
  return t;
}

void report(benchmark::State& state, const hpo::Hypergradient& h, double seconds) {
  state.counters["vs_training"] = seconds / training_seconds();
  state.counters["peak_MB"] = static_cast<double>(h.cost.peak_bytes) / 1e6;
  state.counters["train_s"] = training_seconds();
}

void reverse_policy(benchmark::State& state, hpo::ReversePolicy policy) {
  const hpo::ClassificationTask task = lenet_task(10);
  const Tensor th = task.problem.hyper.initial();
  hpo::ReverseOptions o;
  o.policy = policy;
  hpo::Hypergradient h, store;
  double t = 0, t_store = 0;
  for (auto _ : state) {
    t = bench::seconds([&] { h = hpo::reverse_hypergradient(task.problem, th, o); });
    state.SetIterationTime(t);
    if (policy != hpo::ReversePolicy::store_all)
      t_store = bench::seconds([&] { store = hpo::reverse_hypergradient(task.problem, th); });
  }
  report(state, h, t);
  if (t_store > 0) state.counters["vs_store_all"] = t / t_store;
}

void forward_k(benchmark::State& state, std::int64_t K) {
  const hpo::ClassificationTask task = lenet_task(K == 1 ? 1 : K - 2);
  const Tensor th = task.problem.hyper.initial();
  hpo::ForwardOptions single;
  single.single_direction_passes = true;
  hpo::Hypergradient h;
  double t = 0, t_single = 0;
  for (auto _ : state) {
    t = bench::seconds([&] { h = hpo::forward_hypergradient(task.problem, th); });
    state.SetIterationTime(t);
    if (K > 1) t_single = bench::seconds([&] { hpo::forward_hypergradient(task.problem, th, single); });
  }
  report(state, h, t);
  if (t_single > 0) state.counters["vs_single_passes"] = t / t_single;
}

void register_all(int threads) {
  auto add = [threads](const std::string& name, auto fn) {
    benchmark::RegisterBenchmark(("lenet5_T100/" + name + "/threads:" + std::to_string(threads)).c_str(),
                                 [fn, threads](benchmark::State& s) {
                                   bench::set_threads(threads);
                                   fn(s);
                                 })
        ->Unit(benchmark::kMillisecond)
        ->UseManualTime()
        ->Iterations(1);
  };
  add("reverse_store_all", [](benchmark::State& s) { reverse_policy(s, hpo::ReversePolicy::store_all); });
  add("reverse_exact", [](benchmark::State& s) { reverse_policy(s, hpo::ReversePolicy::exact_reversal); });
  add("reverse_checkpoint", [](benchmark::State& s) { reverse_policy(s, hpo::ReversePolicy::checkpoint); });
  for (std::int64_t K : {1, 10, 30})
    add("forward_K" + std::to_string(K), [K](benchmark::State& s) { forward_k(s, K); });
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  register_all(2);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
