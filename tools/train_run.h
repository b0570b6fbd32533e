// `gradhpo train` as a function: load a dataset, split off validation, standardize, train a
// model with SGD/Adam for some epochs, report per-epoch and final metrics.
//
// The data side is gradhpo::data (loaders, split, channel statistics, seeded batches, CIFAR
// crop+flip); the model side gradhpo::nn (models, Trainer, evaluate). Everything random derives
// from one seed, so a run is reproducible for a given seed and thread count.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

namespace gradhpo::tools {

struct TrainRunOptions {
  std::string dataset = "fashion-mnist";
  std::string data_folder;            ///< empty: $GRADHPO_DATA, then the Debian package folder
  std::string model = "lenet5";
  std::vector<std::int64_t> hidden = {256, 128};  ///< mlp hidden widths
  std::string activation = "relu";    ///< mlp and lenet5
  int widen = 1;                      ///< wrn16: k
  std::string init = "pytorch";

  int epochs = 5;
  std::int64_t batch_size = 128;
  std::string optimizer = "sgd";      ///< sgd, adam or adamw
  double lr = 0.05;
  std::string schedule = "constant";  ///< constant, step, multistep, cosine
  double lr_step_epochs = 0;          ///< step: period in epochs (default: a third of the run)
  std::vector<double> lr_milestones;  ///< multistep: epochs at which the rate is multiplied by gamma
  double lr_gamma = 0.1;
  double lr_min = 0.0;                ///< cosine: final value
  double momentum = 0.9;
  double weight_decay = 5e-4;
  bool decay_weights_only = false;    ///< no weight decay on biases and batch-norm parameters

  double val_fraction = 0.1;
  std::int64_t train_limit = 0;       ///< > 0: train on the first N training records only
  std::uint64_t seed = 0;
  int threads = 0;                    ///< > 0: OpenMP, Eigen and OpenBLAS threads
  bool augment = false;               ///< CIFAR crop (pad 4) + horizontal flip
  std::int64_t eval_batch = 200;
  bool progress = true;               ///< draw a progress bar when stderr is a terminal
};

struct TrainRunResult {
  double test_accuracy = 0;
  double val_accuracy = -1;   ///< -1 without a validation split
  double final_train_loss = 0;
  double seconds = 0;         ///< wall time of the whole run, loading included
  double train_seconds = 0;   ///< wall time in training steps
  double peak_rss_mb = 0;     ///< getrusage ru_maxrss
};

/// Sets the OpenMP, Eigen and OpenBLAS thread counts (0: the default), at most the cores this
/// process may use (engine/threads.h, capped_threads), with a warning on stderr when capped.
void set_threads(int threads);
/// The process's peak resident set size (getrusage), in MB.
double peak_rss_mb();

/// Runs the training described by `o`, printing a header, one line per epoch and a summary to
/// `out`. Throws gradhpo::Error on bad options (naming the option) and on divergence (naming
/// the epoch and step).
TrainRunResult run_training(const TrainRunOptions& o, std::ostream& out);

}  // namespace gradhpo::tools
