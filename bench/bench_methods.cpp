// The cost of one hypergradient of every method, on LeNet-5 (T = 100 steps, batch 128, float32),
// as a multiple of the plain training run of the same T, measured in this program (issue goal:
// "time of one hypergradient per method on LeNet-5 (T = 100), as a multiple of the plain
// training run"). The problem learns one L2 coefficient per parameter tensor — a loss-defining
// group, so that every method applies, the implicit ones included:
//   offline   the exactness ladder's methods (hpo/ladder.h: reverse mode's three policies,
//             forward mode, DrMAD, T1–T2 exact and DARTS, generalized greedy, IFT by CG and by
//             the Neumann series), each one hypergradient at θ₀
//   online    HyperDistill, T1–T2 and generalized greedy as online methods: one pass over the
//             T steps, a hypergradient and a θ update every step
// Counters: vs_training (the method's wall time / the training run's), cpu_vs_training (the same
// for CPU time: the robust figure on a loaded machine), peak_MB (the method's own buffers).
// Data are seeded random images (the cost does not depend on what the pixels are).
#include "bench_common.h"

#include <cctype>
#include <memory>

#include <gradhpo/hpo/tasks/classification.h>
#include <gradhpo/hpo/inner_run.h>
#include <gradhpo/hpo/eval/ladder.h>
#include <gradhpo/hpo/registry.h>
#include <gradhpo/hpo/online/greedy.h>
#include <gradhpo/hpo/online/hyperdistill.h>
#include <gradhpo/hpo/online/t1t2.h>
#include <gradhpo/nn/loss.h>
#include <gradhpo/nn/models.h>

using namespace gradhpo;

namespace {

constexpr std::int64_t kSteps = 100, kBatch = 128;

const hpo::ClassificationTask& lenet_task() {
  static const hpo::ClassificationTask task = [] {
    std::shared_ptr<const nn::Model> model = nn::make_model("lenet5", Shape{1, 28, 28}, 10);
    data::Dataset train, val;
    train.images = bench::random_normal(Shape{1280, 1, 28, 28}, 1.0, 1);
    val.images = bench::random_normal(Shape{500, 1, 28, 28}, 1.0, 2);
    for (int i = 0; i < 1280; ++i) train.labels.push_back(i % 10);
    for (int i = 0; i < 500; ++i) val.labels.push_back((i * 7) % 10);
    train.num_classes = val.num_classes = 10;
    train.name = "random:train";
    val.name = "random:val";
    std::vector<std::string> names;
    const std::vector<int> groups = nn::layer_groups(model->layout(), &names);
    hpo::Hyperparameters h;
    h.add(hpo::Hyperparameters::l2_per_tensor(groups, names, 1e-4));
    nn::OptimizerConfig opt;
    opt.lr = nn::Schedule::constant(0.02);
    opt.momentum = 0.5;
    hpo::ClassificationOptions co;
    co.batch_size = kBatch;
    return hpo::make_classification_task(model, train, val, std::move(h), opt, kSteps, co);
  }();
  return task;
}

/// The plain training run (the unit of every vs_training counter): best of 3, wall and CPU.
bench::Timing training() {
  static const bench::Timing t = [] {
    const hpo::BilevelProblem& p = lenet_task().problem;
    return bench::best_of_three([&] { hpo::run_inner(p, p.hyper.initial()); });
  }();
  return t;
}

void report(benchmark::State& state, const bench::Timing& t) {
  state.counters["vs_training"] = t.wall / training().wall;
  state.counters["cpu_vs_training"] = t.cpu / training().cpu;
  state.counters["train_s"] = training().wall;
}

void offline(benchmark::State& state, const hpo::Method& method) {
  const hpo::BilevelProblem& p = lenet_task().problem;
  const Tensor theta = p.hyper.initial();
  hpo::Hypergradient h;
  bench::Timing t;
  for (auto _ : state) {
    t = bench::timed([&] { h = method.compute(p, theta); });
    state.SetIterationTime(t.wall);
  }
  report(state, t);
  state.counters["peak_MB"] = static_cast<double>(h.cost.peak_bytes) / 1e6;
}

template <class Method> void online(benchmark::State& state) {
  const hpo::BilevelProblem& p = lenet_task().problem;
  hpo::OuterOptions outer;
  outer.kind = hpo::OuterKind::sgd;
  outer.step = {0.01};
  Method method(p, outer);
  bench::Timing t;
  for (auto _ : state) {
    hpo::BilevelState s = method.init(p.hyper.initial(DType::f64));
    t = bench::timed([&] { method.run(s); });
    state.SetIterationTime(t.wall);
  }
  report(state, t);
}

void register_all(int threads) {
  auto add = [threads](const std::string& name, auto fn) { bench::register_single_run("lenet5_T100_l2", name, threads, fn); };
  hpo::register_builtin_methods();
  std::vector<hpo::LadderMethod> methods = {{"reverse (store-all)", hpo::Registry::global().make_offline("reverse")}};
  for (hpo::LadderMethod& m : hpo::standard_ladder()) methods.push_back(std::move(m));
  for (const hpo::LadderMethod& m : methods) {
    std::string name = m.name;
    for (char& c : name)
      if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
    add("offline_" + name, [method = m.method](benchmark::State& s) { offline(s, *method); });
  }
  add("online_hyperdistill", [](benchmark::State& s) { online<hpo::HyperDistill>(s); });
  add("online_t1t2", [](benchmark::State& s) { online<hpo::T1T2>(s); });
  add("online_greedy", [](benchmark::State& s) { online<hpo::GeneralizedGreedy>(s); });
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  register_all(2);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
