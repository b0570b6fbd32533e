// `gradhpo compare`: several hyperparameter optimizers on one problem at one budget
// (hpo/tasks/compare.h) — gradient-based outer loops (forward mode, reverse mode, DrMAD, the
// implicit methods), online methods (T1–T2, generalized greedy, HyperDistill, hypergradient
// descent) and the black-box baselines (random search, grid search, Bayesian optimization, HOAG)
// — printed as one table, and with --out written as JSON, CSV, a bar chart and index.html.
//
// Every method is constructed from the registry by name (hpo/registry.h); the table below only
// maps the names --methods accepts to a registry name, fixed options and the row's label.
#include <algorithm>
#include <iostream>
#include <memory>
#include <optional>
#include <set>
#include <sstream>

#include <gradhpo/hpo/tasks/compare.h>
#include <gradhpo/hpo/tasks/compare_record.h>
#include <gradhpo/hpo/tasks/schedule_baselines.h>
#include <gradhpo/nn/models.h>

#include "commands.h"
#include "compare_command.h"
#include "loop_progress.h"
#include "plot.h"
#include "ranks.h"
#include "run_folder.h"
#include "train_run.h"

#ifdef GRADHPO_WITH_MPI
#include <gradhpo/hpo/mpi/compare.h>
#endif

namespace gradhpo::tools {

namespace {

/// A name --methods accepts. Offline methods run in the outer loop, non-greedy or (greedy_setting)
/// in the greedy setting; online and search methods as they are; cosine_baseline is the
/// comparison's own hand-tuned baseline (hpo/tasks/schedule_baselines.h).
enum class Setting : std::uint8_t { registry, greedy_setting, cosine_baseline };

struct MethodChoice {
  std::string name;                     ///< as --methods takes it
  std::string registry;                 ///< the registry's name
  hpo::OptionTexts options;             ///< fixed options besides the command's own flags
  std::string label;                    ///< the row's name (offline: " + <outer optimizer>" follows)
  Setting setting = Setting::registry;
};

// clang-format off
const std::vector<MethodChoice>& method_table() {
  static const std::vector<MethodChoice> table = {
      {"forward",        "forward",               {},                         "forward mode"},
      {"reverse",        "reverse",               {},                         "reverse mode"},
      {"drmad",          "drmad",                 {},                         "DrMAD"},
      {"ift",            "ift",                   {{"solver", "cg"}},         "IFT (CG)"},
      {"neumann",        "ift",                   {{"solver", "neumann"}},    "IFT (Neumann)"},
      {"forward-greedy", "forward",               {},                         "forward mode, greedy", Setting::greedy_setting},
      {"online-t1t2",    "online-t1t2",           {},                         "T1-T2 (online)"},
      {"darts",          "online-t1t2",           {{"darts-radius", "0.01"}}, "T1-T2, DARTS form (online)"},
      {"online-greedy",  "online-greedy",         {},                         "generalized greedy (online)"},
      {"hyperdistill",   "hyperdistill",          {},                         "HyperDistill (online)"},
      {"hd",             "hypergradient-descent", {},                         "hypergradient descent (online)"},
      {"hoag",           "hoag",                  {{"max-iterations", "1048576"}}, "HOAG"},  // the budget stops it
      {"random",         "random",                {},                         "random search"},
      {"grid",           "grid",                  {},                         "grid search"},
      {"bayes",          "bayesian",              {},                         "Bayesian optimization"},
      {"cosine",         "",                      {},                         "hand-tuned cosine schedule", Setting::cosine_baseline},
  };
  return table;
}
// clang-format on

const MethodChoice& choice(const std::string& name) {
  for (const MethodChoice& c : method_table())
    if (c.name == name) return c;
  throw Error("unknown method '" + name + "'");
}

/// A number as option text that reads back to the same double.
std::string exact_text(double x) {
  std::ostringstream s;
  s.precision(17);
  s << x;
  return s.str();
}

/// The fixed options, and the command's flags where the registry entry declares them.
hpo::OptionTexts registry_options(const MethodChoice& c, const CompareOptions& o) {
  hpo::OptionTexts options = c.options;
  const hpo::OptionSpecs& specs = hpo::Registry::global().options(c.registry);
  if (hpo::find_option(specs, "clip-hessian")) options.emplace("clip-hessian", exact_text(o.clip_hessian));
  if (hpo::find_option(specs, "seed")) options.emplace("seed", std::to_string(o.search_seed));
  return options;
}

hpo::SearchSpace search_space(const CompareOptions& o) {
  hpo::SearchSpace s;
  s.ranges = o.space;
  s.sharing = o.space_sharing;
  return s;
}

hpo::CompareMethod make_method(const std::string& name, const CompareOptions& o, const hpo::Hyperparameters& h) {
  const MethodChoice& c = choice(name);
  hpo::OuterOptions outer;
  const bool schedule = o.experiment == "schedule";
  outer.kind = hpo::parse_outer(o.outer.empty() ? (schedule ? "sign" : "adam") : o.outer);
  if (o.outer_step > 0) {
    outer.step = {o.outer_step};
  } else if (schedule && outer.kind == hpo::OuterKind::sign) {
    outer.step = {0.1, 0.15, 4e-4};  // Micaelli & Storkey, Appendix B
  } else {
    outer.step = {0.1};
  }
  hpo::OuterOptions online = outer;
  online.kind = hpo::parse_outer(o.online_outer);
  online.step = {o.online_step > 0 ? o.online_step : o.outer_step > 0 ? o.outer_step : 0.01};
  if (c.setting == Setting::cosine_baseline) return hpo::cosine_schedule_entry({o.cosine_lrs, o.cosine_momenta, o.cosine_weight_decays});
  const std::string outer_label = std::string(" + ") + hpo::outer_name(outer.kind);
  const hpo::Registry& registry = hpo::Registry::global();
  switch (registry.kind(c.registry)) {
    case hpo::MethodKind::offline: {
      std::shared_ptr<const hpo::Method> method = registry.make_offline(c.registry, registry_options(c, o));
      if (c.setting == Setting::greedy_setting)
        return hpo::greedy_setting_entry(c.label + " (" + std::to_string(o.data.lr_blocks) + " segments)" + outer_label,
                                         std::move(method), outer, o.data.lr_blocks);
      return hpo::offline_entry(c.label + outer_label, std::move(method), outer);
    }
    case hpo::MethodKind::online:
      // On a learning-rate schedule, hypergradient descent runs as Micaelli & Storkey ran it
      // against their schedules: one global rate, restarted from points of the search range.
      if (schedule && c.registry == "hypergradient-descent") return hpo::hypergradient_descent_schedule_entry(online, o.search_seed);
      return hpo::online_entry(c.label, c.registry, online, registry_options(c, o));
    case hpo::MethodKind::search: {
      hpo::SearchOptions common;
      common.box = hpo::experiment(o.experiment).search_box(h, search_space(o));
      return hpo::search_entry(c.label, c.registry, common, registry_options(c, o));
    }
  }
  throw Error("unknown method '" + name + "'");
}

}  // namespace

const std::vector<std::string>& method_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n;
    for (const MethodChoice& c : method_table()) n.push_back(c.name);
    return n;
  }();
  return names;
}

namespace {

/// The cleaning references as the run store keeps them ("baselines", JSON).
nlohmann::json baselines_json(const std::vector<hpo::Baseline>& baselines) {
  nlohmann::json a = nlohmann::json::array();
  for (const hpo::Baseline& b : baselines)
    a.push_back({{"name", b.name}, {"val_accuracy", b.val_accuracy}, {"test_accuracy", b.test_accuracy},
                 {"test_loss", b.test_loss}, {"seconds", b.seconds}});
  return a;
}

/// config.json, results.json and results.csv, derived from the rows the store holds so far.
void write_compare_files(const hpo::RunStore& store, const nlohmann::json& results, const std::string& csv) {
  const RunFolder folder(store.folder());
  folder.write("config.json", nlohmann::json::parse(store.record().config_json).dump(2) + "\n");
  folder.write("results.json", results.dump(2) + "\n");
  folder.write("results.csv", csv);
}

/// mpi::compare_seeds over every rank of the program (tools/ranks.h started MPI).
hpo::SeededComparison compare_over_ranks(const std::vector<std::uint64_t>& seeds,
                                         const std::function<hpo::ComparisonPlan(std::uint64_t)>& plan) {
#ifdef GRADHPO_WITH_MPI
  return mpi::compare_seeds(mpi::Communicator::world(), seeds, plan);
#else
  (void)seeds;
  (void)plan;
  throw Error("--distribute trials: this build of gradhpo has no MPI (install libopenmpi-dev and rebuild; GRADHPO_MPI)");
#endif
}

/// The seed-th copy of the options: every seed of the data and of the searches moved by `k`.
CompareOptions at_seed(const CompareOptions& o, int k) {
  CompareOptions s = o;
  s.data.seed = o.data.seed + static_cast<std::uint64_t>(k);
  s.search_seed = o.search_seed + static_cast<std::uint64_t>(k);
  return s;
}

/// A comparison on its way: each seed's plan (the experiment, the methods, the store's rows),
/// and on the process that holds the store the rows so far, from which results.json and .csv
/// are regenerated after each commit. Rows arrive in order in one process, in any order when
/// they run over MPI ranks.
class CompareRun {
 public:
  CompareRun(const CompareOptions& o, const CompareFolder& f)
      : o_(o), f_(f), M_(o.methods.size()), headers_(static_cast<std::size_t>(o.seeds)), rows_(headers_.size()),
        announced_(headers_.size(), false) {}

  /// Seed k's plan: its header line and the store's rows are printed the first time.
  hpo::ComparisonPlan plan(std::size_t k) {
    const CompareOptions os = at_seed(o_, static_cast<int>(k));
    const auto e = std::make_shared<hpo::Experiment>(hpo::make_experiment(o_.experiment, os.data));
    const hpo::BilevelProblem& p = e->task.problem;
    hpo::ComparisonPlan plan;
    plan.problem = std::shared_ptr<const hpo::BilevelProblem>(e, &e->task.problem);
    for (const std::string& m : o_.methods) plan.methods.push_back(make_method(m, os, p.hyper));
    hpo::ComparisonOptions& co = plan.options;
    co.budget.inner_steps = o_.budget_runs * p.horizon;
    co.budget.seconds = o_.budget_seconds;
    co.budget.work = o_.budget_work;
    co.equalise = hpo::parse_equalise(o_.equalise);
    co.search_space = hpo::describe_box(hpo::experiment(o_.experiment).search_box(p.hyper, search_space(o_))) + " (" +
                      o_.space + " ranges, sharing " + o_.space_sharing + ")";
    const std::shared_ptr<const hpo::ClassificationTask> task(e, &e->task);
    experiment_ = e;
    co.evaluate = hpo::scorer(task, e->test);
    co.evaluate_validation = hpo::scorer(task, e->val);
    const bool first = !announced_[k];
    announced_[k] = true;
    if (first)  // the table below names the problem; this line only the experiment and its size
      std::cout << "gradhpo compare: " << o_.experiment << ", seed " << os.data.seed << ", " << p.hyper.size()
                << " hyperparameters, T = " << p.horizon << ", budget " << co.budget.describe()
                << (co.equalise == hpo::Equalise::none ? "" : std::string(" for the first method, then equal ") + o_.equalise)
                << "\n";
    if (!f_.store) return plan;
    // Store sections are numbered over every seed's methods: seed k's method i is row k·M + i.
    const std::string state = f_.store->file(hpo::kRunStateFile) + ": ";
    for (std::size_t i = 0; i < M_; ++i)
      if (const std::string name = hpo::method_section(k * M_ + i); f_.store->has(name))
        co.recorded[i] = hpo::decode_method_result(f_.store->get(name), state + name);
    std::size_t trials = 0;  // of methods that had not finished: replayed, not trained again
    for (std::size_t i = 0; i < M_; ++i) {
      if (co.recorded.count(i)) continue;
      for (const std::string& name : f_.store->sections(hpo::trial_prefix(k * M_ + i)))
        co.recorded_trials[i].push_back(hpo::decode_trial(f_.store->get(name), state + name));
      trials += co.recorded_trials[i].size();
    }
    if (first) {
      headers_[k] = hpo::comparison_header(p, co);
      rows_[k] = co.recorded;
      if (!co.recorded.empty() || trials > 0)
        std::cout << "resuming " << f_.store->folder() << ": " << co.recorded.size() << " of " << M_
                  << " methods of seed " << os.data.seed << " recorded"
                  << (trials > 0 ? ", " + std::to_string(trials) + " recorded trials replayed" : "") << "\n";
      if (!co.recorded.empty()) write_partial();
    }
    co.on_trial = [this, k](std::size_t index, std::size_t position, const hpo::JournalEntry& trial) {
      f_.store->commit({{hpo::trial_section(k * M_ + index, position), hpo::encode_trial(trial)}});
    };
    co.on_result = [this, k](std::size_t index, const hpo::MethodResult& row) {
      f_.store->commit({{hpo::method_section(k * M_ + index), hpo::encode_method_result(row)}});
      rows_[k][index] = row;
      write_partial();
    };
    return plan;
  }
  /// The experiment of the plan built last.
  const hpo::Experiment& experiment() const { return *experiment_; }

 private:
  /// results.json of a run in progress: the first seed begun and not finished (else the last
  /// one begun), its rows so far.
  void write_partial() const {
    std::size_t current = 0, finished = 0;
    while (current + 1 < rows_.size() && announced_[current + 1] && rows_[current].size() == M_) ++current;
    for (const auto& rows : rows_) finished += rows.size() == M_;
    hpo::Comparison c = headers_[current];
    for (const auto& [i, row] : rows_[current]) c.results.push_back(row);
    nlohmann::json results = nlohmann::json::parse(c.json());
    results["finished"] = false;
    results["seeds_finished"] = finished;
    write_compare_files(*f_.store, results, c.csv());
  }

  const CompareOptions& o_;
  const CompareFolder& f_;
  std::size_t M_;
  std::vector<hpo::Comparison> headers_;                    // each seed's, without rows
  std::vector<std::map<std::size_t, hpo::MethodResult>> rows_;  // each seed's rows so far, by method
  std::vector<bool> announced_;
  std::shared_ptr<const hpo::Experiment> experiment_;
};

/// Seed k's table and, for the cleaning experiment, its references (trained once, kept in the
/// store); `baselines` gets the first seed's.
void finish_seed(const CompareOptions& o, const CompareFolder& f, std::size_t k, const hpo::Comparison& c,
                 const hpo::Experiment& e, std::vector<hpo::Baseline>& baselines) {
  std::cout << c.table(o.markdown ? hpo::TableFormat::markdown : hpo::TableFormat::text);
  if (o.experiment != "cleaning") return;
  std::vector<hpo::Baseline> b;
  const std::string section = "baselines/" + std::to_string(k);
  if (f.store && f.store->has(section)) {
    for (const nlohmann::json& x : nlohmann::json::parse(f.store->get(section)))
      b.push_back({x["name"].get<std::string>(), x["val_accuracy"].get<double>(), x["test_accuracy"].get<double>(),
                   x["test_loss"].get<double>(), x["seconds"].get<double>()});
  } else {
    b = hpo::cleaning_baselines(e);
    if (f.store) f.store->commit({{section, baselines_json(b).dump()}});
  }
  std::cout << "references, trained once for the same T steps (Franceschi et al. 2017 report 87.7% and 90.5%):\n";
  for (const hpo::Baseline& x : b)
    std::cout << "  " << x.name << ": validation accuracy " << 100 * x.val_accuracy << "%, test accuracy "
              << 100 * x.test_accuracy << "% (" << x.seconds << " s)\n";
  if (k == 0) baselines = b;
}

}  // namespace

bool compare_resume_may_change(const std::string& key, const nlohmann::json&, const nlohmann::json&) {
  return key == "threads" || key == "markdown";
}

std::optional<CompareOutcome> run_compare(const CompareOptions& o, const CompareFolder& f) {
  set_threads(o.threads);
  const hpo::Equalise equalise = hpo::parse_equalise(o.equalise);
  search_space(o).validate();
  require(o.seeds >= 1, "compare: seeds must be >= 1");
  std::vector<std::uint64_t> seeds;
  for (int k = 0; k < o.seeds; ++k) seeds.push_back(o.data.seed + static_cast<std::uint64_t>(k));
  CompareRun run(o, f);
  std::optional<hpo::Experiment> first;
  std::vector<hpo::Baseline> baselines;
  hpo::SeededComparison seeded;
  if (f.distribute_trials) {
    // Every seed's methods over the ranks (hpo/mpi/compare.h); rank 0 alone prints and writes.
    {
      std::optional<LoopProgress> progress;
      if (ranks().root()) progress.emplace("compare");
      seeded = compare_over_ranks(seeds, [&](std::uint64_t seed) { return run.plan(seed - o.data.seed); });
    }
    if (!ranks().root()) return std::nullopt;
    for (std::size_t k = 0; k < seeds.size(); ++k) {
      if (k == 0 || o.experiment == "cleaning") {  // the experiment again, for the references and the outcome
        hpo::Experiment e = hpo::make_experiment(o.experiment, at_seed(o, static_cast<int>(k)).data);
        finish_seed(o, f, k, seeded.runs[k], e, baselines);
        if (k == 0) first.emplace(std::move(e));
      } else {
        finish_seed(o, f, k, seeded.runs[k], *first, baselines);
      }
    }
  } else {
    seeded = hpo::compare_seeds(seeds, [&](std::uint64_t seed) {
      const std::size_t k = static_cast<std::size_t>(seed - o.data.seed);
      hpo::Comparison c;
      {
        const hpo::ComparisonPlan plan = run.plan(k);
        LoopProgress progress("compare");
        c = hpo::compare(plan);
      }
      finish_seed(o, f, k, c, run.experiment(), baselines);
      if (!first) first.emplace(run.experiment());
      return c;
    });
  }
  if (seeded.runs.size() > 1)
    std::cout << "\nover seeds:\n" << seeded.table(o.markdown ? hpo::TableFormat::markdown : hpo::TableFormat::text);
  const hpo::Comparison& c = seeded.runs.front();
  if (!f.store) {
    if (std::any_of(c.results.begin(), c.results.end(), [](const hpo::MethodResult& r) { return r.hyperparameters.size() > 6; }))
      std::cout << "(the table shows the first hyperparameters of each method; --out writes every one to results.json)\n";
    return CompareOutcome{std::move(*first), c, seeded};
  }
  nlohmann::json results = nlohmann::json::parse(c.json());
  results["finished"] = true;
  const nlohmann::json over = nlohmann::json::parse(seeded.json());
  for (const char* key : {"seeds", "summary", "runs"}) results[key] = over[key];
  if (!baselines.empty()) results["baselines"] = baselines_json(baselines);
  write_compare_files(*f.store, results, c.csv());
  const RunFolder folder(f.store->folder());
  std::vector<std::string> pictures;
  if (f.plots) {
    const std::string budget_words = (equalise == hpo::Equalise::none ? "" : "equal " + o.equalise + "; ") + c.budget.describe();
    BarPlot bars{"test accuracy (" + budget_words +
                     (seeds.size() > 1 ? "; mean of " + std::to_string(seeds.size()) + " seeds" : "") + ")",
                 "test accuracy (%)", {}, {}};
    for (std::size_t m = 0; m < c.results.size(); ++m) {
      bars.labels.push_back(c.results[m].method);
      const double mean = seeded.test_accuracy(m).mean;
      bars.values.push_back(std::isnan(mean) ? 0.0 : 100 * mean);
    }
    draw(bars, folder.file("comparison"));
    pictures.push_back("comparison.svg");
  }
  std::string tables = c.table();
  if (seeded.runs.size() > 1) tables += "\nover seeds:\n" + seeded.table();
  folder.write_index("gradhpo compare: " + o.experiment,
                     {{"Problem", "<p>" + html_escape(c.problem) + "</p>"}, {"Methods", "<pre>" + html_escape(tables) + "</pre>"}},
                     pictures);
  std::cout << "every hyperparameter of every method: " << f.store->file("results.json") << "\n";
  return CompareOutcome{std::move(*first), c, seeded};
}

void add_distribute_option(CLI::App& cmd, std::string& distribute) {
  cmd.add_option("--distribute", distribute,
                 "Under mpirun: trials (every seed's methods spread over the ranks, rank 0 handing them out as ranks "
                 "come free; the same results as one process for budgets in runs, or equal work) or none. Default: "
                 "trials under mpirun with several ranks, none otherwise. Only rank 0 prints and writes the run folder; "
                 "a folder resumes with any rank count")
      ->check(CLI::IsMember({"none", "trials"}));
}

bool distribute_trials(const std::string& distribute, const std::string& command) {
  if (distribute.empty()) return ranks().size > 1;
  if (distribute == "trials") {
    require(under_mpi(), "--distribute trials runs under mpirun: mpirun -np N gradhpo " + command + " --distribute trials ...");
    return true;
  }
  require(ranks().size == 1, "--distribute none on " + std::to_string(ranks().size) + " ranks: each would run the whole " +
                                 command + " (give --distribute trials, or run without mpirun)");
  return false;
}

OptionSet compare_option_set(CompareOptions& o) {
  OptionSet s;
  s.text("experiment", &o.experiment, hpo::experiment_names(),
         "Problem: schedule (LeNet-5 learning-rate schedule), l2, cleaning, optimizer (SGD's lr and momentum)");
  s.text("dataset", &o.data.dataset, {}, "Dataset");
  s.path("data", &o.data.data_folder, "Folder with the dataset files (default: $GRADHPO_DATA, then the Debian package)");
  s.integer("train-size", &o.data.train_size, 1, 1 << 24, "Training examples");
  s.integer("val-size", &o.data.val_size, 1, 1 << 24, "Validation examples");
  s.integer("steps", &o.data.horizon, 1, 1 << 24, "Inner steps T");
  s.integer("batch-size", &o.data.batch_size, 0, 1 << 20, "Batch size (0: full batch)");
  s.real("lr", &o.data.lr, 0, 100, "Inner learning rate (l2, cleaning; optimizer: its initial value)");
  s.real("momentum", &o.data.momentum, 0, 1, "Inner momentum (l2, cleaning; optimizer: its initial value)");
  s.text("model", &o.data.model, nn::model_names(), "schedule: the model");
  s.integers("hidden", &o.data.hidden, 1, 1 << 20, "schedule with model mlp: widths of the hidden layers (none: logistic regression)");
  s.integer("lr-blocks", &o.data.lr_blocks, 1, 1 << 20, "schedule: learning rates, each shared over a block of steps");
  s.seed("seed", &o.data.seed, "Seed for the split, corruption, batches and initialization (>= 0)");
  s.texts("methods", &o.methods, method_names(),
          "Methods: forward, reverse, drmad, ift, neumann (IFT by Neumann series) in the non-greedy outer loop; "
          "forward-greedy (forward mode in the greedy setting of the outer loop); online-t1t2, darts (its DARTS form), "
          "online-greedy (generalized greedy), hyperdistill, hd (hypergradient descent; on schedule: restarted from random "
          "points) online; hoag, random, grid, bayes; cosine (schedule: the hand-tuned baseline)");
  s.integer("budget-runs", &o.budget_runs, 1, 1 << 20,
            "Budget in inner steps, as training runs of T steps (with equalise none: every method's)");
  s.real("budget-seconds", &o.budget_seconds, 0, 1e9, "Budget in wall seconds on the same threads (0: none)");
  s.real("budget-work", &o.budget_work, 0, 1e15,
         "Budget in engine work (GEMM/convolution multiply-adds and elementwise operations), in plain-training-step "
         "equivalents (0: none)");
  s.text("equalise", &o.equalise, {"none", "seconds", "work"},
         "none: every method gets the budget; seconds / work: the first method gets it, the others the wall time / "
         "work it used (black-box searches run as many trials as fit)");
  s.integer("seeds", &o.seeds, 1, 1000, "Paired seeds seed, seed+1, ...: every method runs at each; mean, sd and se reported");
  s.text("space", &o.space, {"practitioner", "paper"},
         "Search space of the black-box searches: practitioner (log-uniform lr and weight decay, momentum in [0, 0.99]) "
         "or the paper's ranges");
  s.text("space-sharing", &o.space_sharing, {"auto", "per-block", "shared"},
         "Searches: one value per block of a schedule, one shared value per group, or auto (per-block for schedules)");
  s.text("outer", &o.outer, {"", "sign", "sgd", "adam"}, "Outer optimizer of the gradient-based methods (default: per experiment)");
  s.real("outer-step", &o.outer_step, 0, 1e6, "Outer step size (0: the experiment's default)");
  s.text("online-outer", &o.online_outer, {"sgd", "adam"}, "Online methods: the optimizer of their per-step updates of theta");
  s.real("online-step", &o.online_step, 0, 1e6, "Online methods: its step size (0: outer-step if set, else 0.01)");
  s.real("clip-hessian", &o.clip_hessian, 0, 1e30, "Forward mode: clip the Hessian-matrix product to +-c (0: off)");
  s.reals("cosine-lrs", &o.cosine_lrs, 1e-9, 100, "cosine: initial learning rates to try, one training run each");
  s.reals("cosine-momenta", &o.cosine_momenta, 0, 0.999, "cosine: momenta to try with each rate (Appendix D: 0 on MNIST)");
  s.reals("cosine-weight-decays", &o.cosine_weight_decays, 0, 1, "cosine: weight decays to try with each (Appendix D: 0 on MNIST)");
  s.seed("search-seed", &o.search_seed, "Seed of random search and Bayesian optimization");
  s.integer("threads", &o.threads, 0, 256, "Threads (0: the default)");
  s.flag("markdown", &o.markdown, "Print the table with markdown pipes");
  return s;
}

void add_compare_command(CLI::App& app) {
  auto o = std::make_shared<CompareOptions>();
  auto out = std::make_shared<std::string>(), resume = std::make_shared<std::string>(),
       config = std::make_shared<std::string>();
  auto sets = std::make_shared<std::vector<std::string>>();
  auto overwrite = std::make_shared<bool>(false), no_plots = std::make_shared<bool>(false);
  auto distribute = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand("compare", "Several hyperparameter optimizers on one problem at an equal budget");
  cmd->footer("Example: gradhpo compare --experiment l2 --data ../shared/data/mnist --methods reverse,online-t1t2,random,bayes --budget-runs 10\n"
              "Options come from the defaults, then --config, then the flags on the command line, then --set.\n"
              "A folder that holds a run is refused unless --resume (continue it: only --threads and --markdown\n"
              "may differ from its stored config) or --overwrite (replace it).");
  auto s = std::make_shared<OptionSet>(compare_option_set(*o));
  s->add_to(*cmd);
  cmd->add_option("--config", *config, "JSON file of options (keys as the long options, without --); flags given on the command line win");
  cmd->add_option("--set", *sets, "key=value overrides applied after --config and the flags (repeatable)");
  cmd->add_option("--out", *out, "Run folder: run.state (a row per finished method, which --resume continues), results.json, results.csv, the plot and index.html");
  cmd->add_option("--resume", *resume, "Continue the interrupted comparison in this folder (methods it finished are not run again; with any number of ranks)");
  cmd->add_flag("--overwrite", *overwrite, "Replace the run the --out folder holds");
  cmd->add_flag("--no-plots", *no_plots, "Write no plot (the results files and index.html still)");
  add_distribute_option(*cmd, *distribute);
  cmd->callback([o, s, out, resume, config, sets, overwrite, no_plots, distribute, cmd] {
    const std::set<std::string> given = s->apply_sources(*cmd, *config, *sets);
    const bool spread = distribute_trials(*distribute, "compare");
    std::optional<hpo::RunStore> store;
    if (!ranks().root()) {
      // Rank 0 alone reads and writes the folder; its options (a resumed run's) are broadcast below.
    } else if (!resume->empty()) {
      require(out->empty() || *out == *resume, "--resume " + *resume + " continues the run in that folder; --out " + *out +
                                                   " names another (give one of them)");
      require(!*overwrite, "--resume and --overwrite exclude each other (continue the run, or replace it)");
      store = hpo::RunStore::open(*resume, "compare");
      s->resume_from(nlohmann::json::parse(store->record().config_json), given, compare_resume_may_change, *resume);
      s->validate(*resume + "/" + hpo::kRunStateFile);
    } else {
      s->validate();
      if (!out->empty())
        store = hpo::RunStore::create(*out, "compare", s->to_json().dump(),
                                      *overwrite ? hpo::FolderUse::overwrite : hpo::FolderUse::fresh);
    }
    if (ranks().size > 1) {
      s->load(nlohmann::json::parse(from_root(s->to_json().dump())), "rank 0's options");
      if (!ranks().root()) s->validate();
    }
    run_compare(*o, {store ? &*store : nullptr, !*no_plots, spread});
    if (store) std::cout << "run folder: " << store->folder() << " (index.html, results.json, results.csv)\n";
  });
}

}  // namespace gradhpo::tools
