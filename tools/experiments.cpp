#include "experiments.h"

#include <algorithm>
#include <random>

#include <gradhpo/hpo/inner_run.h>

#include <gradhpo/data/load.h>
#include <gradhpo/data/normalize.h>
#include <gradhpo/data/random.h>
#include <gradhpo/data/split.h>
#include <gradhpo/nn/models.h>

namespace gradhpo::tools {

const std::vector<std::string>& experiment_names() {
  static const std::vector<std::string> names = {"l2", "cleaning", "schedule", "optimizer"};
  return names;
}

namespace {

std::vector<std::int64_t> first_n(std::int64_t n) {
  std::vector<std::int64_t> v(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = i;
  return v;
}

}  // namespace

SplitSets load_split_sets(const std::string& dataset, const std::string& folder, double val_fraction,
                          std::uint64_t seed, std::int64_t train_limit) {
  data::TrainTest tt = data::load_dataset(dataset, folder);
  data::TrainVal tv = data::split_train_val(tt.train, val_fraction, data::derive_seed(seed, 1));
  SplitSets d{std::move(tv.train), std::move(tv.val), std::move(tt.test)};
  if (train_limit > 0 && train_limit < d.train.size()) d.train = d.train.subset(first_n(train_limit));
  const data::ChannelStats stats = data::channel_stats(d.train);
  for (data::Dataset* s : {&d.train, &d.val, &d.test}) data::normalize_inplace(s->images, stats);
  return d;
}

Experiment make_experiment(const std::string& name, const ExperimentOptions& o) {
  require(std::find(experiment_names().begin(), experiment_names().end(), name) != experiment_names().end(),
          "unknown experiment '" + name + "' (expected l2, cleaning, schedule or optimizer)");
  require(o.train_size >= 1 && o.val_size >= 1 && o.horizon >= 1, "experiment: sizes and horizon must be >= 1");
  Experiment e;
  e.name = name;
  data::TrainTest tt = data::load_dataset(o.dataset, o.data_folder);
  require(tt.train.size() >= o.train_size + o.val_size,
          "experiment: " + std::to_string(o.train_size + o.val_size) + " training records needed, '" + tt.train.name +
              "' has " + std::to_string(tt.train.size()));
  // A seeded split of the training file: train_size for training, val_size for validation.
  const data::SplitIndices split = data::split_indices(tt.train.size(), static_cast<double>(o.val_size) /
                                                                            static_cast<double>(tt.train.size()),
                                                       data::derive_seed(o.seed, 1));
  std::vector<std::int64_t> tr(split.train.begin(), split.train.begin() + o.train_size);
  std::vector<std::int64_t> va(split.val.begin(), split.val.begin() + std::min<std::int64_t>(o.val_size, split.val.size()));
  e.train = tt.train.subset(tr);
  e.val = tt.train.subset(va);
  e.test = tt.test;
  e.train.name = o.dataset + ":train";
  e.val.name = o.dataset + ":val";
  const data::ChannelStats stats = data::channel_stats(e.train);
  for (data::Dataset* d : {&e.train, &e.val, &e.test}) data::normalize_inplace(d->images, stats);

  if (name == "cleaning") {  // half the labels replaced by a different one, uniformly
    std::mt19937_64 rng(data::derive_seed(o.seed, 7));
    e.corrupted.assign(static_cast<std::size_t>(e.train.size()), false);
    std::vector<std::int64_t> order = first_n(e.train.size());
    data::shuffle_in_place(order, rng);
    for (std::size_t k = 0; k < order.size() / 2; ++k) {
      const std::size_t i = static_cast<std::size_t>(order[k]);
      const int shift = 1 + static_cast<int>(data::uniform_below(rng, static_cast<std::uint64_t>(e.train.num_classes - 1)));
      e.train.labels[i] = (e.train.labels[i] + shift) % e.train.num_classes;
      e.corrupted[i] = true;
    }
  }

  hpo::ClassificationOptions co;
  co.batch_size = o.batch_size;
  co.batch_seed = data::derive_seed(o.seed, 2);
  co.init_seed = data::derive_seed(o.seed, 3);
  const Shape input{e.train.channels(), e.train.height(), e.train.width()};
  if (name == "schedule") {  // every hyperparameter starts at zero (Algorithm 1)
    hpo::Hyperparameters h;
    h.add(hpo::Hyperparameters::learning_rate(o.lr_blocks, 0.0));
    h.add(hpo::Hyperparameters::momentum(1, 0.0));
    h.add(hpo::Hyperparameters::weight_decay(1, 0.0));
    nn::OptimizerConfig opt;
    opt.lr = nn::Schedule::constant(0.0);
    require(o.batch_size >= 1, "experiment schedule: needs mini-batches (--batch-size >= 1)");
    nn::ModelOptions mo;
    mo.mlp.hidden = o.hidden;
    e.task = hpo::make_classification_task(nn::make_model(o.model, input, e.train.num_classes, mo), e.train, e.val,
                                           std::move(h), opt, o.horizon, co);
    return e;
  }
  nn::MlpOptions mo;
  mo.hidden = {};
  auto model = std::make_shared<nn::Mlp>(input, e.train.num_classes, mo);
  hpo::Hyperparameters h;
  nn::OptimizerConfig opt;
  opt.lr = nn::Schedule::constant(o.lr);
  opt.momentum = o.momentum;
  if (name == "l2") {
    h.add(hpo::Hyperparameters::l2_per_entry(model->num_params(), 1e-3));
  } else if (name == "cleaning") {
    h.add(hpo::Hyperparameters::example_weights(e.train.size(), 0.5));
  } else {  // optimizer: SGD's own lr (log scale) and momentum (in (0, 1)), from the given values
    require(o.lr > 0 && o.momentum > 0 && o.momentum < 1,
            "experiment optimizer: the initial lr must be > 0 and the momentum in (0, 1), got " + std::to_string(o.lr) +
                " and " + std::to_string(o.momentum));
    h.add(hpo::Hyperparameters::learning_rate(o.lr_blocks, o.lr, hpo::Transform::exp));
    h.add(hpo::Hyperparameters::momentum(1, o.momentum, hpo::Transform::sigmoid));
    opt.lr = nn::Schedule::constant(0.0);
    opt.momentum = 0;
  }
  co.dtype = DType::f64;
  e.task_options = co;
  e.task = hpo::make_classification_task(model, e.train, e.val, std::move(h), opt, o.horizon, co);
  return e;
}

std::vector<Baseline> cleaning_baselines(const Experiment& e) {
  require(e.name == "cleaning", "cleaning baselines: experiment '" + e.name + "' has no corrupted labels");
  std::vector<std::int64_t> clean;
  for (std::size_t i = 0; i < e.corrupted.size(); ++i)
    if (!e.corrupted[i]) clean.push_back(static_cast<std::int64_t>(i));
  const hpo::BilevelProblem& p = e.task.problem;
  std::vector<Baseline> rows;
  for (const auto& [name, train] : {std::pair<std::string, data::Dataset>{"all labels (weight 1 each)", e.train},
                                    std::pair<std::string, data::Dataset>{"oracle (the clean labels only)", e.train.subset(clean)}}) {
    const hpo::ClassificationTask t = hpo::make_classification_task(e.task.model, train, e.val, {}, p.optimizer, p.horizon, e.task_options);
    const hpo::InnerRun r = hpo::run_inner(t.problem, Tensor::zeros(Shape{0}, DType::f64));
    const nn::Evaluation ev = t.evaluate(r.final_state.w(), e.val), et = t.evaluate(r.final_state.w(), e.test);
    rows.push_back({name, ev.accuracy, et.accuracy, et.loss, r.seconds});
  }
  return rows;
}

}  // namespace gradhpo::tools
