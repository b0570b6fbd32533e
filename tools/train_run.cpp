#include "train_run.h"

#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <iostream>
#include <ostream>

#include <gradhpo/data/data.h>
#include <gradhpo/data/random.h>
#include <gradhpo/engine/error.h>
#include <gradhpo/engine/threads.h>
#include <gradhpo/nn/nn.h>

#include "progress.h"

namespace gradhpo::tools {

double peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;  // Linux reports kilobytes
}

void set_threads(int threads) {
  // At most the cores this process may use (affinity, cgroup quota, its share among MPI ranks).
  std::string warning;
  gradhpo::set_num_threads(gradhpo::capped_threads(threads, &warning));
  if (!warning.empty()) std::cerr << "gradhpo: warning: " << warning << "\n";
}

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::string format(const char* fmt, ...) {
  char buf[512];
  va_list args;
  va_start(args, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, args);
  va_end(args);
  return buf;
}

int thread_count() { return gradhpo::num_threads(); }

// The optimizer with its learning-rate schedule in steps; epochs convert at steps_per_epoch.
nn::OptimizerConfig optimizer_config(const TrainRunOptions& o, std::int64_t steps_per_epoch) {
  nn::OptimizerConfig c;
  if (o.optimizer == "adamw") {
    c.kind = nn::OptimizerKind::adam;
    c.decoupled = true;
  } else {
    c.kind = nn::parse_optimizer(o.optimizer);
  }
  c.momentum = o.momentum;
  c.weight_decay = o.weight_decay;
  const std::int64_t total = std::max<std::int64_t>(1, o.epochs * steps_per_epoch);
  auto epochs_to_steps = [&](double e) {
    require(std::isfinite(e) && e > 0, "--lr-step/--lr-milestones: epochs must be positive, got " + std::to_string(e));
    return std::max<std::int64_t>(1, std::llround(e * static_cast<double>(steps_per_epoch)));
  };
  switch (nn::parse_schedule_kind(o.schedule)) {
    case nn::Schedule::Kind::constant: c.lr = nn::Schedule::constant(o.lr); break;
    case nn::Schedule::Kind::step: {
      const double every = o.lr_step_epochs > 0 ? o.lr_step_epochs : std::max(1.0, o.epochs / 3.0);
      c.lr = nn::Schedule::step(o.lr, epochs_to_steps(every), o.lr_gamma);
      break;
    }
    case nn::Schedule::Kind::multistep: {
      require(!o.lr_milestones.empty(), "--schedule multistep needs --lr-milestones (epochs, e.g. 30,60,80)");
      std::vector<std::int64_t> steps;
      for (double e : o.lr_milestones) steps.push_back(epochs_to_steps(e));
      c.lr = nn::Schedule::multistep(o.lr, steps, o.lr_gamma);
      break;
    }
    case nn::Schedule::Kind::cosine: c.lr = nn::Schedule::cosine(o.lr, total, o.lr_min); break;
    case nn::Schedule::Kind::table: break;  // not offered on the command line
  }
  c.validate();
  return c;
}

void check_options(const TrainRunOptions& o) {
  require(o.epochs >= 1, "--epochs must be at least 1, got " + std::to_string(o.epochs));
  require(o.batch_size >= 1, "--batch-size must be at least 1, got " + std::to_string(o.batch_size));
  require(o.eval_batch >= 1, "--eval-batch must be at least 1, got " + std::to_string(o.eval_batch));
  require(std::isfinite(o.val_fraction) && o.val_fraction >= 0 && o.val_fraction < 1,
          "--val-fraction must be in [0, 1), got " + std::to_string(o.val_fraction));
  require(o.threads >= 0, "--threads must be >= 0, got " + std::to_string(o.threads));
  require(o.train_limit >= 0, "--train-limit must be >= 0, got " + std::to_string(o.train_limit));
  // The optimizer's own checks (NaN/inf rates etc.), before any data is read.
  optimizer_config(o, 1);
}

}  // namespace

TrainRunResult run_training(const TrainRunOptions& o, std::ostream& out) {
  const auto t_start = Clock::now();
  check_options(o);
  set_threads(o.threads);

  // ---- data: load, split off validation, optionally limit, standardize per channel ----------
  // The loader's tensors are dropped as soon as the split has copied them, and standardization
  // is done in place: peak memory is about twice the training images, not four times.
  data::TrainTest tt = data::load_dataset(o.dataset, o.data_folder);
  data::Dataset train = tt.train, val, test = tt.test;
  if (o.val_fraction > 0) {
    data::TrainVal tv = data::split_train_val(tt.train, o.val_fraction, data::derive_seed(o.seed, 1));
    train = std::move(tv.train);
    val = std::move(tv.val);
  }
  tt.train = data::Dataset{};
  tt.test = data::Dataset{};
  if (o.train_limit > 0 && o.train_limit < train.size()) {
    std::vector<std::int64_t> first(static_cast<std::size_t>(o.train_limit));
    for (std::int64_t i = 0; i < o.train_limit; ++i) first[static_cast<std::size_t>(i)] = i;
    train = train.subset(first);
  }
  const data::ChannelStats stats = data::channel_stats(train);
  data::normalize_inplace(train.images, stats);
  if (val.size() > 0) data::normalize_inplace(val.images, stats);
  data::normalize_inplace(test.images, stats);

  // ---- model, optimizer, trainer ---------------------------------------------------------------
  nn::ModelOptions mo;
  mo.mlp.hidden = o.hidden;
  mo.mlp.activation = nn::parse_activation(o.activation);
  mo.lenet5.activation = mo.mlp.activation;
  mo.wrn.widen = o.widen;
  const Shape input{train.channels(), train.height(), train.width()};
  const std::unique_ptr<nn::Model> model = nn::make_model(o.model, input, train.num_classes, mo);
  const Tensor w0 = model->init(o.seed, nn::parse_init_scheme(o.init));

  data::BatchIterator batches(train, o.batch_size, data::derive_seed(o.seed, 2));
  const std::int64_t steps_per_epoch = batches.batches_per_epoch();
  const nn::OptimizerConfig oc = optimizer_config(o, steps_per_epoch);
  nn::Trainer trainer(*model, w0, model->init_state(), oc);
  if (o.decay_weights_only) trainer.optimizer().set_decay_mask(model->layout().mask({nn::ParamRole::weight}));

  out << format("data     %s from %s: %lld train, %lld validation, %lld test%s%s\n", o.dataset.c_str(),
                tt.folder.c_str(), static_cast<long long>(train.size()), static_cast<long long>(val.size()),
                static_cast<long long>(test.size()), tt.note.empty() ? "" : "; ", tt.note.c_str())
      << "model    " << model->describe() << ", init " << o.init << "\n"
      << "optim    " << oc.describe() << (o.decay_weights_only ? " (weights only)" : "") << "; batch "
      << o.batch_size << ", " << steps_per_epoch << " steps/epoch, " << o.epochs << " epochs"
      << (o.augment ? ", crop+flip augmentation" : "") << "\n"
      << "run      seed " << o.seed << ", " << thread_count() << " thread(s)\n";
  out.flush();

  // ---- epochs ----------------------------------------------------------------------------------
  ProgressBar bar(o.progress && stderr_is_terminal());
  TrainRunResult r;
  data::Batch batch;
  double train_seconds = 0;
  const auto t_train = Clock::now();
  const double total_steps = static_cast<double>(o.epochs) * static_cast<double>(steps_per_epoch);
  for (int epoch = 1; epoch <= o.epochs; ++epoch) {
    const auto t_epoch = Clock::now();
    batches.start_epoch(epoch - 1);
    double loss_sum = 0;
    std::int64_t seen = 0, correct = 0, step_in_epoch = 0;
    const std::string label = format("epoch %d/%d", epoch, o.epochs);
    while (batches.next(batch)) {
      // Augmentation pads the standardized images with 0, i.e. with the channel mean.
      const Tensor x = o.augment
                           ? data::augment_cifar(batch.x, data::derive_seed(data::derive_seed(o.seed, 3),
                                                                            static_cast<std::uint64_t>(trainer.steps())))
                           : batch.x;
      nn::StepResult s;
      try {
        s = trainer.step(x, batch.y_tensor());
      } catch (const Error& e) {
        bar.clear();
        throw Error("epoch " + std::to_string(epoch) + ": " + e.what());
      }
      loss_sum += s.loss * static_cast<double>(batch.size());
      correct += s.correct;
      seen += batch.size();
      ++step_in_epoch;
      const double elapsed = seconds_since(t_epoch);
      // The ETA is of the whole run (every epoch), at the pace so far (evaluation included).
      const double run_fraction =
          (static_cast<double>(epoch - 1) * static_cast<double>(steps_per_epoch) + static_cast<double>(step_in_epoch)) /
          total_steps;
      bar.update(label, step_in_epoch, steps_per_epoch,
                 format("loss %.4f  %.0f img/s  ", loss_sum / static_cast<double>(seen),
                        static_cast<double>(seen) / std::max(elapsed, 1e-9)) +
                     eta_text(seconds_since(t_train), run_fraction));
    }
    const double epoch_train_seconds = seconds_since(t_epoch);
    train_seconds += epoch_train_seconds;
    bar.clear();
    r.final_train_loss = loss_sum / static_cast<double>(seen);
    std::string line = format("epoch %*d/%d  loss %.4f  train %.2f%%", o.epochs >= 10 ? 2 : 1, epoch, o.epochs,
                              r.final_train_loss, 100.0 * static_cast<double>(correct) / static_cast<double>(seen));
    if (val.size() > 0) {
      const nn::Evaluation ev = nn::evaluate(*model, trainer.weights(), trainer.state(), val.images, val.labels,
                                             o.eval_batch);
      r.val_accuracy = ev.accuracy;
      line += format("  val %.2f%%", 100.0 * ev.accuracy);
    }
    const nn::Evaluation et = nn::evaluate(*model, trainer.weights(), trainer.state(), test.images, test.labels,
                                           o.eval_batch);
    r.test_accuracy = et.accuracy;
    line += format("  test %.2f%% (loss %.4f)  lr %.4g  %.1f s (train %.1f s)", 100.0 * et.accuracy, et.loss,
                   oc.lr.at(trainer.steps() - 1), seconds_since(t_epoch), epoch_train_seconds);
    out << line << "\n";
    out.flush();
  }

  r.seconds = seconds_since(t_start);
  r.train_seconds = train_seconds;
  r.peak_rss_mb = peak_rss_mb();
  out << format("final    test accuracy %.2f%%", 100.0 * r.test_accuracy);
  if (r.val_accuracy >= 0) out << format(", validation accuracy %.2f%%", 100.0 * r.val_accuracy);
  out << format("; wall time %.1f s (training %.1f s, %.0f img/s); peak memory %.0f MB\n", r.seconds, train_seconds,
                static_cast<double>(train.size()) * o.epochs / std::max(train_seconds, 1e-9), r.peak_rss_mb);
  return r;
}

}  // namespace gradhpo::tools
