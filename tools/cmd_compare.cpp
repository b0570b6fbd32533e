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
  if (c.setting == Setting::cosine_baseline) return hpo::cosine_schedule_entry(o.cosine_lrs);
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
      common.box = hpo::experiment(o.experiment).search_box(h);
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

/// results.json and results.csv from the rows so far (every hyperparameter of every row); with
/// `finished`, also the bar chart (unless plots are off) and index.html.
void write_compare_files(const hpo::RunStore& store, const hpo::Comparison& c, const nlohmann::json& baselines,
                         const CompareOptions& o, bool plots, bool finished) {
  nlohmann::json results = nlohmann::json::parse(c.json());
  results["finished"] = finished;
  if (!baselines.empty()) results["baselines"] = baselines;
  const RunFolder folder(store.folder());
  folder.write("config.json", nlohmann::json::parse(store.record().config_json).dump(2) + "\n");
  folder.write("results.json", results.dump(2) + "\n");
  folder.write("results.csv", c.csv());
  if (!finished) return;
  std::vector<std::string> pictures;
  if (plots && !c.results.empty()) {
    BarPlot bars{"test accuracy at an equal budget (" + c.budget.describe() + ")", "test accuracy (%)", {}, {}};
    for (const hpo::MethodResult& r : c.results) {
      bars.labels.push_back(r.method);
      bars.values.push_back(std::isnan(r.test.accuracy) ? 0.0 : 100 * r.test.accuracy);
    }
    draw(bars, folder.file("comparison"));
    pictures.push_back("comparison.svg");
  }
  folder.write_index("gradhpo compare: " + o.experiment,
                     {{"Problem", "<p>" + html_escape(c.problem) + "</p>"},
                      {"Methods", "<pre>" + html_escape(c.table()) + "</pre>"}},
                     pictures);
}

}  // namespace

bool compare_resume_may_change(const std::string& key, const nlohmann::json&, const nlohmann::json&) {
  return key == "threads" || key == "markdown";
}

CompareOutcome run_compare(const CompareOptions& o, const CompareFolder& f) {
  set_threads(o.threads);
  hpo::Experiment e = hpo::make_experiment(o.experiment, o.data);
  const hpo::BilevelProblem& p = e.task.problem;
  std::vector<hpo::CompareMethod> methods;
  for (const std::string& m : o.methods) methods.push_back(make_method(m, o, p.hyper));
  hpo::ComparisonOptions co;
  co.budget.inner_steps = o.budget_runs * p.horizon;
  const auto task = std::make_shared<hpo::ClassificationTask>(e.task);
  co.evaluate = hpo::scorer(task, e.test);
  co.evaluate_validation = hpo::scorer(task, e.val);
  // The table below names the problem; the header only the experiment and its size.
  std::cout << "gradhpo compare: " << o.experiment << ", " << p.hyper.size() << " hyperparameters, T = " << p.horizon
            << ", budget " << co.budget.describe() << "\n";
  hpo::Comparison partial;  // the rows so far, for the files regenerated after each commit
  partial.problem = p.description;
  partial.budget = co.budget;
  partial.horizon = p.horizon;
  partial.test_name = co.test_name;
  if (f.store) {
    for (std::size_t i = 0; i < methods.size(); ++i)
      if (f.store->has(hpo::method_section(i))) {
        co.recorded[i] = hpo::decode_method_result(f.store->get(hpo::method_section(i)),
                                                   f.store->file(hpo::kRunStateFile) + ": " + hpo::method_section(i));
        partial.results.push_back(co.recorded[i]);
      }
    std::size_t trials = 0;  // of methods that had not finished: replayed, not trained again
    for (std::size_t i = 0; i < methods.size(); ++i) {
      if (co.recorded.count(i)) continue;
      for (const std::string& name : f.store->sections(hpo::trial_prefix(i)))
        co.recorded_trials[i].push_back(
            hpo::decode_trial(f.store->get(name), f.store->file(hpo::kRunStateFile) + ": " + name));
      trials += co.recorded_trials[i].size();
    }
    if (!co.recorded.empty() || trials > 0)
      std::cout << "resuming " << f.store->folder() << ": " << co.recorded.size() << " of " << methods.size()
                << " methods recorded" << (trials > 0 ? ", " + std::to_string(trials) + " recorded trials replayed" : "")
                << "\n";
    if (!co.recorded.empty()) write_compare_files(*f.store, partial, {}, o, f.plots, false);  // a resumed folder's files
    co.on_trial = [&](std::size_t index, std::size_t position, const hpo::JournalEntry& trial) {
      f.store->commit({{hpo::trial_section(index, position), hpo::encode_trial(trial)}});
    };
    co.on_result = [&](std::size_t index, const hpo::MethodResult& row) {
      f.store->commit({{hpo::method_section(index), hpo::encode_method_result(row)}});
      partial.results.push_back(row);
      write_compare_files(*f.store, partial, {}, o, f.plots, false);
    };
  }
  hpo::Comparison c;
  {
    LoopProgress progress("compare");
    c = hpo::compare(p, methods, co);
  }
  std::cout << c.table(o.markdown ? hpo::TableFormat::markdown : hpo::TableFormat::text);
  std::vector<hpo::Baseline> baselines;
  if (o.experiment == "cleaning") {
    if (f.store && f.store->has("baselines")) {
      for (const nlohmann::json& b : nlohmann::json::parse(f.store->get("baselines")))
        baselines.push_back({b["name"].get<std::string>(), b["val_accuracy"].get<double>(), b["test_accuracy"].get<double>(),
                             b["test_loss"].get<double>(), b["seconds"].get<double>()});
    } else {
      baselines = hpo::cleaning_baselines(e);
      if (f.store) f.store->commit({{"baselines", baselines_json(baselines).dump()}});
    }
    std::cout << "references, trained once for the same T steps (Franceschi et al. 2017 report 87.7% and 90.5%):\n";
    for (const hpo::Baseline& b : baselines)
      std::cout << "  " << b.name << ": validation accuracy " << 100 * b.val_accuracy << "%, test accuracy "
                << 100 * b.test_accuracy << "% (" << b.seconds << " s)\n";
  }
  if (f.store) {
    write_compare_files(*f.store, c, baselines_json(baselines), o, f.plots, true);
    std::cout << "every hyperparameter of every method: " << f.store->file("results.json") << "\n";
  } else if (std::any_of(c.results.begin(), c.results.end(), [](const hpo::MethodResult& r) { return r.hyperparameters.size() > 6; })) {
    std::cout << "(the table shows the first hyperparameters of each method; --out writes every one to results.json)\n";
  }
  return {std::move(e), std::move(c)};
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
  s.integer("budget-runs", &o.budget_runs, 1, 1 << 20, "Budget, in training runs of T steps (the same for every method)");
  s.text("outer", &o.outer, {"", "sign", "sgd", "adam"}, "Outer optimizer of the gradient-based methods (default: per experiment)");
  s.real("outer-step", &o.outer_step, 0, 1e6, "Outer step size (0: the experiment's default)");
  s.text("online-outer", &o.online_outer, {"sgd", "adam"}, "Online methods: the optimizer of their per-step updates of theta");
  s.real("online-step", &o.online_step, 0, 1e6, "Online methods: its step size (0: outer-step if set, else 0.01)");
  s.real("clip-hessian", &o.clip_hessian, 0, 1e30, "Forward mode: clip the Hessian-matrix product to +-c (0: off)");
  s.reals("cosine-lrs", &o.cosine_lrs, 1e-9, 100, "cosine: initial learning rates to try, one training run each");
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
