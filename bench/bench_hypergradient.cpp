// The cost of one exact hypergradient on LeNet-5 (T = 100 steps, batch 128, float32), as a
// multiple of the plain training run of the same T, measured in this program:
//   reverse mode, three memory policies   counters vs_training, vs_store_all, peak_MB (best of 3)
//   forward mode with K = 1, 10, 30        counters vs_training, vs_single_passes (the same run
//                                          doing K single-direction passes per step), peak_MB
//                                          (best of 3, interleaved)
// Issue goals: store-all ≤ 4× training, exact reversal ≤ 1.3× store-all, checkpointing ≤ 2×
// store-all, forward mode with K columns ≤ 0.6× the K-single-pass run.
// Every ratio also as cpu_* (CPU time of the process, all threads): the robust figure when the
// machine is shared with other jobs. Data are seeded random images (the cost does not depend on
// what the pixels are).
#include "bench_common.h"

#include <algorithm>
#include <memory>
#include <tuple>

#include <gradhpo/hpo/tasks/classification.h>
#include <gradhpo/hpo/inner_run.h>
#include <gradhpo/hpo/methods/reverse.h>
#include <gradhpo/hpo/registry.h>

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

/// The plain training run (the unit of every vs_training counter): best of 3, wall and CPU.
bench::Timing training() {
  static const bench::Timing t = [] {
    const hpo::ClassificationTask task = lenet_task(1);
    const Tensor th = task.problem.hyper.initial();
    return bench::best_of_three([&] { hpo::run_inner(task.problem, th); });
  }();
  return t;
}

void report(benchmark::State& state, const hpo::Hypergradient& h, const bench::Timing& t) {
  state.counters["vs_training"] = t.wall / training().wall;
  state.counters["cpu_vs_training"] = t.cpu / training().cpu;
  state.counters["peak_MB"] = static_cast<double>(h.cost.peak_bytes) / 1e6;
  state.counters["train_s"] = training().wall;
}

void reverse_policy(benchmark::State& state, hpo::ReversePolicy policy) {
  const hpo::ClassificationTask task = lenet_task(10);
  const Tensor th = task.problem.hyper.initial();
  hpo::register_builtin_methods();
  const auto method = hpo::Registry::global().make_offline("reverse", {{"policy", hpo::policy_name(policy)}});
  const auto store_all = hpo::Registry::global().make_offline("reverse");
  hpo::Hypergradient h, store;
  bench::Timing t, t_store;
  // Best of three, as the training run it is divided by (a single run against a best-of-three
  // unit would count every stray delay of the machine against the hypergradient); the other
  // policies interleaved with store-all's runs.
  auto run = [&] { h = method->compute(task.problem, th); };
  for (auto _ : state) {
    if (policy == hpo::ReversePolicy::store_all) t = bench::best_of_three(run);
    else std::tie(t, t_store) = bench::best_of_three_interleaved(run, [&] { store = store_all->compute(task.problem, th); });
    state.SetIterationTime(t.wall);
  }
  report(state, h, t);
  if (policy != hpo::ReversePolicy::store_all) {
    state.counters["vs_store_all"] = t.wall / t_store.wall;
    state.counters["cpu_vs_store_all"] = t.cpu / t_store.cpu;
  }
}

void forward_k(benchmark::State& state, std::int64_t K) {
  const hpo::ClassificationTask task = lenet_task(K == 1 ? 1 : K - 2);
  const Tensor th = task.problem.hyper.initial();
  hpo::register_builtin_methods();
  const auto forward = hpo::Registry::global().make_offline("forward");
  const auto single = hpo::Registry::global().make_offline("forward", {{"single-direction", "true"}});
  hpo::Hypergradient h;
  bench::Timing t, t_single;
  // Best of three of each, interleaved: one run of each varied by ±15% on a virtual machine
  // (K = 10 read 0.51 to 0.70 across idle runs).
  auto run = [&] { h = forward->compute(task.problem, th); };
  for (auto _ : state) {
    if (K == 1) t = bench::best_of_three(run);
    else std::tie(t, t_single) = bench::best_of_three_interleaved(run, [&] { single->compute(task.problem, th); });
    state.SetIterationTime(t.wall);
  }
  report(state, h, t);
  if (K > 1) {
    state.counters["vs_single_passes"] = t.wall / t_single.wall;
    state.counters["cpu_vs_single_passes"] = t.cpu / t_single.cpu;
  }
}

void register_all(int threads) {
  auto add = [threads](const std::string& name, auto fn) { bench::register_single_run("lenet5_T100", name, threads, fn); };
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
