// `gradhpo compare`: several hyperparameter optimizers on one problem at one budget (hpo/compare.h)
// — gradient-based outer loops (forward mode, reverse mode, DrMAD, the implicit methods), online
// methods (T1–T2, generalized greedy, HyperDistill, hypergradient descent) and the black-box
// baselines (random search, grid search, Bayesian optimization) — printed as one table, and with
// --out written as JSON, CSV, a bar chart and index.html.
#include <iostream>
#include <memory>
#include <sstream>

#include <gradhpo/hpo/tasks/compare.h>
#include <gradhpo/hpo/methods/drmad.h>
#include <gradhpo/hpo/methods/implicit.h>
#include <gradhpo/hpo/inner_run.h>
#include <gradhpo/hpo/online/greedy.h>
#include <gradhpo/hpo/online/hyperdistill.h>
#include <gradhpo/hpo/online/hypergradient_descent.h>
#include <gradhpo/hpo/online/t1t2.h>
#include <gradhpo/hpo/methods/reverse.h>
#include <gradhpo/nn/models.h>

#include "commands.h"
#include "compare_entries.h"
#include "compare_run.h"
#include "loop_progress.h"
#include "plot.h"
#include "run_folder.h"
#include "train_run.h"

namespace gradhpo::tools {

const std::vector<std::string>& method_names() {
  static const std::vector<std::string> names = {"forward", "reverse", "drmad", "t1t2", "darts", "greedy", "hyperdistill",
                                                 "hd", "ift", "neumann", "hoag", "random", "grid", "bayes",
                                                 "forward-greedy", "cosine"};
  return names;
}

namespace {

/// An online method as a comparison entry: passes over the horizon from w₀ with θ carried
/// from pass to pass, each pass charged T steps; the row reports the best pass's end.
template <class Make> hpo::CompareMethod online_entry(std::string name, Make make) {
  hpo::CompareMethod m;
  m.name = name;
  m.validate = [make](const hpo::BilevelProblem& p, const hpo::Budget&) { make(p); };  // refuses groups it cannot learn
  m.run = [name, make](const hpo::BilevelProblem& p, const hpo::Budget& budget) {
    const auto start = std::chrono::steady_clock::now();
    std::unique_ptr<hpo::OnlineMethod> method = make(p);
    hpo::BudgetMeter meter(budget);
    hpo::MethodResult r;
    r.method = name;
    Tensor theta = p.hyper.initial(DType::f64);
    const std::int64_t passes = budget.inner_steps > 0 ? budget.inner_steps / p.horizon : 0;
    hpo::report_progress("pass", 0, passes);
    while (meter.can_start(p.horizon)) {
      hpo::BilevelState s = method->init(theta);
      meter.charge(p.horizon);
      ++r.evaluations;
      try {
        method->run(s);
      } catch (const hpo::InnerDivergence& e) {
        ++r.failures;
        r.stop_reason = e.what();
        break;
      }
      const hpo::Candidate sc = hpo::evaluate_candidate(p, s.theta);  // the θ it ends with, trained from w₀
      if (sc.failed) {
        ++r.failures;
        r.stop_reason = "the θ of pass " + std::to_string(r.evaluations) + ", trained from w₀: " + sc.message;
        break;
      }
      if (!(sc.val_loss >= r.best_val_loss)) {
        r.best_val_loss = sc.val_loss;
        r.theta = s.theta.clone();
      }
      theta = s.theta;
      hpo::report_progress("pass", r.evaluations, passes);
    }
    r.inner_steps = meter.steps_used();
    if (r.stop_reason.empty()) r.stop_reason = meter.exhausted_reason(p.horizon);
    hpo::describe_hyperparameters(p.hyper, r);
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    r.cost.seconds = r.seconds;
    r.peak_bytes = 4 * static_cast<std::size_t>(p.num_params()) * sizeof(double);
    return r;
  };
  return m;
}

/// The black-box search box of an experiment.
std::vector<hpo::Dimension> search_box(const std::string& experiment, const hpo::Hyperparameters& h) {
  if (experiment == "l2") return {{"l2", 1e-6, 1.0, true}};
  if (experiment == "cleaning") return {{"weights", 0.01, 0.99, false}};
  if (experiment == "optimizer") return {{"lr", 1e-3, 1.0, true}, {"momentum", 0.01, 0.99, false}};  // σ(θ) never reaches 0
  std::vector<hpo::Dimension> box;  // schedule: every rate, the momentum and the weight decay
  const int lr = h.find("lr");
  for (std::int64_t j = 0; j < h.group(lr).size(); ++j) box.push_back({h.entry_name(h.offset(lr) + j), 0.0, 1.0, false});
  box.push_back({"momentum", 0.0, 0.99, false});
  box.push_back({"weight_decay", 0.0, 4e-3, false});
  return box;
}

hpo::CompareMethod make_method(const std::string& name, const CompareOptions& o, const hpo::Hyperparameters& h) {
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
  hpo::ForwardOptions fo;
  fo.clip_hessian_product = o.clip_hessian;
  if (name == "forward") return hpo::forward_mode_method("forward mode + " + std::string(hpo::outer_name(outer.kind)), outer, fo);
  if (name == "forward-greedy") return forward_greedy_method(outer, fo, o.data.lr_blocks);
  if (name == "cosine") return cosine_schedule_method(o.cosine_lrs);
  if (name == "reverse")
    return hpo::outer_loop_method("reverse mode + " + std::string(hpo::outer_name(outer.kind)),
                                  [](const hpo::BilevelProblem& p, const Tensor& t, const hpo::Segment* s) {
                                    return hpo::reverse_hypergradient(p, t, {}, s);
                                  },
                                  outer);
  if (name == "drmad")
    return hpo::outer_loop_method("DrMAD + " + std::string(hpo::outer_name(outer.kind)),
                                  [](const hpo::BilevelProblem& p, const Tensor& t, const hpo::Segment* s) {
                                    return hpo::drmad_hypergradient(p, t, s);
                                  },
                                  outer);
  if (name == "ift" || name == "neumann") {
    hpo::ImplicitOptions io;
    if (name == "neumann") io.solver = hpo::ImplicitSolver::neumann;
    return hpo::outer_loop_method(std::string(name == "ift" ? "IFT (CG)" : "IFT (Neumann)") + " + " + hpo::outer_name(outer.kind),
                                  [io](const hpo::BilevelProblem& p, const Tensor& t, const hpo::Segment* s) {
                                    return hpo::ift_hypergradient(p, t, io, s);
                                  },
                                  outer);
  }
  if (name == "hoag") {  // Pedregosa's defaults; L2 in log space (the groups' exp transform)
    hpo::HoagOptions ho;
    ho.max_iterations = 1 << 20;  // the budget stops it
    return hpo::hoag_method("HOAG", ho);
  }
  if (name == "t1t2" || name == "darts")
    return online_entry(name == "t1t2" ? "T1-T2 (online)" : "T1-T2, DARTS form (online)", [online, name](const hpo::BilevelProblem& p) {
      hpo::T1T2Options t;
      t.darts_radius = name == "darts" ? 0.01 : 0;
      return std::make_unique<hpo::T1T2>(p, online, t);
    });
  if (name == "greedy")
    return online_entry("generalized greedy (online)", [online](const hpo::BilevelProblem& p) {
      return std::make_unique<hpo::GeneralizedGreedy>(p, online);
    });
  if (name == "hyperdistill")
    return online_entry("HyperDistill (online)", [online](const hpo::BilevelProblem& p) {
      return std::make_unique<hpo::HyperDistill>(p, online);
    });
  if (name == "hd" && schedule) return hypergradient_descent_schedule_method(online, o.search_seed);
  if (name == "hd")
    return online_entry("hypergradient descent (online)", [online](const hpo::BilevelProblem& p) {
      return std::make_unique<hpo::HypergradientDescent>(p, online);
    });
  const std::vector<hpo::Dimension> box = search_box(o.experiment, h);
  if (name == "random") {
    hpo::RandomSearchOptions r;
    r.box = box;
    r.seed = o.search_seed;
    return hpo::random_search_method("random search", r);
  }
  if (name == "grid") {
    hpo::GridSearchOptions g;
    g.box = box;
    return hpo::grid_search_method("grid search", g);
  }
  if (name == "bayes") {
    hpo::BayesianOptions b;
    b.box = box;
    b.seed = o.search_seed;
    return hpo::bayesian_method("Bayesian optimization", b);
  }
  throw Error("unknown method '" + name + "'");
}

}  // namespace

CompareOutcome run_compare(const CompareOptions& o, const std::string& out) {
  set_threads(o.threads);
  Experiment e = make_experiment(o.experiment, o.data);
  const hpo::BilevelProblem& p = e.task.problem;
  std::vector<hpo::CompareMethod> methods;
  for (const std::string& m : o.methods) methods.push_back(make_method(m, o, p.hyper));
  hpo::ComparisonOptions co;
  co.budget.inner_steps = o.budget_runs * p.horizon;
  const auto task = std::make_shared<hpo::ClassificationTask>(e.task);
  co.evaluate = hpo::scorer(task, e.test);
  co.evaluate_validation = hpo::scorer(task, e.val);
  std::cout << "gradhpo compare: " << o.experiment << ", " << p.hyper.size() << " hyperparameters, T = " << p.horizon
            << ", budget " << co.budget.describe() << "\n  " << p.description << "\n";
  hpo::Comparison c;
  {
    LoopProgress progress("compare");
    c = hpo::compare(p, methods, co);
  }
  std::cout << c.table(o.markdown ? hpo::TableFormat::markdown : hpo::TableFormat::text);
  std::vector<Baseline> baselines;
  if (o.experiment == "cleaning") {
    baselines = cleaning_baselines(e);
    std::cout << "references, trained once for the same T steps (Franceschi et al. 2017 report 87.7% and 90.5%):\n";
    for (const Baseline& b : baselines)
      std::cout << "  " << b.name << ": validation accuracy " << 100 * b.val_accuracy << "%, test accuracy "
                << 100 * b.test_accuracy << "% (" << b.seconds << " s)\n";
  }
  if (out.empty()) return {std::move(e), std::move(c)};
  RunFolder folder(out);
  nlohmann::json results = nlohmann::json::parse(c.json());
  for (const Baseline& b : baselines)
    results["baselines"].push_back({{"name", b.name}, {"val_accuracy", b.val_accuracy}, {"test_accuracy", b.test_accuracy},
                                    {"test_loss", b.test_loss}, {"seconds", b.seconds}});
  folder.write("results.json", results.dump(2));
  folder.write("results.csv", c.csv());
  BarPlot bars{"test accuracy at an equal budget (" + co.budget.describe() + ")", "test accuracy (%)", {}, {}};
  for (const hpo::MethodResult& r : c.results) {
    bars.labels.push_back(r.method);
    bars.values.push_back(std::isnan(r.test.accuracy) ? 0.0 : 100 * r.test.accuracy);
  }
  const std::vector<std::string> pics = draw(bars, folder.file("comparison"));
  folder.write_index("gradhpo compare: " + o.experiment,
                     {{"Problem", "<p>" + html_escape(p.description) + "</p>"},
                      {"Methods", "<pre>" + html_escape(c.table()) + "</pre>"}},
                     {"comparison.svg"});
  std::cout << "run folder: " << out << " (plot " << pics[0] << ")\n";
  return {std::move(e), std::move(c)};
}

OptionSet compare_option_set(CompareOptions& o) {
  OptionSet s;
  s.text("experiment", &o.experiment, experiment_names(),
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
  s.texts("methods", &o.methods, method_names(), "Methods");
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
  auto out = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand("compare", "Several hyperparameter optimizers on one problem at an equal budget");
  cmd->footer("Example: gradhpo compare --experiment l2 --data ../shared/data/mnist --methods reverse,t1t2,random,bayes --budget-runs 10");
  OptionSet s = compare_option_set(*o);
  s.add_to(*cmd);
  cmd->add_option("--out", *out, "Folder for results.json, results.csv, the plot and index.html");
  cmd->callback([o, out] { run_compare(*o, *out); });
}

}  // namespace gradhpo::tools
