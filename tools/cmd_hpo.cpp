// `gradhpo hpo`: learn a learning-rate schedule, momentum and weight decay for a model on a
// dataset, as in Micaelli & Storkey (Algorithm 1, Table 1): forward-mode hypergradients with
// hyperparameter sharing and the sign-based outer optimizer, non-greedy over the whole horizon;
// or reverse mode; or the greedy setting with the same budget; or the hand-tuned cosine baseline
// (Appendix D). With --out, the run leaves a folder (config.json, results.json/.csv, plots,
// index.html, checkpoint.bin after every outer step) that --resume continues to the same bits.
#include <chrono>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>

#include <gradhpo/data/load.h>
#include <gradhpo/data/random.h>
#include <gradhpo/hpo/tasks/classification.h>
#include <gradhpo/hpo/methods/forward.h>
#include <gradhpo/hpo/inner_run.h>
#include <gradhpo/hpo/online/online.h>
#include <gradhpo/hpo/outer.h>
#include <gradhpo/hpo/methods/reverse.h>

#include "commands.h"
#include "experiments.h"
#include "loop_progress.h"
#include "option_set.h"
#include "plot.h"
#include "progress.h"
#include "run_folder.h"
#include "train_run.h"

namespace gradhpo::tools {

namespace {

struct HpoOptions {
  std::string dataset = "fashion-mnist";
  std::string data_folder;
  std::string model = "lenet5";
  std::string method = "forward";  // forward, reverse, greedy, cosine
  std::string policy = "store-all";
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
};

OptionSet option_set(HpoOptions& o) {
  OptionSet s;
  s.text("dataset", &o.dataset, data::dataset_names(), "Dataset");
  s.path("data", &o.data_folder, "Folder with the dataset files (default: $GRADHPO_DATA, then the Debian package)");
  s.text("model", &o.model, nn::model_names(), "Model");
  s.text("method", &o.method, {"forward", "reverse", "greedy", "cosine"},
         "forward, reverse (mode through training), greedy (forward mode on segments) or cosine (hand-tuned)");
  s.text("policy", &o.policy, {"store-all", "exact-reversal", "checkpoint"}, "reverse: memory policy");
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

/// Where a checkpoint written by run_hpo's callback continues.
hpo::OuterResume resume_point(const hpo::BilevelState& checkpoint, const std::string& file) {
  hpo::OuterResume from;
  from.theta = checkpoint.theta;
  from.previous_theta = checkpoint.extra.count("previous_theta") ? checkpoint.extra.at("previous_theta") : Tensor();
  from.state = checkpoint.outer;
  from.next_step = static_cast<int>(checkpoint.step);
  from.start = checkpoint.inner;
  if (checkpoint.extra.count("counters")) {
    const std::vector<double> c = checkpoint.extra.at("counters").to_vector();
    require(c.size() == 3, "--resume: '" + file + "' holds " + std::to_string(c.size()) +
                               " counters, expected 3 (rejections, pass, first inner step)");
    from.rejections = static_cast<int>(c[0]);
    from.pass = static_cast<int>(c[1]);
    from.first_inner = static_cast<std::int64_t>(c[2]);
  }
  return from;
}

struct RunContext {
  const HpoOptions& o;
  std::unique_ptr<RunFolder> folder;  // null: no --out
};

void run_cosine(const HpoOptions& o, const SplitSets& d, std::shared_ptr<const nn::Model> model, std::int64_t T,
                const hpo::ClassificationOptions& co, RunContext& ctx) {
  double best_acc = -1, best_lr = 0;
  std::vector<std::vector<std::string>> rows;
  BarPlot bars{"hand-tuned cosine schedules: validation accuracy", "validation accuracy (%)", {}, {}};
  for (double lr0 : o.cosine_lrs) {
    nn::OptimizerConfig c;
    c.lr = nn::Schedule::cosine(lr0, T);
    const hpo::ClassificationTask task = make_classification_task(model, d.train, d.val, {}, c, T, co);
    const hpo::InnerRun r = hpo::run_inner(task.problem, Tensor::zeros(Shape{0}, DType::f64));
    const double acc = task.evaluate(r.final_state.w(), d.val).accuracy;
    std::cout << "  cosine lr0 = " << lr0 << ": validation accuracy " << fixed(100 * acc, 2) << "% (" << fixed(r.seconds, 1)
              << " s)\n";
    rows.push_back({fixed(lr0, 3), fixed(100 * acc, 2), fixed(r.seconds, 1)});
    bars.labels.push_back("lr0 " + fixed(lr0, 2));
    bars.values.push_back(100 * acc);
    if (acc > best_acc) best_acc = acc, best_lr = lr0;
  }
  nn::OptimizerConfig c;
  c.lr = nn::Schedule::cosine(best_lr, T);
  const hpo::ClassificationTask task = make_classification_task(model, d.train, d.val, {}, c, T, co);
  const hpo::InnerRun r = hpo::run_inner(task.problem, Tensor::zeros(Shape{0}, DType::f64));
  const nn::Evaluation et = task.evaluate(r.final_state.w(), d.test);
  std::cout << "hand-tuned cosine (best lr0 = " << best_lr << " by validation accuracy): test accuracy "
            << fixed(100 * et.accuracy, 2) << "%\n";
  if (ctx.folder) {
    const std::vector<std::string> header = {"lr0", "validation accuracy (%)", "seconds"};
    ctx.folder->write("results.csv", csv_table(header, rows));
    ctx.folder->write_json("results.json", {{"method", "cosine"}, {"best_lr0", best_lr}, {"test_accuracy", et.accuracy},
                                            {"test_loss", et.loss}});
    const std::vector<std::string> pics = draw(bars, ctx.folder->file("cosine"));
    ctx.folder->write_index("gradhpo hpo: hand-tuned cosine", {{"Runs", html_table(header, rows)}},
                            {"cosine.svg"});
    std::cout << "plots: " << pics[0] << "\n";
  }
}

void run_hpo(HpoOptions o, const std::string& out, const std::string& resume) {
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  RunContext ctx{o, nullptr};
  OptionSet opts = option_set(o);
  std::unique_ptr<hpo::BilevelState> checkpoint;
  if (!resume.empty()) {
    ctx.folder = std::make_unique<RunFolder>(resume);
    opts.load(ctx.folder->read_json("config.json"), ctx.folder->file("config.json"));
    checkpoint = std::make_unique<hpo::BilevelState>(hpo::load_state(ctx.folder->file("checkpoint.bin")));
    require(checkpoint->method == "outer:" + o.method, "--resume: the checkpoint in '" + resume + "' is of '" +
                                                           checkpoint->method + "', the config says method '" + o.method + "'");
  } else if (!out.empty()) {
    ctx.folder = std::make_unique<RunFolder>(out);
    ctx.folder->write_json("config.json", opts.to_json());
  }
  opts.validate();
  set_threads(o.threads);
  const SplitSets d = load_split_sets(o.dataset, o.data_folder, o.val_fraction, o.seed, o.train_limit);
  const Shape input{d.train.channels(), d.train.height(), d.train.width()};
  std::shared_ptr<const nn::Model> model = nn::make_model(o.model, input, d.train.num_classes);
  require(d.train.size() >= o.batch_size, "--batch-size " + std::to_string(o.batch_size) + " exceeds the " +
                                              std::to_string(d.train.size()) + " training examples");
  const std::int64_t T = o.epochs * (d.train.size() / o.batch_size);

  hpo::ClassificationOptions co;
  co.batch_size = o.batch_size;
  co.batch_seed = data::derive_seed(o.seed, 2);
  co.val_subset = o.val_subset;
  co.init_seed = data::derive_seed(o.seed, 3);
  std::cout << "gradhpo hpo: " << model->describe() << ", " << o.dataset << " " << d.train.size() << " train / "
            << d.val.size() << " validation / " << d.test.size() << " test, T = " << T << " steps (" << o.epochs
            << " epochs of batch " << o.batch_size << "), method " << o.method << "\n";
  if (o.method == "cosine") return run_cosine(o, d, model, T, co, ctx);

  hpo::Hyperparameters h;  // Algorithm 1: every hyperparameter starts at zero
  h.add(hpo::Hyperparameters::learning_rate(o.lr_blocks, 0.0));
  h.add(hpo::Hyperparameters::momentum(1, 0.0));
  h.add(hpo::Hyperparameters::weight_decay(1, 0.0));
  nn::OptimizerConfig opt;
  opt.lr = nn::Schedule::constant(0.0);
  const hpo::ClassificationTask task = make_classification_task(model, d.train, d.val, h, opt, T, co);
  hpo::OuterOptions oo;
  oo.kind = hpo::OuterKind::sign;
  oo.step = {o.gamma_lr, o.gamma_momentum, o.gamma_wd};
  oo.max_steps = o.outer_steps;
  hpo::ForwardOptions fo;
  fo.clip_hessian_product = o.clip_hessian;
  hpo::HypergradientMethod method;
  if (o.method == "reverse") {
    hpo::ReverseOptions ro;
    ro.policy = hpo::parse_policy(o.policy);
    method = [ro](const hpo::BilevelProblem& p, const Tensor& th, const hpo::Segment* s) {
      return hpo::reverse_hypergradient(p, th, ro, s);
    };
  } else {
    method = [fo](const hpo::BilevelProblem& p, const Tensor& th, const hpo::Segment* s) {
      return hpo::forward_hypergradient(p, th, fo, s);
    };
  }

  // Per outer step: a printed line, a results row, and (with a folder) a checkpoint.
  nlohmann::json results = ctx.folder && checkpoint ? ctx.folder->read_json("results.json") : nlohmann::json::array();
  Tensor last_good = checkpoint && checkpoint->extra.count("previous_theta") ? checkpoint->extra.at("previous_theta") : Tensor();
  LoopProgress progress("hpo " + o.method);
  auto record = [&](const hpo::OuterStep& s, const hpo::OuterOptimizer& optimizer) {
    progress.clear();
    std::cout << std::fixed << std::setprecision(4) << "  outer " << std::setw(2) << s.step;
    if (s.first_inner) std::cout << " (inner " << s.first_inner << ")";
    nlohmann::json row = {{"step", s.step}, {"first_inner", s.first_inner}, {"rejected", s.rejected}};
    nlohmann::json lam = nlohmann::json::object();
    for (std::int64_t i = 0; i < s.theta.numel(); ++i) lam[h.entry_name(i)] = h.value_at(s.theta, i);
    row["hyperparameters"] = lam;
    if (s.rejected) {
      std::cout << " rejected: " << s.message << "\n";
      row["message"] = s.message;
    } else {
      const double acc = s.final_weights.defined() ? task.evaluate(s.final_weights, d.val).accuracy : NAN;
      std::cout << "  L_val " << s.val_loss << "  val acc " << fixed(100 * acc, 2) << "%  " << s.cost.brief() << "\n    at "
                << schedule_text(h, s.theta) << "\n";
      row["val_loss"] = s.val_loss;
      row["train_loss"] = s.train_loss;
      row["val_accuracy"] = acc;
      // Greedy: the weights carried to the end of a pass are a model trained for all T steps (the
      // model the greedy setting delivers), so each pass end is also scored on the test set.
      if (o.method == "greedy" && s.next_first == 0 && s.final_weights.defined()) {
        const nn::Evaluation et = task.evaluate(s.final_weights, d.test);
        std::cout << "    end of pass " << s.next_pass - 1 << ": test accuracy " << fixed(100 * et.accuracy, 2) << "%\n";
        row["pass_end"] = true;
        row["test_accuracy"] = et.accuracy;
        row["test_loss"] = et.loss;
      }
      row["hypergradient"] = s.hypergradient.to_vector();
      row["theta"] = s.theta.to(DType::f64).to_vector();  // raw θ: early stopping after a --resume
      row["seconds"] = s.cost.seconds;
      row["peak_bytes"] = s.cost.peak_bytes;
      last_good = s.theta;
    }
    std::cout.flush();
    results.push_back(row);
    if (ctx.folder) {
      ctx.folder->write_json("results.json", results);
      // What --resume needs: θ, the outer optimizer's state, the step and rejection counts, and
      // for greedy where the pass is and the weights and optimizer slots training carries on from.
      hpo::BilevelState state;
      state.method = "outer:" + o.method;
      state.theta = s.next_theta;
      state.outer = optimizer.state();
      state.step = s.step + 1;
      state.inner = s.next_start;
      state.extra["previous_theta"] = last_good.defined() ? last_good : s.next_theta;
      state.extra["counters"] = Tensor::from({static_cast<double>(s.rejections), static_cast<double>(s.next_pass),
                                              static_cast<double>(s.next_first)}, Shape{3}, DType::f64);
      hpo::save_state(state, ctx.folder->file("checkpoint.bin"));
    }
    return true;
  };
  hpo::OuterResume from;
  if (checkpoint) {
    from = resume_point(*checkpoint, ctx.folder->file("checkpoint.bin"));
    std::cout << "resuming " << resume << " after " << (o.method == "greedy" ? "update " : "outer step ") << from.next_step - 1
              << "\n";
  }
  hpo::OuterRun run;
  if (o.method == "greedy") {
    const std::int64_t H = o.greedy_horizon > 0 ? o.greedy_horizon : std::max<std::int64_t>(1, T / o.lr_blocks);
    std::cout << "greedy setting: hyperparameters updated every " << H << " inner steps, " << o.outer_steps
              << " passes over the horizon\n";
    run = hpo::run_greedy(task.problem, H, method, oo, Tensor(), record, checkpoint ? &from : nullptr);
  } else {
    run = hpo::run_outer(task.problem, method, oo, Tensor(), record, checkpoint ? &from : nullptr);
  }
  progress.clear();
  std::cout << "stopped: " << run.stop_reason << "; " << run.rejections << " rejected steps; " << fixed(run.seconds, 1)
            << " s in the outer loop\nlearned: " << schedule_text(h, run.theta) << "\n";
  // Early stopping on validation (Micaelli & Storkey, Appendix B, Figure 3), over every row of the
  // run, those before a --resume included: non-greedy, the θ of the outer step with the lowest
  // L_val (each row keeps its raw θ, retrained below); greedy, the pass end whose carried weights
  // have the lowest L_val (scored on the test set when the pass ended).
  const bool greedy = o.method == "greedy";
  const nlohmann::json* best_row = nullptr;
  for (const auto& row : results) {
    const bool candidate = greedy ? row.contains("pass_end") : !row["rejected"].get<bool>() && row.contains("theta");
    if (candidate && (!best_row || row["val_loss"].get<double>() < (*best_row)["val_loss"].get<double>())) best_row = &row;
  }
  // A θ whose training from w0 diverges is reported as such; the other reports still come.
  const nn::Evaluation diverged{NAN, NAN};
  auto report = [&](const Tensor& theta, const std::string& what) {
    try {
      const hpo::InnerRun r = hpo::run_inner(task.problem, theta);
      progress.clear();
      const nn::Evaluation ev = task.evaluate(r.final_state.w(), d.val), et = task.evaluate(r.final_state.w(), d.test);
      std::cout << what << ": validation accuracy " << fixed(100 * ev.accuracy, 2) << "%, test accuracy "
                << fixed(100 * et.accuracy, 2) << "% (test loss " << fixed(et.loss, 4) << ")\n";
      return std::make_pair(ev, et);
    } catch (const hpo::InnerDivergence& e) {
      progress.clear();
      std::cout << what << ": " << e.what() << "\n";
      return std::make_pair(diverged, diverged);
    }
  };
  const auto [ev, et] = report(run.theta, o.method + ", the final θ trained from w0");
  nn::Evaluation best_test = et;
  const int best_step = best_row ? (*best_row)["step"].get<int>() : -1;
  if (best_row && greedy) {
    best_test.accuracy = (*best_row)["test_accuracy"].get<double>();
    best_test.loss = (*best_row)["test_loss"].get<double>();
    std::cout << "greedy, the best pass end by validation loss (" << fixed((*best_row)["val_loss"].get<double>(), 4)
              << ", update " << best_step << "): test accuracy " << fixed(100 * best_test.accuracy, 2) << "%\n";
  } else if (best_row) {
    const Tensor best = Tensor::from((*best_row)["theta"].get<std::vector<double>>(), Shape{h.size()}, DType::f64);
    std::cout << "best validation loss " << fixed((*best_row)["val_loss"].get<double>(), 4) << " at outer step "
              << best_step << ": " << schedule_text(h, best) << "\n";
    best_test = report(best, o.method + ", the best-validation θ (early stopping) trained from w0").second;
  }
  std::cout << "wall " << fixed(std::chrono::duration<double>(Clock::now() - t0).count(), 1) << " s, peak RSS "
            << fixed(peak_rss_mb(), 1) << " MB\n";
  if (!ctx.folder) return;

  // Results, plots and the index page.
  std::vector<std::string> header = {"step", "rejected", "val_loss", "val_accuracy", "seconds"};
  for (std::int64_t i = 0; i < h.size(); ++i) header.push_back(h.entry_name(i));
  std::vector<std::vector<std::string>> rows;
  LinePlot schedules{"learned learning-rate schedule per outer step", "inner step", "learning rate", {}, false, true};
  LinePlot curve{"validation loss per outer step", "outer step", "L_val", {}, false, false};
  Series val{"L_val", {}, {}};
  const int lr_group = h.find("lr");
  for (const auto& row : results) {
    std::vector<std::string> cells = {std::to_string(row["step"].get<int>()), row["rejected"].get<bool>() ? "yes" : "no",
                                      row.contains("val_loss") ? fixed(row["val_loss"].get<double>(), 5) : "",
                                      row.contains("val_accuracy") ? fixed(100 * row["val_accuracy"].get<double>(), 2) : "",
                                      row.contains("seconds") ? fixed(row["seconds"].get<double>(), 2) : ""};
    for (std::int64_t i = 0; i < h.size(); ++i) cells.push_back(fixed(row["hyperparameters"][h.entry_name(i)].get<double>(), 5));
    rows.push_back(cells);
    if (row.contains("val_loss")) {
      val.x.push_back(row["step"].get<int>());
      val.y.push_back(row["val_loss"].get<double>());
    }
    Series sched{"outer " + std::to_string(row["step"].get<int>()), {}, {}};
    for (std::int64_t b = 0; b <= o.lr_blocks; ++b) {  // block b starts at step bT/N; the last point closes the plot
      sched.x.push_back(static_cast<double>(b * T / o.lr_blocks));
      const std::int64_t j = std::min(b, o.lr_blocks - 1);
      sched.y.push_back(row["hyperparameters"][h.entry_name(h.offset(lr_group) + j)].get<double>());
    }
    schedules.series.push_back(sched);
  }
  curve.series.push_back(val);
  ctx.folder->write("results.csv", csv_table(header, rows));
  ctx.folder->write_json("summary.json", {{"method", o.method}, {"stop_reason", run.stop_reason},
                                          {"learned", schedule_text(h, run.theta)}, {"val_accuracy", ev.accuracy},
                                          {"test_accuracy", et.accuracy}, {"test_loss", et.loss}, {"best_step", best_step},
                                          {"best_test_accuracy", best_test.accuracy}});
  std::vector<std::string> pics = draw(schedules, ctx.folder->file("schedule"));
  if (!val.x.empty()) draw(curve, ctx.folder->file("val_loss"));
  std::ostringstream summary;
  summary << "<p>" << html_escape(model->describe()) << ", T = " << T << ", method " << html_escape(o.method) << ": test accuracy "
          << fixed(100 * et.accuracy, 2) << "%, validation accuracy " << fixed(100 * ev.accuracy, 2) << "%.</p><p>Learned: "
          << html_escape(schedule_text(h, run.theta)) << "</p>";
  ctx.folder->write_index("gradhpo hpo: " + o.method, {{"Summary", summary.str()}, {"Outer steps", html_table(header, rows)}},
                          {"schedule.svg", "val_loss.svg"});
  std::cout << "run folder: " << ctx.folder->path() << " (index.html, results.json, results.csv, " << pics[0] << ")\n";
}

}  // namespace

void add_hpo_command(CLI::App& app) {
  auto o = std::make_shared<HpoOptions>();
  auto out = std::make_shared<std::string>(), resume = std::make_shared<std::string>(), config = std::make_shared<std::string>();
  auto sets = std::make_shared<std::vector<std::string>>();
  CLI::App* cmd = app.add_subcommand(
      "hpo", "Learn a learning-rate schedule, momentum and weight decay (Micaelli & Storkey, Algorithm 1)");
  cmd->footer("Example: gradhpo hpo --dataset mnist --data ../shared/data/mnist --method forward --outer-steps 10 --out runs/ms");
  auto opts = std::make_shared<OptionSet>(option_set(*o));
  opts->add_to(*cmd);
  cmd->add_option("--config", *config, "JSON file of options (keys as the long options, without --), applied after the flags");
  cmd->add_option("--set", *sets, "key=value overrides applied after --config (repeatable)");
  cmd->add_option("--out", *out, "Run folder: config, results JSON/CSV, plots, index.html, a checkpoint per outer step");
  cmd->add_option("--resume", *resume, "Continue the interrupted run in this folder (its config.json and checkpoint.bin)");
  cmd->callback([o, opts, out, resume, config, sets] {
    if (!config->empty()) opts->load_file(*config);
    for (const std::string& s : *sets) opts->set(s);
    run_hpo(*o, *out, *resume);
  });
}

}  // namespace gradhpo::tools
