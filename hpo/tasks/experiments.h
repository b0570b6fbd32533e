// The papers' real-data problems, as a table of named problem builders (experiments()), built
// once for every program and embedder that runs them.
//
//   l2        per-entry L2 on logistic regression (Maclaurin et al. 2015, Section 3.2: one L2
//             coefficient per weight; here per parameter, biases included: 7,850 on MNIST)
//   cleaning  data hyper-cleaning (Franceschi et al. 2017, Section 5.1): half of the training
//             labels replaced by a wrong one at random, one weight σ(θ_i) per training example,
//             learned on a clean validation set
//   schedule  Micaelli & Storkey (Algorithm 1, Table 1): a learning-rate schedule of lr_blocks
//             values, the momentum and the weight decay of SGD, all starting at zero, for a
//             model (LeNet-5 by default) in float32
//   optimizer the CS 6787 report's problem (Maclaurin et al. 2015's reverse mode, learning SGD's
//             own hyperparameters): lr_blocks learning rates (λ = e^θ) and the momentum
//             (λ = σ(θ)) of SGD on logistic regression, starting at `lr` and `momentum`
// l2, cleaning and optimizer: logistic regression (nn::Mlp with no hidden layer) in float64. All:
// standardized images, a seeded validation split of the training file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <functional>

#include "classification.h"
#include "../search/space.h"
#include "../../data/dataset.h"
#include "../../nn/models.h"

namespace gradhpo::hpo {

/// A dataset's training file split into training and validation sets (seeded, by fraction), and
/// its test file; every image standardized with the training set's channel statistics.
struct SplitSets {
  data::Dataset train, val, test;
};
/// `train_limit` > 0 keeps only that many training examples (the first of the split) — the
/// statistics are then those of the examples kept.
SplitSets load_split_sets(const std::string& dataset, const std::string& folder, double val_fraction,
                          std::uint64_t seed, std::int64_t train_limit = 0);

struct ExperimentOptions {
  std::string dataset = "mnist";
  std::string data_folder;
  std::int64_t train_size = 5000;
  std::int64_t val_size = 5000;
  std::int64_t horizon = 100;
  std::int64_t batch_size = 0;  ///< 0: full batch
  double lr = 0.1;
  double momentum = 0.9;
  std::uint64_t seed = 0;
  std::string model = "lenet5";  ///< schedule only
  std::vector<std::int64_t> hidden = nn::MlpOptions{}.hidden;  ///< schedule with model mlp: hidden widths
  std::int64_t lr_blocks = 10;   ///< schedule and optimizer
};

struct Experiment {
  std::string name;
  ClassificationTask task;
  data::Dataset train, val, test;
  std::vector<bool> corrupted;  ///< cleaning: which training labels were replaced
  ClassificationOptions task_options;  ///< batches, seeds, dtype (baselines train alike)
};

/// A reference row beside the methods: a model trained once with no hyperparameter learned.
struct Baseline {
  std::string name;
  double val_accuracy = 0, test_accuracy = 0, test_loss = 0, seconds = 0;
};
/// cleaning: Franceschi et al.'s two references (Section 5.1), each trained with the
/// experiment's optimizer for the same T steps — "all labels" (every training example, the
/// corrupted ones included, weight 1) and "oracle" (only the examples whose label was kept).
std::vector<Baseline> cleaning_baselines(const Experiment& e);

/// Which space a black-box search explores on an experiment.
struct SearchSpace {
  /// "practitioner": what a practitioner would search (log-uniform learning rate and weight
  /// decay, momentum uniform in [0, 0.99], log-uniform L2); "paper": the paper's own space for
  /// its baselines, as ExperimentSpec::paper_space cites it.
  std::string ranges = "practitioner";
  /// "per-block": one value per entry of a group (each block of a schedule); "shared": one value
  /// for a whole group; "auto": per-block for a schedule's learning rates, shared for groups with
  /// one entry per weight or example (l2, cleaning), where a per-entry box has thousands of
  /// dimensions.
  std::string sharing = "auto";
  /// Throws Error naming the field for a value not listed above.
  void validate() const;
};

/// "lr[0..9]: log-uniform [0.0001, 1] (one per entry); momentum: uniform [0, 0.99]": a box in
/// one line, consecutive entries of one group with equal ranges folded together (a dimension
/// named by its group, "lr", is one value shared by the whole group).
std::string describe_box(const std::vector<Dimension>& box);

/// One named problem: how it turns the loaded, split and standardized sets into a task, and the
/// box a black-box search explores on it.
struct ExperimentSpec {
  std::string name;
  std::string summary;  ///< one line, with the paper
  /// Fills e.task (and e.corrupted, e.task_options) from e.train/val/test; `task` holds the
  /// batch and initialization seeds.
  std::function<void(Experiment& e, const ExperimentOptions& options, ClassificationOptions task)> build;
  /// The search box over the problem's hyperparameters in the chosen space.
  std::function<std::vector<Dimension>(const Hyperparameters& hyper, const SearchSpace& space)> search_box;
  /// Where the "paper" ranges come from: the paper, and the sentence that states them.
  std::string paper_space;
};
/// The table: l2, cleaning, schedule, optimizer.
const std::vector<ExperimentSpec>& experiments();
/// The entry called `name`; throws Error listing the names otherwise.
const ExperimentSpec& experiment(const std::string& name);

/// Loads and splits the dataset and builds experiment `name` (throws Error naming it when unknown).
Experiment make_experiment(const std::string& name, const ExperimentOptions& options);
/// The names make_experiment accepts, in the table's order.
const std::vector<std::string>& experiment_names();

}  // namespace gradhpo::hpo
