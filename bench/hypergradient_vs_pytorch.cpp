// Our side of bench/hypergradient_vs_pytorch.py: ONE hypergradient of one of issue 21's two
// problems by one method, in a process of its own (so that its peak memory is that method's).
//
//   logreg  MNIST logistic regression 784 -> 10 (P = 7,850), per-entry L2 λ = exp(θ) (N = 7,850),
//           full batch: the first 5,000 training images, SGD lr 0.1, momentum 0.9, float64
//   mlp     MLP 784-256-256-10 (P = 269,322), 10 learning-rate blocks + momentum + weight decay
//           (N = 12), batches of 128 from a seeded shuffle of the 60,000 training images, float32
// Both: T = 100 unless --steps, L_val = mean cross-entropy on the first 5,000 test images.
//
//   hypergradient_vs_pytorch --problem logreg|mlp --method M [--steps T] [--threads n]
//                            [--data DIR] [--dump DIR] [--dtype f64 (mlp)]
//                            [--train-size n (logreg: its full batch, for long horizons)] [--out FILE] [--option key=value ...]
// M: a registry method name with its options, e.g. reverse (store-all), reverse with
// --option policy=exact-reversal, forward, forward --option single-direction=true; or "train"
// (the plain training run, the unit of cost).
// --dump DIR writes what the PyTorch side needs to run the same problem: w₀ and θ₀ as raw
// float64, and (mlp) the training-set indices of every step's batch as raw int64 [T, 128].
// --out FILE writes the hypergradient as raw float64 [N].
// Prints one JSON line: seconds and cpu_seconds (the compute call alone, wall and all threads' CPU),
// rss_before_kb (resident before it),
// peak_kb (VmHWM of the whole process), growth_kb (VmHWM after the call, the high-water mark
// having been reset just before it, minus rss_before_kb), peak_bytes and notes of the result.
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <gradhpo/data/batches.h>
#include <gradhpo/data/load.h>
#include <gradhpo/engine/threads.h>
#include <gradhpo/hpo/inner_run.h>
#include <gradhpo/hpo/registry.h>
#include <gradhpo/hpo/tasks/classification.h>

using namespace gradhpo;

namespace {

constexpr std::int64_t kValCount = 5000, kLogregTrain = 5000, kMlpBatch = 128;

long status_kb(const char* field) {
  std::ifstream f("/proc/self/status");
  std::string line;
  const std::string key = std::string(field) + ":";
  while (std::getline(f, line))
    if (line.rfind(key, 0) == 0) return std::stol(line.substr(key.size()));
  return -1;
}

/// User + system seconds of the whole process (every thread) so far.
double cpu_seconds() {
  rusage r{};
  getrusage(RUSAGE_SELF, &r);
  return static_cast<double>(r.ru_utime.tv_sec + r.ru_stime.tv_sec) + 1e-6 * static_cast<double>(r.ru_utime.tv_usec + r.ru_stime.tv_usec);
}

/// Resets VmHWM to the current resident size (Linux ≥ 4.0), so that the next reading is the
/// peak of what follows.
void reset_peak() {
  std::ofstream f("/proc/self/clear_refs");
  f << "5";
}

data::Dataset first(const data::Dataset& d, std::int64_t n) {
  std::vector<std::int64_t> idx(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) idx[static_cast<std::size_t>(i)] = i;
  data::Dataset s = d.subset(idx);
  s.name = d.name;
  return s;
}

void write_raw(const std::string& path, const void* p, std::size_t bytes) {
  std::ofstream f(path, std::ios::binary);
  require(static_cast<bool>(f), "cannot write " + path);
  f.write(static_cast<const char*>(p), static_cast<std::streamsize>(bytes));
}

void write_f64(const std::string& path, const Tensor& t) {
  const std::vector<double> v = t.to(DType::f64).to_vector();
  write_raw(path, v.data(), v.size() * sizeof(double));
}

struct Args {
  std::string problem = "logreg", method = "reverse", data_dir, dump, out;
  std::int64_t steps = 100;
  int threads = 2;
  std::int64_t logreg_train = kLogregTrain;  ///< --train-size: logreg's full batch (long horizons)
  bool mlp_f64 = false;  ///< --dtype f64: the MLP problem in float64 (to check agreement to rounding)
  std::map<std::string, std::string> options;
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto value = [&]() -> std::string {
      require(i + 1 < argc, "missing value after " + k);
      return argv[++i];
    };
    if (k == "--problem") a.problem = value();
    else if (k == "--method") a.method = value();
    else if (k == "--steps") a.steps = std::stoll(value());
    else if (k == "--threads") a.threads = std::stoi(value());
    else if (k == "--data") a.data_dir = value();
    else if (k == "--dtype") a.mlp_f64 = value() == "f64";
    else if (k == "--train-size") a.logreg_train = std::stoll(value());
    else if (k == "--dump") a.dump = value();
    else if (k == "--out") a.out = value();
    else if (k == "--option") {
      const std::string kv = value();
      const auto eq = kv.find('=');
      require(eq != std::string::npos, "--option takes key=value, got " + kv);
      a.options[kv.substr(0, eq)] = kv.substr(eq + 1);
    } else {
      throw Error("unknown argument " + k);
    }
  }
  require(a.problem == "logreg" || a.problem == "mlp", "--problem: logreg or mlp, got " + a.problem);
  return a;
}

hpo::ClassificationTask make_task(const Args& a, const data::TrainTest& d) {
  const data::Dataset val = first(d.test, kValCount);
  hpo::Hyperparameters h;
  nn::OptimizerConfig opt;
  hpo::ClassificationOptions co;
  std::shared_ptr<const nn::Model> model;
  if (a.problem == "logreg") {
    model = std::make_shared<nn::Mlp>(Shape{1, 28, 28}, 10, nn::MlpOptions{{}, nn::Activation::relu});
    h.add(hpo::Hyperparameters::l2_per_entry(model->num_params(), 1e-3));
    opt.lr = nn::Schedule::constant(0.1);
    opt.momentum = 0.9;
    co.batch_size = 0;
    co.dtype = DType::f64;
    return hpo::make_classification_task(model, first(d.train, a.logreg_train), val, std::move(h), opt, a.steps, co);
  }
  model = std::make_shared<nn::Mlp>(Shape{1, 28, 28}, 10, nn::MlpOptions{{256, 256}, nn::Activation::relu});
  h.add(hpo::Hyperparameters::learning_rate(10, 0.05));
  h.add(hpo::Hyperparameters::momentum(1, 0.9));
  h.add(hpo::Hyperparameters::weight_decay(1, 5e-4));
  opt.momentum = 0.9;
  co.batch_size = kMlpBatch;
  co.dtype = a.mlp_f64 ? DType::f64 : DType::f32;
  return hpo::make_classification_task(model, d.train, val, std::move(h), opt, a.steps, co);
}

/// The batches the classification task draws (its seeded shuffle, data::BatchIterator), for
/// the PyTorch side: rebuilt here the same way make_classification_task builds them.
std::vector<std::int64_t> batch_indices(const data::Dataset& train, std::int64_t steps) {
  data::BatchIterator it(train, kMlpBatch, 0, /*shuffle=*/true, /*drop_last=*/true);
  data::Batch b;
  std::vector<std::int64_t> out;
  std::int64_t t = 0;
  while (t < steps) {
    if (!it.next(b)) {
      it.start_epoch(it.epoch() + 1);
      continue;
    }
    out.insert(out.end(), b.indices.begin(), b.indices.end());
    ++t;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) try {
  const Args a = parse(argc, argv);
  set_num_threads(a.threads);
  const data::TrainTest d = data::load_dataset("mnist", a.data_dir);
  const hpo::ClassificationTask task = make_task(a, d);
  const Tensor theta = task.problem.hyper.initial();
  if (!a.dump.empty()) {
    write_f64(a.dump + "/" + a.problem + "_w0.bin", task.problem.w0);
    write_f64(a.dump + "/" + a.problem + "_theta0.bin", theta);
    if (a.problem == "mlp") {
      const std::vector<std::int64_t> idx = batch_indices(d.train, a.steps);
      write_raw(a.dump + "/mlp_batches.bin", idx.data(), idx.size() * sizeof(std::int64_t));
    }
  }
  hpo::register_builtin_methods();
  const long load_peak = status_kb("VmHWM"), rss_before = status_kb("VmRSS");
  reset_peak();
  hpo::Hypergradient h;
  const double cpu0 = cpu_seconds();
  const auto t0 = std::chrono::steady_clock::now();
  if (a.method == "train") {
    hpo::run_inner(task.problem, theta);
  } else {
    const auto m = hpo::Registry::global().make_offline(a.method, a.options);
    h = m->compute(task.problem, theta);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double cpu = cpu_seconds() - cpu0;
  const long hwm = status_kb("VmHWM");
  if (!a.out.empty() && h.d_theta.defined()) write_f64(a.out, h.d_theta);
  std::ostringstream notes;
  for (const std::string& n : h.notes) {
    notes << (notes.tellp() > 0 ? " | " : "");
    for (char c : n) notes << (c == '"' || c == '\\' ? ' ' : c);
  }
  std::cout << "{\"seconds\": " << seconds << ", \"cpu_seconds\": " << cpu << ", \"rss_before_kb\": " << rss_before
            << ", \"peak_kb\": " << std::max(load_peak, hwm) << ", \"growth_kb\": " << hwm - rss_before
            << ", \"peak_bytes\": " << h.cost.peak_bytes << ", \"P\": " << task.problem.num_params()
            << ", \"N\": " << theta.numel() << ", \"notes\": \"" << notes.str() << "\"}" << std::endl;
  return 0;
} catch (const std::exception& e) {
  std::cerr << "hypergradient_vs_pytorch: " << e.what() << "\n";
  return 1;
}
