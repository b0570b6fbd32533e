// `gradhpo reproduce <experiment>`: one table or figure of a paper, from a JSON file shipped in
// tools/reproduce/ (reproduce_config.h), run as a comparison at an equal budget and printed with
// the paper's numbers beside ours. `gradhpo` with no arguments runs `reproduce quickstart`.
#include <cmath>
#include <cstdlib>
#include <iomanip>
#include <iostream>
#include <memory>
#include <optional>
#include <set>
#include <sstream>

#include <gradhpo/hpo/inner_run.h>

#include "commands.h"
#include "compare_command.h"
#include "plot.h"
#include "ranks.h"
#include "reproduce_config.h"
#include "run_folder.h"

namespace gradhpo::tools {

namespace {

std::string fixed(double x, int digits) {
  if (std::isnan(x)) return "–";
  std::ostringstream s;
  s << std::fixed << std::setprecision(digits) << x;
  return s.str();
}

std::string metric_label(const std::string& m) {
  if (m == "test_accuracy") return "test accuracy (%)";
  if (m == "test_loss") return "test loss";
  if (m == "train_loss") return "training loss";
  if (m == "best_val_loss") return "best validation loss";
  if (m == "seconds_per_run") return "s per run";
  return "peak MB (own)";
}

/// Our value of a paper metric for one method's row.
double ours(const std::string& metric, const hpo::MethodResult& r, const hpo::Experiment& e) {
  if (metric == "test_accuracy") return 100 * r.test.accuracy;
  if (metric == "test_loss") return r.test.loss;
  if (metric == "best_val_loss") return r.best_val_loss;
  if (metric == "seconds_per_run") return r.evaluations > 0 ? r.seconds / r.evaluations : NAN;
  if (metric == "peak_mb") return static_cast<double>(r.peak_bytes) / (1024.0 * 1024.0);
  // train_loss: the training set's mean loss at the end of training under the method's θ.
  if (!r.theta.defined()) return NAN;
  return e.task.evaluate(hpo::run_inner(e.task.problem, r.theta).final_state.w(), e.train).loss;
}

/// Extra assignments from $GRADHPO_SET ("steps=20 budget-runs=2"), applied before --set.
std::vector<std::string> environment_sets() {
  std::vector<std::string> out;
  if (const char* env = std::getenv("GRADHPO_SET")) {
    std::istringstream words(env);
    for (std::string w; words >> w;) out.push_back(w);
  }
  return out;
}

/// The learned learning-rate schedules of every method that found one, as step functions.
LinePlot schedule_plot(const CompareOutcome& r) {
  const hpo::BilevelProblem& p = r.experiment.task.problem;
  LinePlot plot{"learning-rate schedule found by each method (best point)", "inner step", "learning rate", {}, false, true};
  const int lr = p.hyper.find(hpo::HyperKind::learning_rate);
  if (lr < 0) return plot;
  const std::int64_t blocks = p.hyper.group(lr).blocks, T = p.horizon;
  for (const hpo::MethodResult& m : r.comparison.results) {
    if (!m.theta.defined()) continue;
    Series s{m.method + " (test " + fixed(100 * m.test.accuracy, 1) + "%)", {}, {}};
    for (std::int64_t b = 0; b <= blocks; ++b) {  // block b starts at step bT/N; the last point closes the plot
      s.x.push_back(static_cast<double>(b * T / blocks));
      s.y.push_back(p.hyper.value_at(m.theta, p.hyper.offset(lr) + std::min(b, blocks - 1)));
    }
    plot.series.push_back(s);
  }
  return plot;
}

/// Where a reproduction goes: --out (default runs/<experiment>, which a new reproduction
/// replaces), --resume, --overwrite, --no-plots.
struct ReproduceFolder {
  std::string out, resume;
  bool overwrite = false, plots = true;
  std::string distribute;  ///< --distribute (add_distribute_option)
};

void run_reproduce(const ReproduceConfig& c, const std::vector<std::string>& sets, const ReproduceFolder& where) {
  CompareOptions o;
  OptionSet opts = compare_option_set(o);
  opts.load(c.options, c.file + ": options");
  std::set<std::string> given;
  for (const std::string& s : environment_sets()) {
    opts.set(s, "GRADHPO_SET");
    given.insert(s.substr(0, s.find('=')));
  }
  for (const std::string& s : sets) {
    opts.set(s);
    given.insert(s.substr(0, s.find('=')));
  }
  // The run store, checked and made before any work: the default folder runs/<experiment> is
  // this reproduction's own and is replaced; a folder given with --out is refused when it holds
  // a run, unless --overwrite.
  const bool spread = distribute_trials(where.distribute, "reproduce " + c.name);
  std::optional<hpo::RunStore> store;
  if (!ranks().root()) {
    // Rank 0 alone reads and writes the folder; its options (a resumed run's) are broadcast below.
  } else if (!where.resume.empty()) {
    require(where.out.empty() || where.out == where.resume, "--resume " + where.resume +
                                                                " continues the run in that folder; --out " + where.out +
                                                                " names another (give one of them)");
    require(!where.overwrite, "--resume and --overwrite exclude each other (continue the run, or replace it)");
    store = hpo::RunStore::open(where.resume, "reproduce");
    const nlohmann::json stored = nlohmann::json::parse(store->record().config_json);
    require(stored.value("experiment", "") == c.name, "--resume " + where.resume + ": the folder holds a reproduction of '" +
                                                          stored.value("experiment", "") + "', not of '" + c.name + "'");
    opts.resume_from(stored.at("options"), given, compare_resume_may_change, where.resume);
    opts.validate(where.resume + "/" + hpo::kRunStateFile);
  } else {
    opts.validate(c.file);
    const bool own_default = where.out.empty();
    const std::string out = own_default ? "runs/" + c.name : where.out;
    const nlohmann::json config = {{"experiment", c.name}, {"file", c.file}, {"options", opts.to_json()}};
    store = hpo::RunStore::create(out, "reproduce", config.dump(),
                                  own_default || where.overwrite ? hpo::FolderUse::overwrite : hpo::FolderUse::fresh);
  }
  if (ranks().size > 1) {
    opts.load(nlohmann::json::parse(from_root(opts.to_json().dump())), "rank 0's options");
    if (!ranks().root()) opts.validate(c.file);
  }
  std::cout << "gradhpo reproduce " << c.name << ": " << c.title << "\n";
  if (!c.scaled.empty()) std::cout << "  scaled down: " << c.scaled << "\n";
  std::string overridden;  // what this run changed of the config, beside its prose
  for (const std::vector<std::string>& list : {environment_sets(), sets})
    for (const std::string& s : list) overridden += (overridden.empty() ? "" : " ") + s;
  if (!overridden.empty()) std::cout << "  overridden here: " << overridden << "\n";
  if (!c.note.empty()) std::cout << "  note: " << c.note << "\n";
  const std::optional<CompareOutcome> outcome = run_compare(o, {store ? &*store : nullptr, where.plots, spread});
  if (!outcome) return;  // a rank other than 0: it ran rows, rank 0 reports them
  const CompareOutcome& r = *outcome;
  const RunFolder folder(store->folder());

  // The paper's numbers beside ours, method by method: ours as mean ± sd over the seeds (the
  // training loss at the first seed only: it retrains under each θ).
  const std::vector<std::string> header = {"method", "paper's name", "metric", "paper", "ours"};
  std::vector<std::vector<std::string>> rows;
  nlohmann::json record = nlohmann::json::array();
  BarPlot bars{"paper vs ours: " + c.name, "", {}, {}};
  std::string bar_metric;
  struct Ranked {
    std::string method;
    double paper, mean, se;
  };
  std::vector<Ranked> ranked;  // the first metric's rows, for the ordering line
  const auto paper_sd = [](const PaperRow& row, const std::string& metric) -> double {
    for (const auto& [k, v] : row.values)
      if (k == metric + "_sd") return v;
    return NAN;
  };
  for (const PaperRow& row : c.paper) {
    const auto at = std::find(o.methods.begin(), o.methods.end(), row.method);
    const std::size_t index = static_cast<std::size_t>(at - o.methods.begin());
    const hpo::MethodResult* m = at == o.methods.end() ? nullptr : &r.comparison.results[index];
    for (const auto& [metric, paper] : row.values) {
      if (metric.ends_with("_sd")) continue;
      std::vector<double> per_seed;
      if (m) {
        if (metric == "train_loss") per_seed.push_back(ours(metric, *m, r.experiment));
        else
          for (const hpo::Comparison& run : r.seeded.runs) per_seed.push_back(ours(metric, run.results.at(index), r.experiment));
      }
      const hpo::SeedSpread mine = hpo::seed_spread(per_seed);
      const int digits = metric == "test_accuracy" ? 2 : 4;
      const double sd = paper_sd(row, metric);
      std::string ours_text = m ? fixed(mine.mean, digits) : "not run";
      if (m && mine.n >= 2) ours_text += " ± " + fixed(mine.sd, digits);
      rows.push_back({row.method, row.label, metric_label(metric), fixed(paper, digits) + (std::isnan(sd) ? "" : " ± " + fixed(sd, digits)),
                      ours_text});
      record.push_back({{"method", row.method}, {"row", m ? nlohmann::json(m->method) : nlohmann::json()},  // the table's name
                        {"label", row.label}, {"metric", metric}, {"paper", paper},
                        {"paper_sd", std::isnan(sd) ? nlohmann::json() : nlohmann::json(sd)},
                        {"ours", std::isnan(mine.mean) ? nlohmann::json() : nlohmann::json(mine.mean)},
                        {"ours_sd", std::isnan(mine.sd) ? nlohmann::json() : nlohmann::json(mine.sd)},
                        {"ours_per_seed", per_seed}});
      if (bar_metric.empty()) bar_metric = metric;
      if (metric == bar_metric && m) {  // the paper's and ours side by side, in two colours with a legend
        if (bars.series.empty()) bars.series = {{"paper", {}}, {"ours", {}}};
        bars.labels.push_back(row.method);
        bars.series[0].values.push_back(paper);
        bars.series[1].values.push_back(mine.mean);  // NaN: no bar
        ranked.push_back({row.method, paper, mine.mean, mine.se});
      }
    }
  }
  // Whether the paper's ordering of the methods (by its first metric) holds here.
  std::string ordering;
  if (ranked.size() >= 2) {
    const bool higher_better = bar_metric == "test_accuracy";
    const auto order = [&](auto key) {
      std::vector<Ranked> v = ranked;
      std::stable_sort(v.begin(), v.end(), [&](const Ranked& a, const Ranked& b) {
        return higher_better ? key(a) > key(b) : key(a) < key(b);
      });
      std::string text;
      for (const Ranked& x : v) text += (text.empty() ? "" : " > ") + x.method;
      return std::pair{v, text};
    };
    const auto [by_paper, paper_text] = order([](const Ranked& x) { return x.paper; });
    const auto [by_ours, ours_text] = order([](const Ranked& x) { return x.mean; });
    // Pairs the paper orders one way and we the other, and whether our difference is resolved.
    std::string flipped;
    for (std::size_t i = 0; i < by_paper.size(); ++i)
      for (std::size_t j = i + 1; j < by_paper.size(); ++j) {
        const Ranked &a = by_paper[i], &b = by_paper[j];  // the paper: a before b
        const bool same = higher_better ? a.mean >= b.mean : a.mean <= b.mean;
        if (same || a.paper == b.paper) continue;
        const double se = std::sqrt((std::isnan(a.se) ? 0 : a.se * a.se) + (std::isnan(b.se) ? 0 : b.se * b.se));
        const bool resolved = se > 0 && std::abs(a.mean - b.mean) > 2 * se;
        flipped += (flipped.empty() ? "" : "; ") + b.method + " before " + a.method +
                   (se > 0 ? (resolved ? " (beyond 2 se)" : " (within the spread)") : " (one seed: no spread)");
      }
    ordering = "paper's ordering by " + metric_label(bar_metric) + ": " + paper_text + "\nours (mean over " +
               std::to_string(r.seeded.runs.size()) + " seeds): " + ours_text + "\n" +
               (flipped.empty() ? "the paper's ordering holds here\n" : "the paper's ordering does not hold here: " + flipped + "\n");
  }
  std::vector<std::string> pictures = {"comparison.svg"};
  std::string shown = folder.file("comparison.png");
  if (!rows.empty()) {
    std::cout << "\npaper vs ours (" << c.paper_source << "):\n" << text_table(header, rows) << ordering;
    for (const auto& [method, text] : c.protocol) std::cout << "protocol, " << method << ": " << text << "\n";
    folder.write("paper_vs_ours.csv", csv_table(header, rows));
    bars.ylabel = metric_label(bar_metric);
    if (where.plots && !bars.labels.empty()) {
      draw(bars, folder.file("paper_vs_ours"));
      pictures.push_back("paper_vs_ours.svg");
    }
  } else {
    std::cout << "\n(no paper numbers for this experiment)\n";
    // The protocol is the table's terms whether or not the paper printed numbers.
    for (const auto& [method, text] : c.protocol) std::cout << "protocol, " << method << ": " << text << "\n";
  }
  nlohmann::json protocol = nlohmann::json::object();
  for (const auto& [method, text] : c.protocol) protocol[method] = text;
  folder.write_json("reproduce.json", {{"experiment", c.name}, {"title", c.title}, {"paper_source", c.paper_source},
                                       {"rows", record}, {"ordering", ordering}, {"protocol", protocol},
                                       {"seeds", r.seeded.seeds}});
  if (where.plots && (o.experiment == "schedule" || o.experiment == "optimizer")) {
    const LinePlot schedules = schedule_plot(r);
    if (!schedules.series.empty()) {
      shown = draw(schedules, folder.file("schedule"))[1];
      pictures.push_back("schedule.svg");
    }
  }
  std::string about = "<p>" + html_escape(c.title) + "</p>";
  if (!c.scaled.empty()) about += "<p>Scaled down: " + html_escape(c.scaled) + "</p>";
  if (!overridden.empty()) about += "<p>Overridden here: " + html_escape(overridden) + "</p>";
  if (!c.note.empty()) about += "<p>Note: " + html_escape(c.note) + "</p>";
  std::vector<std::pair<std::string, std::string>> sections = {
      {"Experiment", about}, {"Methods at an equal budget", "<pre>" + html_escape(r.comparison.table() + (r.seeded.runs.size() > 1 ? "\nover seeds:\n" + r.seeded.table() : "")) + "</pre>"}};
  if (!rows.empty()) sections.push_back({"Paper vs ours (" + c.paper_source + ")", html_table(header, rows) + "<pre>" + html_escape(ordering) + "</pre>"});
  folder.write_index("gradhpo reproduce " + c.name, sections, pictures);
  if (where.plots) std::cout << "plot: " << shown << "\n";
  std::cout << "run folder: " << folder.path() << " (index.html, results.json, results.csv, reproduce.json)\n";
}

}  // namespace

void add_reproduce_command(CLI::App& app) {
  auto name = std::make_shared<std::string>(), config = std::make_shared<std::string>();
  auto where = std::make_shared<ReproduceFolder>();
  auto sets = std::make_shared<std::vector<std::string>>();
  auto list = std::make_shared<bool>(false), no_plots = std::make_shared<bool>(false);
  CLI::App* cmd = app.add_subcommand("reproduce", "Reproduce a paper's table or figure at a scale this machine can run");
  cmd->footer("Experiments are JSON files in tools/reproduce/ (installed to share/gradhpo/reproduce); --list shows them.\n"
              "$GRADHPO_SET adds space-separated key=value overrides before --set.\n"
              "Without --out a reproduction writes runs/<experiment>, replacing the reproduction there; a folder\n"
              "given with --out that holds a run is refused unless --overwrite or --resume.\n"
              "Example: gradhpo reproduce ms-table1 --set budget-runs=4 --out runs/ms");
  cmd->add_option("experiment", *name, "Experiment name (see --list)");
  cmd->add_flag("--list", *list, "List the experiments, one line each");
  cmd->add_option("--config", *config, "An experiment file of your own instead of a shipped one");
  cmd->add_option("--set", *sets, "key=value override of one of the experiment's options (repeatable)");
  cmd->add_option("--out", where->out, "Run folder (default: runs/<experiment>, replaced by each reproduction)");
  cmd->add_option("--resume", where->resume, "Continue the interrupted reproduction in this folder (finished methods are not run again)");
  cmd->add_flag("--overwrite", where->overwrite, "Replace the run the --out folder holds");
  cmd->add_flag("--no-plots", *no_plots, "Write no plots (the results files and index.html still)");
  add_distribute_option(*cmd, where->distribute);
  cmd->callback([name, where, config, sets, list, no_plots] {
    if (*list) {
      for (const ReproduceConfig& c : list_reproduce_configs()) std::cout << std::left << std::setw(20) << c.name << c.title << "\n";
      return;
    }
    if (name->empty() == config->empty())
      throw Error("reproduce: name one experiment (see --list) or give --config FILE, not both");
    where->plots = !*no_plots;
    run_reproduce(config->empty() ? find_reproduce_config(*name) : read_reproduce_config(*config), *sets, *where);
  });
}

}  // namespace gradhpo::tools
