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
#include "run_folder.h"
#include "train_run.h"

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

/// results.json of a run in progress: the seeds finished, and the current seed's rows so far.
nlohmann::json partial_results(const std::vector<hpo::Comparison>& finished, const hpo::Comparison& current) {
  nlohmann::json results = nlohmann::json::parse(current.json());
  results["finished"] = false;
  results["seeds_finished"] = finished.size();
  return results;
}

/// The seed-th copy of the options: every seed of the data and of the searches moved by `k`.
CompareOptions at_seed(const CompareOptions& o, int k) {
  CompareOptions s = o;
  s.data.seed = o.data.seed + static_cast<std::uint64_t>(k);
  s.search_seed = o.search_seed + static_cast<std::uint64_t>(k);
  return s;
}

}  // namespace

bool compare_resume_may_change(const std::string& key, const nlohmann::json&, const nlohmann::json&) {
  return key == "threads" || key == "markdown";
}

CompareOutcome run_compare(const CompareOptions& o, const CompareFolder& f) {
  set_threads(o.threads);
  const hpo::Equalise equalise = hpo::parse_equalise(o.equalise);
  search_space(o).validate();
  require(o.seeds >= 1, "compare: seeds must be >= 1");
  std::vector<std::uint64_t> seeds;
  for (int k = 0; k < o.seeds; ++k) seeds.push_back(o.data.seed + static_cast<std::uint64_t>(k));
  std::optional<hpo::Experiment> first;
  std::vector<hpo::Baseline> baselines;
  hpo::ComparisonOptions co;
  std::vector<hpo::Comparison> finished;  // the seeds done, for the files regenerated after each commit
  const std::size_t M = o.methods.size();
  // Store sections are numbered over every seed's methods: seed k's method i is row k·M + i.
  const hpo::SeededComparison seeded = hpo::compare_seeds(seeds, [&](std::uint64_t seed) {
    const std::size_t k = static_cast<std::size_t>(seed - o.data.seed);
    const CompareOptions os = at_seed(o, static_cast<int>(k));
    hpo::Experiment e = hpo::make_experiment(o.experiment, os.data);
    const hpo::BilevelProblem& p = e.task.problem;
    std::vector<hpo::CompareMethod> methods;
    for (const std::string& m : o.methods) methods.push_back(make_method(m, os, p.hyper));
    co = hpo::ComparisonOptions{};
    co.budget.inner_steps = o.budget_runs * p.horizon;
    co.budget.seconds = o.budget_seconds;
    co.budget.work = o.budget_work;
    co.equalise = equalise;
    co.search_space = hpo::describe_box(hpo::experiment(o.experiment).search_box(p.hyper, search_space(o))) + " (" +
                      o.space + " ranges, sharing " + o.space_sharing + ")";
    const auto task = std::make_shared<hpo::ClassificationTask>(e.task);
    co.evaluate = hpo::scorer(task, e.test);
    co.evaluate_validation = hpo::scorer(task, e.val);
    // The table below names the problem; the header only the experiment and its size.
    std::cout << "gradhpo compare: " << o.experiment << ", seed " << seed << ", " << p.hyper.size()
              << " hyperparameters, T = " << p.horizon << ", budget " << co.budget.describe()
              << (equalise == hpo::Equalise::none ? "" : std::string(" for the first method, then equal ") + o.equalise)
              << "\n";
    hpo::Comparison partial;  // this seed's rows so far
    partial.problem = p.description;
    partial.budget = co.budget;
    partial.horizon = p.horizon;
    partial.test_name = co.test_name;
    if (f.store) {
      for (std::size_t i = 0; i < M; ++i)
        if (const std::string name = hpo::method_section(k * M + i); f.store->has(name)) {
          co.recorded[i] = hpo::decode_method_result(f.store->get(name), f.store->file(hpo::kRunStateFile) + ": " + name);
          partial.results.push_back(co.recorded[i]);
        }
      std::size_t trials = 0;  // of methods that had not finished: replayed, not trained again
      for (std::size_t i = 0; i < M; ++i) {
        if (co.recorded.count(i)) continue;
        for (const std::string& name : f.store->sections(hpo::trial_prefix(k * M + i)))
          co.recorded_trials[i].push_back(
              hpo::decode_trial(f.store->get(name), f.store->file(hpo::kRunStateFile) + ": " + name));
        trials += co.recorded_trials[i].size();
      }
      if (!co.recorded.empty() || trials > 0)
        std::cout << "resuming " << f.store->folder() << ": " << co.recorded.size() << " of " << M
                  << " methods of seed " << seed << " recorded"
                  << (trials > 0 ? ", " + std::to_string(trials) + " recorded trials replayed" : "") << "\n";
      if (!co.recorded.empty()) write_compare_files(*f.store, partial_results(finished, partial), partial.csv());
      co.on_trial = [&f, k, M](std::size_t index, std::size_t position, const hpo::JournalEntry& trial) {
        f.store->commit({{hpo::trial_section(k * M + index, position), hpo::encode_trial(trial)}});
      };
      co.on_result = [&f, &partial, &finished, k, M](std::size_t index, const hpo::MethodResult& row) {
        f.store->commit({{hpo::method_section(k * M + index), hpo::encode_method_result(row)}});
        partial.results.push_back(row);
        write_compare_files(*f.store, partial_results(finished, partial), partial.csv());
      };
    }
    hpo::Comparison c;
    {
      LoopProgress progress("compare");
      c = hpo::compare(p, methods, co);
    }
    std::cout << c.table(o.markdown ? hpo::TableFormat::markdown : hpo::TableFormat::text);
    if (o.experiment == "cleaning") {
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
      if (!first) baselines = b;
    }
    finished.push_back(c);
    if (!first) first.emplace(std::move(e));
    return c;
  });
  if (seeded.runs.size() > 1)
    std::cout << "\nover seeds:\n" << seeded.table(o.markdown ? hpo::TableFormat::markdown : hpo::TableFormat::text);
  const hpo::Comparison& c = seeded.runs.front();
  if (!f.store) {
    if (std::any_of(c.results.begin(), c.results.end(), [](const hpo::MethodResult& r) { return r.hyperparameters.size() > 6; }))
      std::cout << "(the table shows the first hyperparameters of each method; --out writes every one to results.json)\n";
    return {std::move(*first), c, seeded};
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
    const std::string budget_words = (equalise == hpo::Equalise::none ? "" : "equal " + o.equalise + "; ") + co.budget.describe();
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
  return {std::move(*first), c, seeded};
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
  cmd->add_option("--resume", *resume, "Continue the interrupted comparison in this folder (methods it finished are not run again)");
  cmd->add_flag("--overwrite", *overwrite, "Replace the run the --out folder holds");
  cmd->add_flag("--no-plots", *no_plots, "Write no plot (the results files and index.html still)");
  cmd->callback([o, s, out, resume, config, sets, overwrite, no_plots, cmd] {
    const std::set<std::string> given = s->apply_sources(*cmd, *config, *sets);
    std::optional<hpo::RunStore> store;
    if (!resume->empty()) {
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
    run_compare(*o, {store ? &*store : nullptr, !*no_plots});
    if (store) std::cout << "run folder: " << store->folder() << " (index.html, results.json, results.csv)\n";
  });
}

}  // namespace gradhpo::tools
