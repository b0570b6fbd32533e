// Scaling of the three MPI workloads (hpo/mpi/, DESIGN.md "Beyond one machine"), measured and on
// paper. A plain program (no Google Benchmark), one rank count per start; bench/mpi_scaling.sh
// starts it under mpirun at 1, 2 and 4 ranks and prints the table with the efficiencies.
//
//   mpirun -np N build/bench/mpi_scaling [--repeat R] [--quick] [--dp-forward]
//                                                                 one line per workload (rank 0)
//   build/bench/mpi_scaling --paper [--ranks 64 --columns 100 --batch 1024 --link-gbs 25 --device-tflops 30]
//                                                                 the communication model at scale
//
// Workloads, on one synthetic MLP problem (float32, 64 inputs, 128-128 hidden, 10 classes, batch
// 256, T = 40), each timed best of 3 (--repeat):
//   trials          random search, 12 trials of T inner steps (mpi::run_search: rank 0 coordinates,
//                   ranks 1..N-1 train)
//   columns         one forward-mode hypergradient with its K = 16 columns over the ranks
//                   (mpi::forward_hypergradient: lr schedule of 14 blocks, momentum, weight decay)
//   dp-train        T inner steps of data-parallel training, every batch (1024) split over the ranks
//   dp-hypergrad    one reverse-mode hypergradient (store-all), data-parallel (batch 1024)
//   dp-forward      (--dp-forward) one forward-mode hypergradient, data-parallel: its sums carry
//                   the K tangents (H·Z and ∂_θ∇_w L in one [K, P] block), (K+1)P + 1 values
//                   a step after the first (Z_0 = 0: a plain gradient) (slow: not by default)
//
// Bytes are counted in the MPI calls themselves, through MPI's profiling interface: this
// program defines MPI_Send, MPI_Recv, MPI_Gather, MPI_Gatherv and MPI_Bcast, counts their
// payload and calls the PMPI_ versions, so what the Communicator really sends is what is
// counted — the model on paper is checked against it. A payload is counted once, where it
// leaves its rank: a send's bytes, a non-root rank's part of a gather, and a broadcast's bytes
// once for each rank that receives them (whatever tree MPI uses to deliver them).
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <gradhpo/data/dataset.h>
#include <gradhpo/engine/error.h>
#include <gradhpo/engine/tape.h>
#include <gradhpo/engine/work_count.h>
#include <gradhpo/hpo/inner_run.h>
#include <gradhpo/hpo/mpi/communicator.h>
#include <gradhpo/hpo/mpi/data_parallel.h>
#include <gradhpo/hpo/mpi/forward_columns.h>
#include <gradhpo/hpo/mpi/search.h>
#include <gradhpo/hpo/registry.h>
#include <gradhpo/hpo/tasks/classification.h>
#include <gradhpo/nn/models.h>

namespace {

// --- bytes through MPI's profiling interface ----------------------------------------------------
std::int64_t g_bytes = 0;  // payload this rank sent (see the file comment)

std::int64_t bytes_of(int count, MPI_Datatype type) {
  int size = 0;
  PMPI_Type_size(type, &size);
  return static_cast<std::int64_t>(count) * size;
}

}  // namespace

extern "C" {
int MPI_Send(const void* buf, int count, MPI_Datatype type, int dest, int tag, MPI_Comm comm) {
  g_bytes += bytes_of(count, type);
  return PMPI_Send(buf, count, type, dest, tag, comm);
}
int MPI_Gather(const void* sendbuf, int sendcount, MPI_Datatype sendtype, void* recvbuf, int recvcount,
               MPI_Datatype recvtype, int root, MPI_Comm comm) {
  int rank = 0;
  PMPI_Comm_rank(comm, &rank);
  if (rank != root) g_bytes += bytes_of(sendcount, sendtype);
  return PMPI_Gather(sendbuf, sendcount, sendtype, recvbuf, recvcount, recvtype, root, comm);
}
int MPI_Gatherv(const void* sendbuf, int sendcount, MPI_Datatype sendtype, void* recvbuf, const int recvcounts[],
                const int displs[], MPI_Datatype recvtype, int root, MPI_Comm comm) {
  int rank = 0;
  PMPI_Comm_rank(comm, &rank);
  if (rank != root) g_bytes += bytes_of(sendcount, sendtype);
  return PMPI_Gatherv(sendbuf, sendcount, sendtype, recvbuf, recvcounts, displs, recvtype, root, comm);
}
int MPI_Alltoallv(const void* sendbuf, const int sendcounts[], const int sdispls[], MPI_Datatype sendtype, void* recvbuf,
                  const int recvcounts[], const int rdispls[], MPI_Datatype recvtype, MPI_Comm comm) {
  int rank = 0, size = 1;
  PMPI_Comm_rank(comm, &rank);
  PMPI_Comm_size(comm, &size);
  for (int r = 0; r < size; ++r)
    if (r != rank) g_bytes += bytes_of(sendcounts[r], sendtype);
  return PMPI_Alltoallv(sendbuf, sendcounts, sdispls, sendtype, recvbuf, recvcounts, rdispls, recvtype, comm);
}
int MPI_Allgatherv(const void* sendbuf, int sendcount, MPI_Datatype sendtype, void* recvbuf, const int recvcounts[],
                   const int displs[], MPI_Datatype recvtype, MPI_Comm comm) {
  int size = 1;
  PMPI_Comm_size(comm, &size);
  g_bytes += bytes_of(sendcount, sendtype) * (size - 1);  // this rank's chunk to every other rank
  return PMPI_Allgatherv(sendbuf, sendcount, sendtype, recvbuf, recvcounts, displs, recvtype, comm);
}
int MPI_Bcast(void* buffer, int count, MPI_Datatype type, int root, MPI_Comm comm) {
  int rank = 0, size = 1;
  PMPI_Comm_rank(comm, &rank);
  PMPI_Comm_size(comm, &size);
  if (rank == root) g_bytes += bytes_of(count, type) * (size - 1);
  return PMPI_Bcast(buffer, count, type, root, comm);
}
}

namespace {

using namespace gradhpo;

struct Settings {
  int repeat = 3;
  bool quick = false;
  std::int64_t horizon = 40;     // T: inner steps of a training run
  std::int64_t batch = 256;      // examples per inner step (trials, columns)
  std::int64_t dp_batch = 1024;  // examples per inner step of dp-*, split over the ranks
  std::int64_t trials = 12;
  std::int64_t lr_blocks = 14;   // + momentum + weight decay: K = 16 forward-mode columns
  bool dp_forward = false;       // also a data-parallel forward-mode hypergradient (--dp-forward)
};

/// n examples of 64 features (an 8×8 "image") from 10 Gaussian clusters, seeded.
data::Dataset clusters(std::int64_t n, std::uint64_t seed, const std::string& name) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> noise(0.0, 1.0);
  std::mt19937_64 centres_rng(12345);  // the same clusters in every set
  std::vector<double> centres(10 * 64);
  for (double& c : centres) c = noise(centres_rng);
  data::Dataset d;
  d.name = name;
  d.num_classes = 10;
  std::vector<double> x(static_cast<std::size_t>(n * 64));
  for (std::int64_t i = 0; i < n; ++i) {
    const int label = static_cast<int>(rng() % 10);
    d.labels.push_back(label);
    for (int j = 0; j < 64; ++j)
      x[static_cast<std::size_t>(i * 64 + j)] = centres[static_cast<std::size_t>(label * 64 + j)] + 1.5 * noise(rng);
  }
  d.images = Tensor::from(x, Shape{n, 1, 8, 8}, DType::f32);
  return d;
}

hpo::ClassificationTask make_task(const Settings& s, std::int64_t batch, int shard_count, int shard_rank) {
  nn::MlpOptions mo;
  mo.hidden = {128, 128};
  auto model = std::make_shared<nn::Mlp>(Shape{1, 8, 8}, 10, mo);
  hpo::Hyperparameters h;
  h.add(hpo::Hyperparameters::learning_rate(s.lr_blocks, 0.05));
  h.add(hpo::Hyperparameters::momentum(1, 0.9, hpo::Transform::sigmoid));
  h.add(hpo::Hyperparameters::weight_decay(1, 1e-4));
  nn::OptimizerConfig opt;
  opt.kind = nn::OptimizerKind::sgd;
  opt.lr = nn::Schedule::constant(0.05);
  opt.momentum = 0.9;
  opt.weight_decay = 1e-4;
  hpo::ClassificationOptions co;
  co.batch_size = batch;
  co.dtype = DType::f32;
  co.shard_count = shard_count;
  co.shard_rank = shard_rank;
  return hpo::make_classification_task(model, clusters(4096, 1, "clusters:train"), clusters(512, 2, "clusters:val"),
                                       std::move(h), opt, s.horizon, co);
}

double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

struct Measured {
  double seconds = 1e30;   // the slowest rank's wall time, best of the repeats
  double cpu = 1e30;       // CPU seconds summed over the ranks (every thread), best of the repeats
  std::int64_t bytes = 0;  // payload over all ranks, one repeat
};

/// f() on every rank between barriers, `repeat` times: the best time of the slowest rank, the
/// best CPU time summed over the ranks (the work done, which a machine busy with other jobs
/// changes far less than the wall time; a rank waiting in MPI counts what its polling costs), and
/// the payload of one run summed over the ranks.
template <class F> Measured measure(const mpi::Communicator& comm, int repeat, F&& f) {
  Measured m;
  for (int r = 0; r < repeat; ++r) {
    PMPI_Barrier(MPI_COMM_WORLD);
    const std::int64_t bytes0 = g_bytes;
    const double cpu0 = cpu_seconds();
    const auto t0 = std::chrono::steady_clock::now();
    f();
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    double cpu = cpu_seconds() - cpu0, cpu_total = 0;
    std::int64_t bytes = g_bytes - bytes0, total = 0;
    double slowest = 0;
    PMPI_Allreduce(&seconds, &slowest, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    PMPI_Allreduce(&cpu, &cpu_total, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    m.cpu = std::min(m.cpu, cpu_total);
    PMPI_Allreduce(&bytes, &total, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
    m.seconds = std::min(m.seconds, slowest);
    m.bytes = total;
  }
  (void)comm;
  return m;
}

/// `summed`: values that data-parallel training sums over the ranks in one run (0 elsewhere).
void report(const mpi::Communicator& comm, const char* workload, const Measured& m, std::int64_t units,
            const char* unit, std::int64_t inner_steps, std::int64_t summed = 0) {
  if (!comm.is_root()) return;
  // One line per workload, read by bench/mpi_scaling.sh.
  std::printf("row %s ranks=%d seconds=%.6f cpu=%.6f bytes=%lld units=%lld unit=%s inner_steps=%lld summed=%lld\n", workload,
              comm.size(), m.seconds, m.cpu, static_cast<long long>(m.bytes), static_cast<long long>(units), unit,
              static_cast<long long>(inner_steps), static_cast<long long>(summed));
  std::fflush(stdout);
}

int run_measured(const Settings& s) {
  const mpi::Communicator comm = mpi::Communicator::world();
  hpo::register_builtin_methods();
  const hpo::ClassificationTask whole = make_task(s, s.batch, 1, 0);
  const Tensor theta = whole.problem.hyper.initial();
  if (comm.is_root())
    std::printf("setup %s, %lld hyperparameters, T = %lld, batch %lld (data-parallel: %lld, split over the "
                "ranks), float32\n",
                whole.model->describe().c_str(), static_cast<long long>(theta.numel()),
                static_cast<long long>(s.horizon), static_cast<long long>(s.batch), static_cast<long long>(s.dp_batch));

  // Trials: random search over the learning rate and the momentum.
  {
    hpo::SearchOptions o;
    o.box = {{"lr", 0.01, 0.2, true}, {"momentum", 0.5, 0.95, false}};
    o.budget.inner_steps = s.trials * s.horizon;
    hpo::SearchRun run;
    const Measured m = measure(comm, s.repeat, [&] { run = mpi::run_search(comm, "random", whole.problem, o); });
    require(static_cast<std::int64_t>(run.trials.size()) == s.trials,
            "mpi_scaling: " + std::to_string(run.trials.size()) + " trials run, " + std::to_string(s.trials) + " meant");
    report(comm, "trials", m, s.trials, "trial", s.trials * s.horizon);
  }
  // Forward-mode columns: one hypergradient, K/N columns per rank.
  {
    const Measured m = measure(comm, s.repeat, [&] { (void)mpi::forward_hypergradient(comm, whole.problem, theta); });
    report(comm, "columns", m, 1, "hypergradient", s.horizon);
  }
  // Data-parallel: this rank's shard of every batch, the sums over the ranks.
  hpo::ClassificationTask shard = make_task(s, s.dp_batch, comm.size(), comm.rank());
  mpi::train_data_parallel(shard.problem, comm);
  // The values summed over the ranks, counted where Unroll hands them over (any rank count).
  std::int64_t summed = 0;
  shard.problem.sum_over_shards = [sum = shard.problem.sum_over_shards, &summed](const std::vector<Tensor*>& parts) {
    for (const Tensor* t : parts) summed += t->numel();
    sum(parts);
  };
  {
    summed = 0;
    const Measured m = measure(comm, s.repeat, [&] { (void)hpo::run_inner(shard.problem, theta); });
    report(comm, "dp-train", m, s.horizon, "step", s.horizon, summed / s.repeat);
  }
  {
    const auto method = hpo::Registry::global().make_offline("reverse", {{"policy", "store-all"}});
    summed = 0;
    const Measured m = measure(comm, s.repeat, [&] { (void)method->compute(shard.problem, theta); });
    report(comm, "dp-hypergrad", m, 1, "hypergradient", s.horizon, summed / s.repeat);
  }
  if (s.dp_forward) {  // forward mode data-parallel: K + 1 times training's sums per step
    const auto method = hpo::Registry::global().make_offline("forward", {});
    summed = 0;
    const Measured m = measure(comm, s.repeat, [&] { (void)method->compute(shard.problem, theta); });
    report(comm, "dp-forward", m, 1, "hypergradient", s.horizon, summed / s.repeat);
  }
  return 0;
}

// --- the communication model at scale -------------------------------------------------------------

std::string human_bytes(double b) {
  const char* units[] = {"B", "kB", "MB", "GB", "TB"};
  int u = 0;
  while (b >= 1000 && u < 4) {
    b /= 1000;
    ++u;
  }
  char s[32];
  std::snprintf(s, sizeof s, "%.3g %s", b, units[u]);
  return s;
}

/// The payload per inner step of each workload for N ranks, WRN-16-8 on CIFAR-10 (its parameter
/// count from nn/'s layout, its multiply-adds counted by the engine on one image), K
/// forward-mode columns (= hyperparameters N_θ) and a batch of B, as a markdown table. The
/// values summed per step are the ones this program counts at Unroll's seam (dp-train P + 1,
/// dp-hypergrad 3P + N_θ + 2, dp-forward (K+1)P + 1); bytes follow from the sums' wire formats.
int run_paper(int ranks, std::int64_t columns, std::int64_t batch, double link_gbs, double device_tflops) {
  nn::WideResNetOptions wo;
  wo.depth = 16;
  wo.widen = 8;
  const nn::WideResNet wrn(Shape{3, 32, 32}, 10, wo);
  const Tensor w = wrn.init(0);
  const Tensor x = Tensor::zeros(Shape{1, 3, 32, 32}, DType::f32);
  Tape tape;
  tape.set_recording(false);
  const WorkCount before = work_count();
  (void)wrn.forward(tape.constant(w), x, nn::Context::train());
  const double macs = static_cast<double>((work_count() - before).multiply_adds);  // per image, forward
  const double P = static_cast<double>(wrn.num_params()), N = ranks, K = static_cast<double>(columns);
  const double per_rank_batch = static_cast<double>(batch) / N;
  // A gradient step is ~3 forward passes (DESIGN.md, "Performance stance"): 6 FLOPs per MAC.
  const double step_flops = 6 * macs * per_rank_batch;
  const double step_seconds = step_flops / (device_tflops * 1e12);
  const double link = link_gbs * 1e9;
  std::printf("WRN-16-8 on CIFAR-10: P = %.0f parameters, %.3g G multiply-adds per image forward (counted);\n", P,
              macs / 1e9);
  std::printf("N = %d ranks, K = N_θ = %lld hyperparameters/columns, batch %lld (%.0f per rank); a step's gradient on "
              "one rank: %.3g TFLOP, %.3g ms at %.0f TFLOP/s; links of %.0f GB/s.\n\n",
              ranks, static_cast<long long>(columns), static_cast<long long>(batch), per_rank_batch, step_flops / 1e12,
              step_seconds * 1e3, device_tflops, link_gbs);
  std::printf("| workload | values per inner step | rank-ordered sum (float64): per rank | ring allreduce (NCCL, "
              "float32): per rank | compute per step (gradients) | ring time / compute time |\n|---|---|---|---|---|---|\n");
  // `gradients`: the step's compute in gradient evaluations (forward-over-reverse ~2.5, DESIGN.md;
  // K tangents in one pass ~K+1 at best).
  auto row = [&](const char* name, const char* formula, double values, double gradients) {
    const double rank_ordered = 2 * (N - 1) / N * values * 8;  // owner-chunked (Communicator::sum_in_rank_order)
    const double ring = 2 * (N - 1) / N * values * 4;
    std::printf("| %s | %s = %.4g | %s | %s | %.3g | %.2g |\n", name, formula, values, human_bytes(rank_ordered).c_str(),
                human_bytes(ring).c_str(), gradients, ring / link / (gradients * step_seconds));
  };
  row("data-parallel training", "P + 1", P + 1, 1);
  row("data-parallel reverse hypergradient", "3P + N_θ + 2", 3 * P + K + 2, 3.5);
  row("data-parallel forward mode", "(K+1)P + 1", (K + 1) * P + 1, K + 1);
  std::printf("| forward-mode columns | 0 (one gather of N_θ per hypergradient: %s) | — | — | 1 + K/N tangents | — |\n",
              human_bytes(2 * (N - 1) * K * 8).c_str());
  std::printf("| trials | 0 (~8·N_θ + 150 B per trial: %s) | — | — | T per trial | — |\n",
              human_bytes(8 * K + 150).c_str());
  // Where data-parallel training stops scaling at this batch: the smallest rank count at which a
  // step's sum takes as long as its gradient (the sums do not overlap the backward pass).
  auto break_even = [&](bool ring) {
    for (int n = 2; n <= 1 << 16; ++n) {
      const double compute = 6 * macs * static_cast<double>(batch) / n / (device_tflops * 1e12);
      const double comm = 2.0 * (n - 1) / n * (P + 1) * (ring ? 4 : 8) / link;
      if (comm >= compute) return n;
    }
    return 1 << 16;
  };
  std::printf("\nData-parallel training at batch %lld: the sum takes as long as the gradient from N = %d ranks with "
              "the rank-ordered sum (2(N-1)/N·(P+1)·8 bytes per rank: float64, chunks owned by the ranks), from N = %d "
              "with a ring allreduce "
              "(2(N-1)/N·(P+1)·4 bytes per rank, NCCL).\n",
              static_cast<long long>(batch), break_even(false), break_even(true));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Settings s;
  bool paper = false;
  int ranks = 64;
  std::int64_t columns = 100, batch = 1024;
  double link_gbs = 25, device_tflops = 30;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "mpi_scaling: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--repeat") s.repeat = std::atoi(next());
    else if (a == "--quick") s.quick = true;
    else if (a == "--dp-forward") s.dp_forward = true;
    else if (a == "--paper") paper = true;
    else if (a == "--ranks") ranks = std::atoi(next());
    else if (a == "--columns") columns = std::atoll(next());
    else if (a == "--batch") batch = std::atoll(next());
    else if (a == "--link-gbs") link_gbs = std::atof(next());
    else if (a == "--device-tflops") device_tflops = std::atof(next());
    else {
      std::fprintf(stderr, "mpi_scaling: unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  if (paper) return run_paper(ranks, columns, batch, link_gbs, device_tflops);
  if (s.quick) {
    s.horizon = 14;
    s.trials = 4;
    s.repeat = 1;
    s.dp_batch = 256;
  }
  mpi::Session session(&argc, &argv);
  try {
    return run_measured(s);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mpi_scaling: %s\n", e.what());
    mpi::Communicator::world().abort(e.what());
  }
}
