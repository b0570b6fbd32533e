#include "experiments.h"

#include <algorithm>
#include <random>
#include <sstream>

#include "../inner_run.h"
#include "../../data/load.h"
#include "../../data/normalize.h"
#include "../../data/random.h"
#include "../../data/split.h"

namespace gradhpo::hpo {

namespace {

std::vector<std::int64_t> first_n(std::int64_t n) {
  std::vector<std::int64_t> v(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = i;
  return v;
}

Shape input_shape(const Experiment& e) { return Shape{e.train.channels(), e.train.height(), e.train.width()}; }

/// Logistic regression (nn::Mlp with no hidden layer) in float64, SGD at the given lr and
/// momentum: the model of l2, cleaning and optimizer.
std::shared_ptr<nn::Mlp> logistic_model(const Experiment& e) {
  nn::MlpOptions mo;
  mo.hidden = {};
  return std::make_shared<nn::Mlp>(input_shape(e), e.train.num_classes, mo);
}

void build_logistic(Experiment& e, const ExperimentOptions& o, ClassificationOptions co, std::shared_ptr<nn::Mlp> model,
                    Hyperparameters h, nn::OptimizerConfig opt) {
  co.dtype = DType::f64;
  e.task_options = co;
  e.task = make_classification_task(model, e.train, e.val, std::move(h), opt, o.horizon, co);
}

nn::OptimizerConfig sgd(const ExperimentOptions& o) {
  nn::OptimizerConfig opt;
  opt.lr = nn::Schedule::constant(o.lr);
  opt.momentum = o.momentum;
  return opt;
}

/// Maclaurin et al. 2015, Section 3.2: one L2 coefficient per parameter.
void build_l2(Experiment& e, const ExperimentOptions& o, ClassificationOptions co) {
  auto model = logistic_model(e);
  Hyperparameters h;
  h.add(Hyperparameters::l2_per_entry(model->num_params(), 1e-3));
  build_logistic(e, o, co, model, std::move(h), sgd(o));
}

/// Franceschi et al. 2017, Section 5.1: half the labels replaced by a different one, uniformly,
/// and one weight σ(θ_i) per training example.
void build_cleaning(Experiment& e, const ExperimentOptions& o, ClassificationOptions co) {
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
  auto model = logistic_model(e);
  Hyperparameters h;
  h.add(Hyperparameters::example_weights(e.train.size(), 0.5));
  build_logistic(e, o, co, model, std::move(h), sgd(o));
}

/// Micaelli & Storkey, Algorithm 1: every hyperparameter starts at zero.
void build_schedule(Experiment& e, const ExperimentOptions& o, ClassificationOptions co) {
  Hyperparameters h;
  h.add(Hyperparameters::learning_rate(o.lr_blocks, 0.0));
  h.add(Hyperparameters::momentum(1, 0.0));
  h.add(Hyperparameters::weight_decay(1, 0.0));
  nn::OptimizerConfig opt;
  opt.lr = nn::Schedule::constant(0.0);
  require(o.batch_size >= 1, "experiment schedule: needs mini-batches (--batch-size >= 1)");
  nn::ModelOptions mo;
  mo.mlp.hidden = o.hidden;
  e.task = make_classification_task(nn::make_model(o.model, input_shape(e), e.train.num_classes, mo), e.train, e.val,
                                    std::move(h), opt, o.horizon, co);
}

/// The CS 6787 report: SGD's own lr (log scale) and momentum (in (0, 1)), from the given values.
void build_optimizer(Experiment& e, const ExperimentOptions& o, ClassificationOptions co) {
  auto model = logistic_model(e);
  require(o.lr > 0 && o.momentum > 0 && o.momentum < 1,
          "experiment optimizer: the initial lr must be > 0 and the momentum in (0, 1), got " + std::to_string(o.lr) +
              " and " + std::to_string(o.momentum));
  Hyperparameters h;
  h.add(Hyperparameters::learning_rate(o.lr_blocks, o.lr, Transform::exp));
  h.add(Hyperparameters::momentum(1, o.momentum, Transform::sigmoid));
  nn::OptimizerConfig opt = sgd(o);
  opt.lr = nn::Schedule::constant(0.0);
  opt.momentum = 0;
  build_logistic(e, o, co, model, std::move(h), opt);
}

/// One dimension per entry of group `name` (per-block) or one for the whole group (shared).
void add_group(std::vector<Dimension>& box, const Hyperparameters& h, const std::string& name, double lower,
               double upper, bool log_scale, bool shared) {
  const int g = h.find(name);
  require(g >= 0, "search space: the problem has no group '" + name + "'");
  if (shared || h.group(g).size() == 1) {
    box.push_back({h.group(g).size() == 1 ? h.entry_name(h.offset(g)) : name, lower, upper, log_scale});
    return;
  }
  for (std::int64_t j = 0; j < h.group(g).size(); ++j) box.push_back({h.entry_name(h.offset(g) + j), lower, upper, log_scale});
}

bool shared_or(const SearchSpace& s, bool automatic) {
  s.validate();
  return s.sharing == "auto" ? automatic : s.sharing == "shared";
}

/// The schedule's box: every rate, the momentum and the weight decay.
std::vector<Dimension> schedule_box(const Hyperparameters& h, const SearchSpace& s) {
  const bool shared = shared_or(s, false);
  std::vector<Dimension> box;
  if (s.ranges == "paper") {
    // Micaelli & Storkey, Appendix B: γ = (0.1, 0.15, 4e-4), 10 outer steps from zero reach
    // α ∈ [-1, 1], β ∈ [-1.5, 1.5], μ ∈ [-4e-3, 4e-3]; their method keeps the values it trains
    // with in range, so the space is that reach within the valid ranges (hyperparams.h): a
    // negative rate, momentum or decay, or a momentum of 1 or more, does not train.
    add_group(box, h, "lr", 0.0, 1.0, false, shared);
    add_group(box, h, "momentum", 0.0, 0.99, false, shared);
    add_group(box, h, "weight_decay", 0.0, 4e-3, false, shared);
  } else {
    add_group(box, h, "lr", 1e-4, 1.0, true, shared);
    add_group(box, h, "momentum", 0.0, 0.99, false, shared);
    add_group(box, h, "weight_decay", 1e-6, 1e-2, true, shared);
  }
  return box;
}

std::vector<Dimension> optimizer_box(const Hyperparameters& h, const SearchSpace& s) {
  const bool shared = shared_or(s, false);
  std::vector<Dimension> box;
  if (s.ranges == "paper") {  // CS 6787 report, Section 3: "[0.01, 0.03] for gamma and alpha"
    add_group(box, h, "lr", 0.01, 0.03, false, shared);
    add_group(box, h, "momentum", 0.01, 0.03, false, shared);
  } else {  // σ(θ) never reaches 0 or 1
    add_group(box, h, "lr", 1e-3, 1.0, true, shared);
    add_group(box, h, "momentum", 0.01, 0.99, false, shared);
  }
  return box;
}

std::vector<Dimension> l2_box(const Hyperparameters& h, const SearchSpace& s) {
  std::vector<Dimension> box;
  add_group(box, h, "l2", 1e-6, 1.0, true, shared_or(s, true));  // no paper range: both spaces alike
  return box;
}

std::vector<Dimension> cleaning_box(const Hyperparameters& h, const SearchSpace& s) {
  std::vector<Dimension> box;
  add_group(box, h, "weights", 0.01, 0.99, false, shared_or(s, true));  // no paper range: both spaces alike
  return box;
}

}  // namespace

void SearchSpace::validate() const {
  require(ranges == "practitioner" || ranges == "paper",
          "search space: ranges must be practitioner or paper, got '" + ranges + "'");
  require(sharing == "auto" || sharing == "per-block" || sharing == "shared",
          "search space: sharing must be auto, per-block or shared, got '" + sharing + "'");
}

std::string describe_box(const std::vector<Dimension>& box) {
  std::ostringstream out;
  out.precision(4);
  for (std::size_t d = 0; d < box.size();) {
    // Fold "lr[0]" .. "lr[9]" with equal ranges into "lr[0..9]".
    const Dimension& a = box[d];
    const auto bracket = a.target.find('[');
    std::size_t e = d + 1;
    if (bracket != std::string::npos)
      while (e < box.size() && box[e].target.compare(0, bracket + 1, a.target, 0, bracket + 1) == 0 &&
             box[e].lower == a.lower && box[e].upper == a.upper && box[e].log_scale == a.log_scale)
        ++e;
    std::string name = a.target;
    if (e > d + 1) name = a.target.substr(0, bracket) + "[" + a.target.substr(bracket + 1, a.target.size() - bracket - 2) +
                          ".." + box[e - 1].target.substr(bracket + 1);
    out << (d ? "; " : "") << name << ": " << (a.log_scale ? "log-uniform [" : "uniform [") << a.lower << ", " << a.upper << "]"
        << (e > d + 1 ? " (one per entry)" : "");
    d = e;
  }
  return out.str();
}

namespace {

const char* kScheduleSpace =
    "Micaelli & Storkey 2021, Appendix B: random search runs over the same space as their method, \"7 learning rates, "
    "1 momentum and 1 weight decay\"; 10 outer steps of sizes (0.1, 0.15, 4e-4) from zero define \"search ranges "
    "a in [-1, 1], b in [-1.5, 1.5], and g in [-4e-3, 4e-3]\" (linear, one value per block), here within the valid "
    "ranges: lr in [0, 1], momentum in [0, 0.99], weight decay in [0, 4e-3]";
const char* kOptimizerSpace =
    "CS 6787 report, Section 3: random search draws from \"a given range (we selected [0.01, 0.03] for gamma and "
    "alpha)\"; grid search the same range (the report gives no other)";
const char* kNoPaperSpace = "the paper runs no black-box search here: the practitioner's space";

}  // namespace

const std::vector<ExperimentSpec>& experiments() {
  static const std::vector<ExperimentSpec> table = {
      {"l2", "per-entry L2 on logistic regression (Maclaurin et al. 2015, Section 3.2)", build_l2, l2_box, kNoPaperSpace},
      {"cleaning", "data hyper-cleaning, one weight per training example (Franceschi et al. 2017, Section 5.1)",
       build_cleaning, cleaning_box, kNoPaperSpace},
      {"schedule", "a learning-rate schedule, momentum and weight decay from zero (Micaelli & Storkey, Algorithm 1)",
       build_schedule, schedule_box, kScheduleSpace},
      {"optimizer", "SGD's learning rates and momentum on logistic regression (the CS 6787 report)", build_optimizer,
       optimizer_box, kOptimizerSpace},
  };
  return table;
}

const std::vector<std::string>& experiment_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n;
    for (const ExperimentSpec& s : experiments()) n.push_back(s.name);
    return n;
  }();
  return names;
}

const ExperimentSpec& experiment(const std::string& name) {
  for (const ExperimentSpec& s : experiments())
    if (s.name == name) return s;
  throw Error("unknown experiment '" + name + "' (expected l2, cleaning, schedule or optimizer)");
}

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
  const ExperimentSpec& spec = experiment(name);
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

  ClassificationOptions co;
  co.batch_size = o.batch_size;
  co.batch_seed = data::derive_seed(o.seed, 2);
  co.init_seed = data::derive_seed(o.seed, 3);
  spec.build(e, o, co);
  return e;
}

std::vector<Baseline> cleaning_baselines(const Experiment& e) {
  require(e.name == "cleaning", "cleaning baselines: experiment '" + e.name + "' has no corrupted labels");
  std::vector<std::int64_t> clean;
  for (std::size_t i = 0; i < e.corrupted.size(); ++i)
    if (!e.corrupted[i]) clean.push_back(static_cast<std::int64_t>(i));
  const BilevelProblem& p = e.task.problem;
  std::vector<Baseline> rows;
  for (const auto& [name, train] : {std::pair<std::string, data::Dataset>{"all labels (weight 1 each)", e.train},
                                    std::pair<std::string, data::Dataset>{"oracle (the clean labels only)", e.train.subset(clean)}}) {
    const ClassificationTask t = make_classification_task(e.task.model, train, e.val, {}, p.optimizer, p.horizon, e.task_options);
    const InnerRun r = run_inner(t.problem, Tensor::zeros(Shape{0}, DType::f64));
    const nn::Evaluation ev = t.evaluate(r.final_state.w(), e.val), et = t.evaluate(r.final_state.w(), e.test);
    rows.push_back({name, ev.accuracy, et.accuracy, et.loss, r.seconds});
  }
  return rows;
}

}  // namespace gradhpo::hpo
