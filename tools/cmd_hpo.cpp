// `gradhpo hpo`: learn a learning-rate schedule, momentum and weight decay for a model on a
// dataset, as in Micaelli & Storkey (Algorithm 1, Table 1): by default forward-mode
// hypergradients with hyperparameter sharing and the sign-based outer optimizer, non-greedy over
// the whole horizon; any other offline method of the registry by name (reverse, ift, ...); the
// greedy setting with the same budget; or the hand-tuned cosine baseline (Appendix D).
//
// The outer loop, its resume state and early stopping are hpo::solve's (hpo/solve.h); this file
// parses the options, builds the problem, and renders what solve reports: a line per outer step,
// and with --out a run folder kept by the run store (hpo/run_store.h): run.state, the one source
// of truth — the config, the SolveState after every outer step, the final scores — committed
// atomically, which --resume continues to the same bits; and derived from it after every commit
// and at the start of --resume, config.json, results.json/.csv, summary.json, plots, index.html.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <iomanip>
#include <iostream>
#include <memory>
#include <optional>
#include <set>
#include <sstream>

#include <gradhpo/data/load.h>
#include <gradhpo/data/random.h>
#include <gradhpo/hpo/inner_run.h>
#include <gradhpo/hpo/registry.h>
#include <gradhpo/hpo/run_store.h>
#include <gradhpo/hpo/solve.h>
#include <gradhpo/hpo/tasks/classification.h>
#include <gradhpo/hpo/tasks/compare_record.h>
#include <gradhpo/hpo/tasks/experiments.h>
#ifdef GRADHPO_WITH_MPI
#include <gradhpo/hpo/mpi/search.h>
#include <gradhpo/hpo/mpi/data_parallel.h>
#include <gradhpo/hpo/mpi/forward_columns.h>
#endif

#include "commands.h"
#include "experiments.h"
#include "loop_progress.h"
#include "option_set.h"
#include "plot.h"
#include "progress.h"
#include "rank_fault.h"
#include "ranks.h"
#include "run_folder.h"
#include "train_run.h"

namespace gradhpo::tools {

namespace {

struct HpoOptions {
  std::string dataset = "fashion-mnist";
  std::string data_folder;
  std::string model = "lenet5";
  std::string method = "forward";  // an offline method of the registry, greedy or cosine
  std::string policy = "store-all";
  std::string method_options;      // "key=value,key=value", the method's own options by name
  int epochs = 2;
  std::int64_t batch_size = 128;
  double val_fraction = 0.05;
  std::int64_t val_subset = 0;
  std::int64_t train_limit = 0;
  std::int64_t lr_blocks = 10;
  int outer_steps = 10;
  double gamma_lr = 0.1, gamma_momentum = 0.15, gamma_wd = 4e-4;  // Appendix B
  double clip_hessian = 3;                                          // Figure 3's ±3
  std::int64_t greedy_horizon = 0;                                  // 0: T / lr_blocks
  std::vector<double> cosine_lrs = {0.05, 0.1, 0.2, 0.4, 0.6};      // Appendix D
  std::uint64_t seed = 0;
  int threads = 0;
  std::int64_t trials = 10;    ///< a search's budget: exactly this many trials
  double search_seconds = 0;   ///< a search's budget in seconds instead (0: --trials)
  /// One flag per option of the registry's offline methods that the command has no flag of its
  /// own for (--solver, --iterations, --darts-radius, ...), generated from their typed lists;
  /// empty: not given. The chosen method takes those it declares; another is refused.
  std::map<std::string, std::string> method_flags;
};

/// The options of every offline method, by name, with the methods that declare each.
std::map<std::string, std::vector<std::pair<std::string, hpo::OptionSpec>>> offline_option_specs() {
  std::map<std::string, std::vector<std::pair<std::string, hpo::OptionSpec>>> out;
  const hpo::Registry& r = hpo::Registry::global();
  for (const std::string& m : r.names(hpo::MethodKind::offline))
    for (const hpo::OptionSpec& spec : r.offline(m).options) out[spec.name].emplace_back(m, spec);
  return out;
}

/// --method's choices: every offline method of the registry, `forward-greedy` (forward mode in the
/// greedy setting: hyperparameters updated after each segment), `cosine` (the hand-tuned
/// baseline) and the registry's black-box searches (random, grid, bayesian; not HOAG, a search of
/// the registry that refuses the schedule's optimizer-defining hyperparameters). The registry's
/// own `greedy` is the offline generalized-greedy hypergradient.
std::vector<std::string> method_names() {
  std::vector<std::string> names = hpo::Registry::global().names(hpo::MethodKind::offline);
  for (const std::string& search : hpo::Registry::global().names(hpo::MethodKind::search))
    if (search != "hoag") names.push_back(search);
  for (const char* extra : {"forward-greedy", "cosine"})
    if (std::find(names.begin(), names.end(), extra) == names.end()) names.push_back(extra);
  return names;
}

OptionSet option_set(HpoOptions& o) {
  OptionSet s;
  s.text("dataset", &o.dataset, data::dataset_names(), "Dataset");
  s.path("data", &o.data_folder, "Folder with the dataset files (default: $GRADHPO_DATA, then the Debian package)");
  s.text("model", &o.model, nn::model_names(), "Model");
  s.text("method", &o.method, method_names(),
         "An offline hypergradient method of the registry (forward, reverse: mode through training, ...), "
         "forward-greedy (forward mode in the greedy setting), cosine (hand-tuned) or a black-box search over the "
         "schedule's box (random, grid, bayesian: --trials or --search-seconds; under mpirun their trials are spread "
         "over the ranks, --distribute trials)");
  s.text("policy", &o.policy, {"store-all", "exact-reversal", "checkpoint"}, "reverse: memory policy");
  s.path("method-options", &o.method_options,
         "The method's own options by name, key=value separated by commas (e.g. solver=neumann,iterations=0)");
  s.integer("epochs", &o.epochs, 1, 1000, "Epochs of the inner run (horizon T = epochs x batches per epoch)");
  s.integer("batch-size", &o.batch_size, 1, 1 << 20, "Batch size, in examples");
  s.real("val-fraction", &o.val_fraction, 0.001, 0.999, "Fraction of the training set held out for validation");
  s.integer("val-subset", &o.val_subset, 0, 1 << 30, "Validation examples in L_val, a fixed seeded subset (0: all)");
  s.integer("train-limit", &o.train_limit, 0, 1 << 30, "Train on the first N training records only (0: all)");
  s.integer("lr-blocks", &o.lr_blocks, 1, 100000, "Learning rates, each shared over a block of contiguous steps");
  s.integer("outer-steps", &o.outer_steps, 1, 10000, "Outer steps (greedy: passes over the horizon)");
  s.real("gamma-lr", &o.gamma_lr, 1e-12, 100, "Sign optimizer: initial step of the learning rates");
  s.real("gamma-momentum", &o.gamma_momentum, 1e-12, 100, "Sign optimizer: initial step of the momentum");
  s.real("gamma-wd", &o.gamma_wd, 1e-12, 100, "Sign optimizer: initial step of the weight decay");
  s.real("clip-hessian", &o.clip_hessian, 0, 1e30, "Forward mode: clip the Hessian-matrix product to +-c (0: off)");
  s.integer("greedy-horizon", &o.greedy_horizon, 0, 1 << 30, "Greedy: inner steps between updates (0: T / lr-blocks)");
  s.reals("cosine-lrs", &o.cosine_lrs, 0, 100, "Cosine: initial learning rates to try");
  s.seed("seed", &o.seed, "Seed for the split, batch order and initialization (>= 0)");
  s.integer("threads", &o.threads, 0, 256, "Threads (0: the default)");
  s.integer("trials", &o.trials, 1, 1 << 24, "Search methods: a budget of exactly this many trials (training runs)");
  s.real("search-seconds", &o.search_seconds, 0, 1e9,
         "Search methods: a budget in seconds instead of --trials (0: --trials). The count it reached is recorded; "
         "a resume replays that count (under mpirun rank 0's clock decides)");
  // The methods' own options, generated from the registry (policy and clip-hessian have flags
  // above with this command's defaults).
  for (const auto& [name, declared] : offline_option_specs()) {
    if (name == "policy" || name == "clip-hessian") continue;
    std::string help;
    for (const auto& [method, spec] : declared)
      help += (help.empty() ? "" : "; ") + method + ": " + spec.help + " (" + spec.allowed() + ")";
    s.path(name, &o.method_flags[name], help);
  }
  return s;
}

std::string schedule_text(const hpo::Hyperparameters& h, const Tensor& theta) {
  std::ostringstream s;
  s << std::setprecision(3);
  for (std::int64_t i = 0; i < theta.numel(); ++i) s << (i ? " " : "") << h.entry_name(i) << "=" << h.value_at(theta, i);
  return s.str();
}

std::string fixed(double x, int digits) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(digits) << x;
  return s.str();
}

Tensor theta_of(const std::vector<double>& raw) {
  return Tensor::from(raw, Shape{static_cast<std::int64_t>(raw.size())}, DType::f64);
}

/// The data, the model and the horizon every flow of the command shares.
struct Setup {
  SplitSets d;
  std::shared_ptr<const nn::Model> model;
  std::int64_t T = 0;
  hpo::ClassificationOptions co;
};

Setup load_setup(const HpoOptions& o, const std::string& distribute) {
  Setup s{load_split_sets(o.dataset, o.data_folder, o.val_fraction, o.seed, o.train_limit), nullptr, 0, {}};
  const Shape input{s.d.train.channels(), s.d.train.height(), s.d.train.width()};
  s.model = nn::make_model(o.model, input, s.d.train.num_classes);
  require(s.d.train.size() >= o.batch_size, "--batch-size " + std::to_string(o.batch_size) + " exceeds the " +
                                                std::to_string(s.d.train.size()) + " training examples");
  s.T = o.epochs * (s.d.train.size() / o.batch_size);
  s.co.batch_size = o.batch_size;
  s.co.batch_seed = data::derive_seed(o.seed, 2);
  s.co.val_subset = o.val_subset;
  s.co.init_seed = data::derive_seed(o.seed, 3);
  if (distribute == "data") {  // this rank's shard of every batch (hpo/mpi/data_parallel.h)
    s.co.shard_count = ranks().size;
    s.co.shard_rank = ranks().rank;
  }
  std::cout << "gradhpo hpo: " << s.model->describe() << ", " << o.dataset << " " << s.d.train.size() << " train / "
            << s.d.val.size() << " validation / " << s.d.test.size() << " test, T = " << s.T << " steps (" << o.epochs
            << " epochs of batch " << o.batch_size << "), method " << o.method << "\n";
  return s;
}

/// Where a run's files go and how the derived ones are drawn (none of it can change its results).
struct RunArgs {
  std::string out, resume;
  bool overwrite = false;
  bool plots = true;
  /// Under mpirun: "columns" (forward mode's columns over the ranks) or "data" (every batch
  /// sharded over them); "none" runs the same whole run on every rank. Not stored: neither
  /// changes the results beyond rounding (hpo/mpi/), so a resume may change it.
  std::string distribute = "none";
  /// With --distribute data: batch norm with the whole batch's statistics, summed over the ranks
  /// (hpo/mpi/data_parallel.h), instead of each rank's shard's. Not stored either: with it a
  /// model with batch norm trains as in one process, to rounding.
  bool sync_batch_norm = false;
};

/// A failed trial as results.json keeps it (its value null when not finite or unknown).
nlohmann::json failure_json(const hpo::FailedTrial& f) {
  nlohmann::json lam = nlohmann::json::object();
  for (const auto& [name, value] : f.hyperparameters) lam[name] = value;
  return {{"method", f.method}, {"trial", f.trial}, {"inner_step", f.inner_step},
          {"value", std::isfinite(f.value) ? nlohmann::json(f.value) : nlohmann::json(nullptr)},
          {"hyperparameters", lam}, {"reason", f.reason}};
}

/// The exit status of a run that ended without a result (every cosine diverged, or the outer loop
/// gave up on rejections): distinct from 1, an error before or during the work.
constexpr int kNoResult = 2;

/// The hand-tuned cosine baseline (Appendix D): one training run per initial learning rate,
/// each committed to the run store as a trial ("cosine/<k>": its validation accuracy, or the
/// failure when training diverged, which is recorded and the next rate tried), then the best
/// by validation accuracy retrained and scored on the test set ("final").
void run_cosine(const HpoOptions& o, const Setup& e, hpo::RunStore* store, bool plots) {
  auto task_for = [&](double lr0) {
    nn::OptimizerConfig c;
    c.lr = nn::Schedule::cosine(lr0, e.T);
    return make_classification_task(e.model, e.d.train, e.d.val, {}, c, e.T, e.co);
  };
  auto key = [](std::size_t k) { return hpo::numbered_section("cosine/", k); };
  std::vector<nlohmann::json> trials;
  for (std::size_t k = 0; k < o.cosine_lrs.size(); ++k) {
    const double lr0 = o.cosine_lrs[k];
    nlohmann::json trial;
    if (store && store->has(key(k))) {
      trial = nlohmann::json::parse(store->get(key(k)));
    } else {
      const hpo::ClassificationTask task = task_for(lr0);
      trial = {{"lr0", lr0}};
      try {
        const hpo::InnerRun r = hpo::run_inner(task.problem, Tensor::zeros(Shape{0}, DType::f64));
        trial["val_accuracy"] = task.evaluate(r.final_state.w(), e.d.val).accuracy;
        trial["seconds"] = r.seconds;
      } catch (const hpo::InnerDivergence& err) {
        hpo::FailedTrial f;
        f.method = "cosine";
        f.trial = static_cast<std::int64_t>(k);
        f.inner_step = err.step();
        f.value = err.value();
        f.hyperparameters = {{"lr0", lr0}};
        f.reason = err.what();
        trial["failed"] = failure_json(f);
      }
      if (store) store->commit({{key(k), trial.dump()}});
    }
    if (trial.contains("failed"))
      std::cout << "  cosine lr0 = " << lr0 << ": failed at inner step " << trial["failed"]["inner_step"].get<std::int64_t>()
                << ": " << trial["failed"]["reason"].get<std::string>() << "\n";
    else
      std::cout << "  cosine lr0 = " << lr0 << ": validation accuracy " << fixed(100 * trial["val_accuracy"].get<double>(), 2)
                << "% (" << fixed(trial["seconds"].get<double>(), 1) << " s)\n";
    trials.push_back(trial);
  }
  double best_acc = -1, best_lr = 0;
  for (const nlohmann::json& t : trials)
    if (!t.contains("failed") && t["val_accuracy"].get<double>() > best_acc)
      best_acc = t["val_accuracy"].get<double>(), best_lr = t["lr0"].get<double>();
  nlohmann::json final_scores = nlohmann::json::object();
  if (best_acc >= 0) {
    if (store && store->has("final")) {
      final_scores = nlohmann::json::parse(store->get("final"));
    } else {
      const hpo::ClassificationTask task = task_for(best_lr);
      const hpo::InnerRun r = hpo::run_inner(task.problem, Tensor::zeros(Shape{0}, DType::f64));
      const nn::Evaluation et = task.evaluate(r.final_state.w(), e.d.test);
      final_scores = {{"best_lr0", best_lr}, {"test_accuracy", et.accuracy}, {"test_loss", et.loss}};
      if (store) store->commit({{"final", final_scores.dump()}});
    }
    std::cout << "hand-tuned cosine (best lr0 = " << best_lr << " by validation accuracy): test accuracy "
              << fixed(100 * final_scores["test_accuracy"].get<double>(), 2) << "%\n";
  }
  if (store) {
    // Derived from the record: the trials, the failures, the test score of the best.
    const std::vector<std::string> header = {"lr0", "validation accuracy (%)", "seconds", "failure"};
    std::vector<std::vector<std::string>> rows;
    BarPlot bars{"hand-tuned cosine schedules: validation accuracy", "validation accuracy (%)", {}, {}};
    nlohmann::json results = {{"method", "cosine"}, {"trials", nlohmann::json::array()},
                              {"failed_trials", nlohmann::json::array()}};
    for (const nlohmann::json& t : trials) {
      const double lr0 = t["lr0"].get<double>();
      if (t.contains("failed")) {
        rows.push_back({fixed(lr0, 3), "", "", t["failed"]["reason"].get<std::string>()});
        results["failed_trials"].push_back(t["failed"]);
        continue;
      }
      rows.push_back({fixed(lr0, 3), fixed(100 * t["val_accuracy"].get<double>(), 2), fixed(t["seconds"].get<double>(), 1), ""});
      results["trials"].push_back(t);
      bars.labels.push_back("lr0 " + fixed(lr0, 2));
      bars.values.push_back(100 * t["val_accuracy"].get<double>());
    }
    results.update(final_scores);
    store->write_derived("config.json", nlohmann::json::parse(store->record().config_json).dump(2) + "\n");
    store->write_derived("results.csv", csv_table(header, rows));
    store->write_derived("results.json", results.dump(2) + "\n");
    std::vector<std::string> pics;
    if (plots && !bars.values.empty()) pics = draw(bars, store->file("cosine"));
    const RunFolder folder(store->folder());
    folder.write_index("gradhpo hpo: hand-tuned cosine", {{"Runs", html_table(header, rows)}},
                       pics.empty() ? std::vector<std::string>{} : std::vector<std::string>{"cosine.svg"});
    std::cout << "run folder: " << store->folder() << " (index.html, results.json, results.csv)\n";
  }
  if (best_acc < 0) {  // every lr0 diverged: no schedule to report
    std::cerr << "gradhpo hpo: warning: every initial learning rate of the cosine schedule diverged ("
              << trials.size() << " tried; the failures are above" << (store ? " and in results.json" : "") << ")\n";
    throw CLI::RuntimeError(kNoResult);
  }
}

/// The papers' schedule problem (Algorithm 1): lr_blocks learning rates, the momentum and the
/// weight decay of SGD, every hyperparameter starting at zero.
hpo::ClassificationTask schedule_task(const HpoOptions& o, const Setup& e) {
  hpo::Hyperparameters h;
  h.add(hpo::Hyperparameters::learning_rate(o.lr_blocks, 0.0));
  h.add(hpo::Hyperparameters::momentum(1, 0.0));
  h.add(hpo::Hyperparameters::weight_decay(1, 0.0));
  nn::OptimizerConfig opt;
  opt.lr = nn::Schedule::constant(0.0);
  return make_classification_task(e.model, e.d.train, e.d.val, h, opt, e.T, e.co);
}

/// "a=1,b=x,y" → {a: 1, b: "x,y"}: a piece without '=' continues the previous value (a list).
std::map<std::string, std::string> parse_method_options(const std::string& text) {
  std::map<std::string, std::string> out;
  std::string last;
  std::stringstream in(text);
  for (std::string piece; std::getline(in, piece, ',');) {
    const std::size_t eq = piece.find('=');
    if (eq == std::string::npos) {
      require(!last.empty(), "--method-options: '" + piece + "' is not key=value");
      out[last] += "," + piece;
      continue;
    }
    last = piece.substr(0, eq);
    out[last] = piece.substr(eq + 1);
  }
  return out;
}

/// The outer loop's options: the method (greedy: forward mode on segments of H steps), its own
/// options — the command's flags that carry an option's name (--policy, --clip-hessian), then
/// --method-options — and the sign optimizer with Appendix B's steps.
hpo::SolveOptions solve_options(const HpoOptions& o, std::int64_t T) {
  hpo::SolveOptions so;
  so.method = o.method == "forward-greedy" ? "forward" : o.method;
  for (const hpo::OptionSpec& spec : hpo::Registry::global().options(so.method)) {
    if (spec.name == "policy") so.method_options["policy"] = o.policy;
    std::ostringstream clip;
    clip << std::setprecision(17) << o.clip_hessian;  // reads back to the same double
    if (spec.name == "clip-hessian") so.method_options["clip-hessian"] = clip.str();
  }
  const hpo::OptionSpecs& own = hpo::Registry::global().options(so.method);
  for (const auto& [name, value] : o.method_flags) {
    if (value.empty()) continue;
    require(hpo::find_option(own, name), "--" + name + " is not an option of method '" + so.method + "' (" +
                                             std::to_string(own.size()) + " options: `gradhpo methods` lists them)");
    so.method_options[name] = value;
  }
  for (const auto& [k, v] : parse_method_options(o.method_options)) so.method_options[k] = v;
  so.outer.kind = hpo::OuterKind::sign;
  so.outer.step = {o.gamma_lr, o.gamma_momentum, o.gamma_wd};
  so.outer.max_steps = o.outer_steps;
  if (o.method == "forward-greedy") so.greedy_segment_steps = o.greedy_horizon > 0 ? o.greedy_horizon : std::max<std::int64_t>(1, T / o.lr_blocks);
  return so;
}

/// One results.json row (the schema the run folder has always had).
nlohmann::json row_json(const hpo::Hyperparameters& h, const hpo::SolveRow& s) {
  nlohmann::json row = {{"step", s.step}, {"first_inner", s.first_inner}, {"rejected", s.rejected}};
  nlohmann::json lam = nlohmann::json::object();
  const Tensor theta = theta_of(s.theta);
  for (std::int64_t i = 0; i < theta.numel(); ++i) lam[h.entry_name(i)] = h.value_at(theta, i);
  row["hyperparameters"] = lam;
  if (s.rejected) {
    row["message"] = hpo::rejection_message(s.failure);
    row["failure"] = failure_json(s.failure);
    return row;
  }
  if (!s.clipped.empty()) {  // entries the update moved back into their valid range
    nlohmann::json names = nlohmann::json::array();
    for (std::int64_t i : s.clipped) names.push_back(h.entry_name(i));
    row["clipped"] = names;
  }
  row["val_loss"] = s.val_loss;
  row["train_loss"] = s.train_loss;
  row["val_accuracy"] = s.metrics.at("val_accuracy");
  if (s.pass_end) {
    row["pass_end"] = true;
    row["test_accuracy"] = s.metrics.at("test_accuracy");
    row["test_loss"] = s.metrics.at("test_loss");
  }
  row["hypergradient"] = s.hypergradient;
  row["theta"] = s.theta;  // raw θ
  row["seconds"] = s.cost.seconds;
  row["peak_bytes"] = s.cost.peak_bytes;
  return row;
}

/// Per outer step: the printed line, and the row's validation accuracy (and a greedy pass end's
/// test scores) as metrics kept in the state (solve then commits it, SolveOptions::save).
std::function<bool(hpo::SolveRow&, const Tensor&)> step_printer(const hpo::ClassificationTask& task, const Setup& e,
                                                               LoopProgress& progress) {
  return [&task, &e, &progress](hpo::SolveRow& s, const Tensor& w) {
    const hpo::Hyperparameters& h = task.problem.hyper;
    progress.clear();
    std::cout << std::fixed << std::setprecision(4) << "  outer " << std::setw(2) << s.step;
    if (s.first_inner) std::cout << " (inner " << s.first_inner << ")";
    if (s.rejected) {
      std::cout << " rejected: " << hpo::rejection_message(s.failure) << "\n";
    } else {
      const double acc = w.defined() ? task.evaluate(w, e.d.val).accuracy : NAN;
      s.metrics["val_accuracy"] = acc;
      std::cout << "  L_val " << s.val_loss << "  val acc " << fixed(100 * acc, 2) << "%  " << s.cost.brief() << "\n    at "
                << schedule_text(h, theta_of(s.theta)) << "\n";
      // Greedy: the weights carried to the end of a pass are a model trained for all T steps (the
      // model the greedy setting delivers), so each pass end is also scored on the test set.
      if (s.pass_end) {
        const nn::Evaluation et = task.evaluate(w, e.d.test);
        std::cout << "    end of pass " << s.pass << ": test accuracy " << fixed(100 * et.accuracy, 2) << "%\n";
        s.metrics["test_accuracy"] = et.accuracy;
        s.metrics["test_loss"] = et.loss;
      }
    }
    std::cout.flush();
    return true;
  };
}

struct Scores {  // NaN: the θ's training diverged
  nn::Evaluation val{NAN, NAN, 0, 0}, test{NAN, NAN, 0, 0};
};

/// θ trained from w0 and scored on the validation and test sets; a θ whose training diverges is
/// reported as such (NaN scores) and the other reports still come.
Scores score(const hpo::ClassificationTask& task, const Setup& e, LoopProgress& progress, const Tensor& theta,
             const std::string& what) {
  Scores s;
  try {
    const hpo::InnerRun r = hpo::run_inner(task.problem, theta);
    progress.clear();
    s.val = task.evaluate(r.final_state.w(), e.d.val);
    s.test = task.evaluate(r.final_state.w(), e.d.test);
    std::cout << what << ": validation accuracy " << fixed(100 * s.val.accuracy, 2) << "%, test accuracy "
              << fixed(100 * s.test.accuracy, 2) << "% (test loss " << fixed(s.test.loss, 4) << ")\n";
  } catch (const hpo::InnerDivergence& err) {
    progress.clear();
    std::cout << what << ": " << err.what() << "\n";
  }
  return s;
}

/// Early stopping on validation (Micaelli & Storkey, Appendix B, Figure 3), as hpo::solve picked
/// it over every row: non-greedy, the best-validation θ retrained from w0; greedy, the best pass
/// end, scored on the test set when it ended. Returns the test scores of what it picked.
nn::Evaluation report_best(const hpo::Summary& s, const hpo::ClassificationTask& task, const Setup& e,
                           LoopProgress& progress, const std::string& method, const nn::Evaluation& final_test) {
  if (s.best_step < 0) return final_test;
  const hpo::SolveRow& best = s.rows[static_cast<std::size_t>(s.best_step)];
  if (method == "forward-greedy") {
    nn::Evaluation et;
    et.loss = best.metrics.at("test_loss");
    et.accuracy = best.metrics.at("test_accuracy");
    std::cout << "greedy, the best pass end by validation loss (" << fixed(best.val_loss, 4) << ", update " << s.best_step
              << "): test accuracy " << fixed(100 * et.accuracy, 2) << "%\n";
    return et;
  }
  std::cout << "best validation loss " << fixed(best.val_loss, 4) << " at outer step " << s.best_step << ": "
            << schedule_text(task.problem.hyper, s.best_theta) << "\n";
  return score(task, e, progress, s.best_theta, method + ", the best-validation θ (early stopping) trained from w0").test;
}

/// The rows of the run store's SolveState (none before the first outer step).
std::vector<hpo::SolveRow> stored_rows(const hpo::RunStore& store) {
  if (!store.has("solve")) return {};
  return hpo::solve_state_from_bytes(store.get("solve"), store.file(hpo::kRunStateFile) + ": solve").rows;
}

/// The final scores the run store holds (an empty object: the run has not finished).
nlohmann::json stored_final(const hpo::RunStore& store) {
  if (!store.has("final") || store.get("final").empty()) return nlohmann::json::object();
  return nlohmann::json::parse(store.get("final"));
}

/// Every derived file of the run folder, from the run store's record alone: config.json,
/// results.json and .csv (every row, every hyperparameter), summary.json (the final scores once
/// the run finished), the plots (unless plots is false) and index.html. Called after every commit
/// and at the start of --resume, so a kill between two of these writes is repaired.
void write_derived(const hpo::RunStore& store, const HpoOptions& o, const Setup& e, const hpo::Hyperparameters& h,
                   bool plots) {
  const std::vector<hpo::SolveRow> solve_rows = stored_rows(store);
  const nlohmann::json fin = stored_final(store);
  store.write_derived("config.json", nlohmann::json::parse(store.record().config_json).dump(2) + "\n");
  nlohmann::json results = nlohmann::json::array();
  for (const hpo::SolveRow& row : solve_rows) results.push_back(row_json(h, row));
  store.write_derived("results.json", results.dump(2) + "\n");
  std::vector<std::string> header = {"step", "rejected", "val_loss", "val_accuracy", "seconds"};
  for (std::int64_t i = 0; i < h.size(); ++i) header.push_back(h.entry_name(i));
  std::vector<std::vector<std::string>> rows;
  LinePlot schedules{"learned learning-rate schedule per outer step", "inner step", "learning rate", {}, false, true};
  LinePlot curve{"validation loss per outer step", "outer step", "L_val", {}, false, false};
  Series val{"L_val", {}, {}};
  const int lr_group = h.find(hpo::HyperKind::learning_rate);
  for (const hpo::SolveRow& row : solve_rows) {
    const Tensor theta = theta_of(row.theta);
    std::vector<std::string> cells = {std::to_string(row.step), row.rejected ? "yes" : "no",
                                      row.rejected ? "" : fixed(row.val_loss, 5),
                                      row.rejected ? "" : fixed(100 * row.metrics.at("val_accuracy"), 2),
                                      row.rejected ? "" : fixed(row.cost.seconds, 2)};
    for (std::int64_t i = 0; i < h.size(); ++i) cells.push_back(fixed(h.value_at(theta, i), 5));
    rows.push_back(cells);
    if (!row.rejected) {
      val.x.push_back(row.step);
      val.y.push_back(row.val_loss);
    }
    Series sched{"outer " + std::to_string(row.step), {}, {}};
    for (std::int64_t b = 0; b <= o.lr_blocks; ++b) {  // block b starts at step bT/N; the last point closes the plot
      sched.x.push_back(static_cast<double>(b * e.T / o.lr_blocks));
      sched.y.push_back(h.value_at(theta, h.offset(lr_group) + std::min(b, o.lr_blocks - 1)));
    }
    schedules.series.push_back(sched);
  }
  curve.series.push_back(val);
  store.write_derived("results.csv", csv_table(header, rows));
  nlohmann::json summary = {{"method", o.method}, {"finished", !fin.empty()}};
  summary.update(fin);
  store.write_derived("summary.json", summary.dump(2) + "\n");
  std::vector<std::string> pictures;
  if (plots && !schedules.series.empty()) {
    draw(schedules, store.file("schedule"));
    pictures.push_back("schedule.svg");
  }
  if (plots && !val.x.empty()) {
    draw(curve, store.file("val_loss"));
    pictures.push_back("val_loss.svg");
  }
  std::ostringstream about;
  about << "<p>" << html_escape(e.model->describe()) << ", T = " << e.T << ", method " << html_escape(o.method);
  if (fin.empty()) {
    about << ": running, " << solve_rows.size() << " outer steps so far.</p>";
  } else {
    about << ": test accuracy " << fixed(100 * fin["test_accuracy"].get<double>(), 2) << "%, validation accuracy "
          << fixed(100 * fin["val_accuracy"].get<double>(), 2) << "%.</p><p>Learned: "
          << html_escape(fin["learned"].get<std::string>()) << "</p>";
  }
  RunFolder(store.folder()).write_index("gradhpo hpo: " + o.method,
                                        {{"Summary", about.str()}, {"Outer steps", html_table(header, rows)}}, pictures);
}

/// What --resume may change of a stored run: only what cannot alter its results — the threads,
/// and a larger number of outer steps (the run continues to them).
bool resume_may_change(const std::string& key, const nlohmann::json& stored, const nlohmann::json& wanted) {
  if (key == "threads") return true;
  if (key == "outer-steps") return wanted.get<double>() >= stored.get<double>();
  return false;
}

/// --distribute under mpirun: forward mode's columns over the ranks (the problem's column blocks,
/// hpo/mpi/forward_columns.h: the method stays "forward", so the run resumes with or without
/// them), or every batch sharded over them (the problem's derivative sums,
/// hpo/mpi/data_parallel.h; the shards were cut by load_setup; `sync_batch_norm`: the whole
/// batch's batch-norm statistics). "none": nothing.
void distribute(const std::string& how, bool sync_batch_norm, hpo::BilevelProblem& problem, const hpo::SolveOptions& so) {
  require(!sync_batch_norm || how == "data", "--sync-batch-norm synchronizes the batch statistics of data-parallel "
                                             "training: it needs --distribute data (got --distribute " + how + ")");
  if (how == "none") return;
#ifdef GRADHPO_WITH_MPI
  require(under_mpi(), "--distribute " + how + " runs under mpirun: mpirun -np N gradhpo hpo --distribute " + how + " ...");
  const mpi::Communicator comm = mpi::Communicator::world();
  if (how == "columns") {
    require(so.method == "forward", "--distribute columns spreads forward mode's columns over the ranks; method '" +
                                        so.method + "' has none (--distribute data spreads every batch)");
    mpi::shard_forward_columns(problem, comm);
  } else {
    mpi::train_data_parallel(problem, comm, {.sync_batch_norm = sync_batch_norm});
  }
#else
  (void)problem;
  (void)so;
  throw Error("--distribute " + how + ": this build of gradhpo has no MPI (install libopenmpi-dev and rebuild; GRADHPO_MPI)");
#endif
}

bool is_search_method(const std::string& method) {
  const hpo::Registry& r = hpo::Registry::global();
  return r.contains(method) && r.kind(method) == hpo::MethodKind::search;
}

/// A black-box search (random, grid, bayesian) over the schedule problem's box (the schedule
/// experiment's practitioner ranges, one value per learning-rate block), each trial committed to
/// the run store as it finishes ("trial/<k>") so that --resume replays them instead of training
/// them again — with any rank count. Under mpirun the trials are spread over the ranks
/// (mpi::run_search; the only workload of a search, chosen by itself) with the one-process
/// results bit for bit. A budget in seconds records the count it reached ("search-count") and
/// its stop reason, which a resume replays as a budget of exactly that many trials. Then the best trial's θ is
/// trained from w0 and scored on the test set.
void run_search_method(const HpoOptions& o, const Setup& e, hpo::RunStore* store, const RunArgs& a) {
  require(a.distribute == "none" || a.distribute == "trials",
          "--distribute " + a.distribute + ": a search's workload is its trials (--distribute trials, chosen under mpirun)");
  require(a.distribute != "trials" || under_mpi(),
          "--distribute trials runs under mpirun: mpirun -np N gradhpo hpo --method " + o.method + " --distribute trials ...");
  const hpo::ClassificationTask task = schedule_task(o, e);
  hpo::SearchOptions common;
  common.box = hpo::experiment("schedule").search_box(task.problem.hyper, hpo::SearchSpace{});
  const std::string count = from_root(store && store->has("search-count") ? store->get("search-count") : std::string());
  const std::string stopped = from_root(store && store->has("search-stop") ? store->get("search-stop") : std::string());
  if (!count.empty()) {
    common.budget.trials = std::stoll(count);  // the count a budget in seconds reached
  } else if (o.search_seconds > 0) {
    common.budget.seconds = o.search_seconds;
  } else {
    common.budget.trials = o.trials;
  }
  std::map<std::string, std::string> options = parse_method_options(o.method_options);
  const hpo::OptionSpecs& own = hpo::Registry::global().options(o.method);
  if (hpo::find_option(own, "seed") && !options.count("seed")) options["seed"] = std::to_string(o.seed);
  for (const auto& [name, value] : o.method_flags)
    require(value.empty() || hpo::find_option(own, name), "--" + name + " is not an option of method '" + o.method +
                                                              "' (--method-options key=value gives a search its own)");
  auto key = [](std::size_t k) { return hpo::numbered_section("trial/", k); };
  // The recorded trials, read on rank 0 and sent to every rank.
  nlohmann::json recorded = nlohmann::json::array();
  if (store)
    for (std::size_t k = 0; store->has(key(k)); ++k) recorded.push_back(store->get(key(k)));
  recorded = nlohmann::json::parse(from_root(recorded.dump()));
  hpo::TrialJournal journal;
  for (std::size_t k = 0; k < recorded.size(); ++k)
    journal.recorded.push_back(hpo::decode_trial(recorded[k].get<std::string>(), "run store section " + key(k)));
  if (!journal.recorded.empty()) std::cout << "resuming " << a.resume << ": " << journal.recorded.size() << " trials recorded\n";
  const hpo::Hyperparameters& h = task.problem.hyper;
  LoopProgress progress("hpo " + o.method);
  if (ranks().root())
    journal.on_trial = [&, position = journal.recorded.size()](const hpo::JournalEntry& entry) mutable {
      if (store) store->commit({{key(position), hpo::encode_trial(entry)}});
      ++position;
      progress.clear();
      std::cout << "  trial " << std::setw(3) << entry.trial.index << ": ";
      if (entry.trial.failed)
        std::cout << "failed: " << entry.trial.failure.reason << "\n";
      else
        std::cout << "L_val " << fixed(entry.trial.val_loss, 4) << " at " << schedule_text(h, entry.trial.theta) << "\n";
      std::cout.flush();
    };
  hpo::SearchRun run;
  if (under_mpi()) {
#ifdef GRADHPO_WITH_MPI
    run = mpi::run_search(mpi::Communicator::world(), o.method, task.problem, common, options, &journal);
#endif
  } else {
    const hpo::TrialJournalScope scope(&journal);
    run = hpo::Registry::global().run_search(o.method, task.problem, common, options);
  }
  progress.clear();
  if (!stopped.empty()) run.stop_reason = stopped;  // the seconds budget's, which the count replays
  std::cout << run.brief() << "\n";
  if (store && common.budget.seconds > 0)
    store->commit({{"search-count", std::to_string(run.trials.size())}, {"search-stop", run.stop_reason}});
  nlohmann::json fin = nlohmann::json::object();
  if (const hpo::Trial* best = run.best_trial()) {
    const Scores sc = score(task, e, progress, best->theta, o.method + ", the best trial's θ trained from w0");
    fin = {{"best_trial", run.best}, {"learned", schedule_text(h, best->theta)}, {"val_accuracy", sc.val.accuracy},
           {"test_accuracy", sc.test.accuracy}, {"test_loss", sc.test.loss}};
  }
  if (store) {
    // Derived from the run: every trial (θ and its scores as their doubles), the failures, the best.
    nlohmann::json results = {{"method", o.method}, {"label", run.method}, {"dimensions", run.dimensions},
                              {"trials", nlohmann::json::array()}, {"failed_trials", nlohmann::json::array()},
                              {"stop_reason", run.stop_reason}};
    const std::vector<std::string> header = {"trial", "validation loss", "hyperparameters", "failure"};
    std::vector<std::vector<std::string>> rows;
    for (const hpo::Trial& t : run.trials) {
      nlohmann::json lam = nlohmann::json::object();
      for (std::size_t d = 0; d < t.values.size(); ++d) lam[run.dimensions[d]] = t.values[d];
      nlohmann::json row = {{"index", t.index}, {"hyperparameters", lam}, {"theta", t.theta.to_vector()},
                            {"failed", t.failed}};
      if (t.failed) {
        row["failure"] = failure_json(t.failure);
        results["failed_trials"].push_back(row["failure"]);
      } else {
        row["val_loss"] = t.val_loss;
        row["train_loss"] = t.final_train_loss;
      }
      results["trials"].push_back(row);
      rows.push_back({std::to_string(t.index), t.failed ? "" : fixed(t.val_loss, 4), schedule_text(h, t.theta),
                      t.failed ? t.failure.reason : ""});
    }
    results.update(fin);
    store->write_derived("config.json", nlohmann::json::parse(store->record().config_json).dump(2) + "\n");
    store->write_derived("results.csv", csv_table(header, rows));
    store->write_derived("results.json", results.dump(2) + "\n");
    RunFolder(store->folder()).write_index("gradhpo hpo: " + run.method, {{"Trials", html_table(header, rows)}}, {});
    std::cout << "run folder: " << store->folder() << " (index.html, results.json, results.csv)\n";
  }
  if (!run.best_trial()) {
    std::cerr << "gradhpo hpo: warning: no trial of the search finished (" << run.trials.size() << " failed)\n";
    throw CLI::RuntimeError(kNoResult);
  }
}

void run_hpo(HpoOptions& o, OptionSet& opts, const std::set<std::string>& given, const RunArgs& a) {
  const auto t0 = std::chrono::steady_clock::now();
  std::optional<hpo::RunStore> store;
  bool more_steps = false;
  if (!a.resume.empty() && ranks().root()) {
    require(a.out.empty() || a.out == a.resume, "--resume " + a.resume + " continues the run in that folder; --out " +
                                                    a.out + " names another (give one of them)");
    require(!a.overwrite, "--resume and --overwrite exclude each other (continue the run, or replace it)");
    store = hpo::RunStore::open(a.resume, "hpo");
    const nlohmann::json stored = nlohmann::json::parse(store->record().config_json);
    const std::vector<std::string> changed = opts.resume_from(stored, given, resume_may_change, a.resume);
    opts.validate(a.resume + "/" + hpo::kRunStateFile);
    more_steps = std::find(changed.begin(), changed.end(), "outer-steps") != changed.end();
    if (!changed.empty()) {
      nlohmann::json config = stored;
      for (const std::string& k : changed) config[k] = opts.to_json()[k];
      store->commit({}, config.dump());
    }
  } else {
    opts.validate();
    if (!a.out.empty() && ranks().root())
      store = hpo::RunStore::create(a.out, "hpo", opts.to_json().dump(),
                                    a.overwrite ? hpo::FolderUse::overwrite : hpo::FolderUse::fresh);
  }
  // Every rank runs with rank 0's options and resume state (rank 0 alone reads and writes the folder).
  if (ranks().size > 1) {
    opts.load(nlohmann::json::parse(from_root(opts.to_json().dump())), "rank 0's options");
    more_steps = from_root(more_steps ? "1" : "0") == "1";
  }
  set_threads(o.threads);
  require(a.distribute != "trials" || is_search_method(o.method),
          "--distribute trials spreads a search's trials over the ranks (--method random, grid or bayesian); method '" +
              o.method + "' is not a search");
  const Setup e = load_setup(o, a.distribute);
  require(o.method != "cosine" || a.distribute == "none", "--distribute " + a.distribute +
                                                              ": the cosine baseline's runs are not distributed (--distribute none)");
  if (o.method == "cosine") return run_cosine(o, e, store ? &*store : nullptr, a.plots);
  if (is_search_method(o.method)) return run_search_method(o, e, store ? &*store : nullptr, a);

  hpo::ClassificationTask task = schedule_task(o, e);
  const hpo::Hyperparameters& h = task.problem.hyper;
  hpo::SolveOptions so = solve_options(o, e.T);
  distribute(a.distribute, a.sync_batch_norm, task.problem, so);
  std::optional<hpo::SolveState> state;
  const std::string solve_bytes = from_root(store && store->has("solve") ? store->get("solve") : std::string());
  if (!solve_bytes.empty())
    state = hpo::solve_state_from_bytes(solve_bytes, (ranks().root() ? a.resume : "rank 0's ") + "/" + hpo::kRunStateFile);
  if (store) {
    if (!a.resume.empty()) write_derived(*store, o, e, h, a.plots);  // a resumed folder's files, from its record
    so.save = [&store, &o, &e, &h, &a](const hpo::SolveState& st) {
      store->commit({{"solve", hpo::solve_state_bytes(st)}, {"final", ""}});  // a row makes the last scores stale
      write_derived(*store, o, e, h, a.plots);
    };
  }
  if (state) {
    so.resume = &*state;
    std::cout << "resuming " << a.resume << " after " << (o.method == "forward-greedy" ? "update " : "outer step ")
              << state->next_step - 1 << "\n";
  } else if (!a.resume.empty()) {
    std::cout << "resuming " << a.resume << " from its start (killed before its first outer step)\n";
  }
  if (so.greedy_segment_steps > 0)
    std::cout << "greedy setting: hyperparameters updated every " << so.greedy_segment_steps << " inner steps, "
              << o.outer_steps << " passes over the horizon\n";
  LoopProgress progress("hpo " + o.method);
  so.on_step = step_printer(task, e, progress);
  const std::size_t rows_before = state ? state->rows.size() : 0;
  arm_rank_fault(task.problem, so);  // the tests' dead or failing rank (tools/rank_fault.h); unset: nothing
  const hpo::Summary s = hpo::solve(task.problem, so);
  progress.clear();
  if (!s.ok()) std::cerr << "gradhpo hpo: warning: " << s.stop_reason << "\n";
  std::cout << "stopped: " << s.stop_reason << "; " << s.rejections << " rejected steps; " << fixed(s.seconds, 1)
            << " s in the outer loop\nlearned: " << schedule_text(h, s.theta) << "\n";
  nlohmann::json fin = store ? stored_final(*store) : nlohmann::json::object();
  if (!fin.empty() && s.rows.size() == rows_before && !more_steps) {
    // The run had finished: its scores are in the store (the same bits retraining would give).
    std::cout << o.method << ", the final θ trained from w0: validation accuracy "
              << fixed(100 * fin["val_accuracy"].get<double>(), 2) << "%, test accuracy "
              << fixed(100 * fin["test_accuracy"].get<double>(), 2) << "% (from the run store)\n";
  } else {
    const Scores final_scores = score(task, e, progress, s.theta, o.method + ", the final θ trained from w0");
    const nn::Evaluation best_test = report_best(s, task, e, progress, o.method, final_scores.test);
    fin = {{"stop_reason", s.stop_reason}, {"rejections", s.rejections}, {"learned", schedule_text(h, s.theta)},
           {"val_accuracy", final_scores.val.accuracy}, {"test_accuracy", final_scores.test.accuracy},
           {"test_loss", final_scores.test.loss}, {"best_step", s.best_step}, {"best_test_accuracy", best_test.accuracy}};
    if (store) {
      store->commit({{"final", fin.dump()}});
      write_derived(*store, o, e, h, a.plots);
    }
  }
  std::cout << "wall " << fixed(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 1)
            << " s, peak RSS " << fixed(peak_rss_mb(), 1) << " MB\n";
  if (store)
    std::cout << "run folder: " << store->folder() << " (index.html, results.json and results.csv with every "
              << "hyperparameter of every outer step" << (a.plots ? ", schedule.svg/.png" : "") << ")\n";
  if (!s.ok()) throw CLI::RuntimeError(kNoResult);  // the outer loop gave up: no learned result
}

}  // namespace

void add_hpo_command(CLI::App& app) {
  auto o = std::make_shared<HpoOptions>();
  auto args = std::make_shared<RunArgs>();
  auto config = std::make_shared<std::string>();
  auto sets = std::make_shared<std::vector<std::string>>();
  auto no_plots = std::make_shared<bool>(false);
  CLI::App* cmd = app.add_subcommand(
      "hpo", "Learn a learning-rate schedule, momentum and weight decay (Micaelli & Storkey, Algorithm 1)");
  cmd->footer("Example: gradhpo hpo --dataset mnist --data ../shared/data/mnist --method forward --outer-steps 10 --out runs/ms\n"
              "Options come from the defaults, then --config, then the flags on the command line, then --set.\n"
              "A folder that holds a run is refused unless --resume (continue it: only --threads and a larger\n"
              "--outer-steps may differ from its stored config) or --overwrite (replace it).");
  auto opts = std::make_shared<OptionSet>(option_set(*o));
  opts->add_to(*cmd);
  cmd->add_option("--config", *config, "JSON file of options (keys as the long options, without --); flags given on the command line win");
  cmd->add_option("--set", *sets, "key=value overrides applied after --config and the flags (repeatable)");
  cmd->add_option("--out", args->out, "Run folder: run.state (the record a resume continues), config, results JSON/CSV, plots, index.html");
  cmd->add_option("--resume", args->resume, "Continue the interrupted run in this folder (its run.state)");
  cmd->add_flag("--overwrite", args->overwrite, "Replace the run the --out folder holds");
  cmd->add_flag("--no-plots", *no_plots, "Write no plots (the results files and index.html still)");
  cmd->add_option("--distribute", args->distribute,
                  "Under mpirun: columns (forward mode's hypergradient columns spread over the ranks), data (every "
                  "batch sharded over them) or trials (a search's trials spread over them: random, grid, bayesian; "
                  "chosen by itself for a search under mpirun); only rank 0 writes the run folder")
      ->check(CLI::IsMember({"none", "columns", "data", "trials"}));
  cmd->add_flag("--sync-batch-norm", args->sync_batch_norm,
                "With --distribute data: batch norm normalizes with the whole batch's statistics, summed over the "
                "ranks (as PyTorch's SyncBatchNorm), so the run is the one-process run to rounding; without it each "
                "rank's shard's statistics (as DDP without SyncBatchNorm)");
  cmd->callback([o, opts, args, config, sets, no_plots, cmd] {
    const std::set<std::string> given = opts->apply_sources(*cmd, *config, *sets);
    args->plots = !*no_plots;
    run_hpo(*o, *opts, given, *args);
  });
}

}  // namespace gradhpo::tools
