// `gradhpo hpo`: learn a learning-rate schedule, momentum and weight decay for a model on a
// dataset, as in Micaelli & Storkey (Algorithm 1, Table 1): forward-mode hypergradients with
// hyperparameter sharing and the sign-based outer optimizer, non-greedy over the whole horizon;
// or the greedy setting with the same budget; or the hand-tuned cosine baseline (Appendix D).
#include <chrono>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>

#include <gradhpo/data/load.h>
#include <gradhpo/data/normalize.h>
#include <gradhpo/data/random.h>
#include <gradhpo/data/split.h>
#include <gradhpo/hpo/classification.h>
#include <gradhpo/hpo/forward.h>
#include <gradhpo/hpo/inner_run.h>
#include <gradhpo/hpo/outer.h>
#include <gradhpo/hpo/reverse.h>

#include "commands.h"
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

std::string schedule_text(const hpo::Hyperparameters& h, const Tensor& theta) {
  std::ostringstream s;
  s << std::setprecision(3);
  for (std::int64_t i = 0; i < theta.numel(); ++i) s << (i ? " " : "") << h.entry_name(i) << "=" << h.value_at(theta, i);
  return s.str();
}

void run_hpo(const HpoOptions& o) {
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  require(o.epochs >= 1 && o.batch_size >= 1 && o.lr_blocks >= 1 && o.outer_steps >= 1,
          "--epochs, --batch-size, --lr-blocks and --outer-steps must be >= 1");
  require(o.threads >= 0 && o.threads <= 256, "--threads must be in [0, 256], got " + std::to_string(o.threads));
  require(o.val_fraction > 0 && o.val_fraction < 1, "--val-fraction must be in (0, 1)");
  set_threads(o.threads);

  data::TrainTest tt = data::load_dataset(o.dataset, o.data_folder);
  data::TrainVal tv = data::split_train_val(tt.train, o.val_fraction, data::derive_seed(o.seed, 1));
  data::Dataset train = std::move(tv.train), val = std::move(tv.val), test = std::move(tt.test);
  if (o.train_limit > 0 && o.train_limit < train.size()) {
    std::vector<std::int64_t> first(static_cast<std::size_t>(o.train_limit));
    for (std::int64_t i = 0; i < o.train_limit; ++i) first[static_cast<std::size_t>(i)] = i;
    train = train.subset(first);
  }
  const data::ChannelStats stats = data::channel_stats(train);
  for (data::Dataset* d : {&train, &val, &test}) data::normalize_inplace(d->images, stats);

  const Shape input{train.channels(), train.height(), train.width()};
  std::shared_ptr<const nn::Model> model = nn::make_model(o.model, input, train.num_classes);
  const std::int64_t T = o.epochs * (train.size() / o.batch_size);

  hpo::ClassificationOptions co;
  co.batch_size = o.batch_size;
  co.batch_seed = data::derive_seed(o.seed, 2);
  co.val_subset = o.val_subset;
  co.init_seed = data::derive_seed(o.seed, 3);
  nn::OptimizerConfig opt;  // SGD; every value below is learned or, for cosine, set
  opt.lr = nn::Schedule::constant(0.0);

  std::cout << "gradhpo hpo: " << model->describe() << ", " << o.dataset << " " << train.size() << " train / "
            << val.size() << " validation / " << test.size() << " test, T = " << T << " steps (" << o.epochs
            << " epochs of batch " << o.batch_size << "), method " << o.method << "\n";

  auto report = [&](const hpo::ClassificationTask& task, const Tensor& theta, const std::string& what) {
    const hpo::InnerRun r = hpo::run_inner(task.problem, theta);
    const nn::Evaluation ev = task.evaluate(r.final_state.w(), val), et = task.evaluate(r.final_state.w(), test);
    std::cout << std::fixed << std::setprecision(2) << what << ": validation accuracy " << 100 * ev.accuracy
              << "%, test accuracy " << 100 * et.accuracy << "% (test loss " << std::setprecision(4) << et.loss
              << "), wall " << std::setprecision(1)
              << std::chrono::duration<double>(Clock::now() - t0).count() << " s, peak RSS " << peak_rss_mb()
              << " MB\n";
  };

  if (o.method == "cosine") {
    double best_acc = -1, best_lr = 0;
    for (double lr0 : o.cosine_lrs) {
      nn::OptimizerConfig c = opt;
      c.lr = nn::Schedule::cosine(lr0, T);
      const hpo::ClassificationTask task = make_classification_task(model, train, val, {}, c, T, co);
      const hpo::InnerRun r = hpo::run_inner(task.problem, Tensor::zeros(Shape{0}, DType::f64));
      const double acc = task.evaluate(r.final_state.w(), val).accuracy;
      std::cout << "  cosine lr0 = " << lr0 << ": validation accuracy " << 100 * acc << "% (" << r.seconds << " s)\n";
      if (acc > best_acc) best_acc = acc, best_lr = lr0;
    }
    nn::OptimizerConfig c = opt;
    c.lr = nn::Schedule::cosine(best_lr, T);
    report(make_classification_task(model, train, val, {}, c, T, co), Tensor::zeros(Shape{0}, DType::f64),
           "hand-tuned cosine (best lr0 = " + std::to_string(best_lr) + " by validation accuracy)");
    return;
  }

  hpo::Hyperparameters h;  // Algorithm 1: every hyperparameter starts at zero
  h.add(hpo::Hyperparameters::learning_rate(o.lr_blocks, 0.0));
  h.add(hpo::Hyperparameters::momentum(1, 0.0));
  h.add(hpo::Hyperparameters::weight_decay(1, 0.0));
  const hpo::ClassificationTask task = make_classification_task(model, train, val, h, opt, T, co);
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
    require(o.method == "forward" || o.method == "greedy",
            "--method must be forward, reverse, greedy or cosine, got '" + o.method + "'");
    method = [fo](const hpo::BilevelProblem& p, const Tensor& th, const hpo::Segment* s) {
      return hpo::forward_hypergradient(p, th, fo, s);
    };
  }
  auto print = [&](const hpo::OuterStep& s, const hpo::OuterOptimizer&) {
    std::cout << std::fixed << std::setprecision(4) << "  outer " << std::setw(2) << s.step;
    if (s.first_inner) std::cout << " (inner " << s.first_inner << ")";
    if (s.rejected) {
      std::cout << " rejected: " << s.message << "\n";
    } else {
      std::cout << "  L_val " << s.val_loss << "  " << s.cost.brief() << "\n    at " << schedule_text(h, s.theta) << "\n";
    }
    std::cout.flush();
    return true;
  };
  hpo::OuterRun run;
  if (o.method == "greedy") {
    const std::int64_t H = o.greedy_horizon > 0 ? o.greedy_horizon : std::max<std::int64_t>(1, T / o.lr_blocks);
    std::cout << "greedy setting: hyperparameters updated every " << H << " inner steps, " << o.outer_steps
              << " passes over the horizon\n";
    run = hpo::run_greedy(task.problem, H, method, oo, Tensor(), print);
  } else {
    run = hpo::run_outer(task.problem, method, oo, Tensor(), print);
  }
  std::cout << "stopped: " << run.stop_reason << "; " << run.rejections << " rejected steps; " << run.seconds
            << " s in the outer loop\nlearned: " << schedule_text(h, run.theta) << "\n";
  report(task, run.theta, o.method + " (learned hyperparameters, trained from w0)");
}

}  // namespace

void add_hpo_command(CLI::App& app) {
  auto o = std::make_shared<HpoOptions>();
  CLI::App* cmd = app.add_subcommand(
      "hpo", "Learn a learning-rate schedule, momentum and weight decay (Micaelli & Storkey, Algorithm 1)");
  cmd->footer("Example: gradhpo hpo --dataset mnist --data ../shared/data/mnist --method forward --outer-steps 10");
  cmd->add_option("--dataset", o->dataset, "Dataset")->check(CLI::IsMember(data::dataset_names()))->capture_default_str();
  cmd->add_option("--data", o->data_folder, "Folder with the dataset files (default: $GRADHPO_DATA)");
  cmd->add_option("--model", o->model, "Model")->check(CLI::IsMember(nn::model_names()))->capture_default_str();
  cmd->add_option("--method", o->method, "forward, reverse, greedy (forward mode on segments) or cosine (hand-tuned)")
      ->check(CLI::IsMember({"forward", "reverse", "greedy", "cosine"}))
      ->capture_default_str();
  cmd->add_option("--policy", o->policy, "reverse: store-all, exact-reversal or checkpoint")
      ->check(CLI::IsMember({"store-all", "exact-reversal", "checkpoint"}))
      ->capture_default_str();
  cmd->add_option("--epochs", o->epochs, "Epochs of the inner run (horizon T = epochs × batches per epoch)")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  cmd->add_option("--batch-size", o->batch_size, "Batch size")->check(CLI::Range(1, 1 << 20))->capture_default_str();
  cmd->add_option("--val-fraction", o->val_fraction, "Fraction of the training set held out for validation")
      ->check(CLI::Range(0.001, 0.999))
      ->capture_default_str();
  cmd->add_option("--val-subset", o->val_subset, "Validation examples in L_val (a fixed seeded subset; 0: all)")
      ->check(CLI::Range(0, 1 << 30))
      ->capture_default_str();
  cmd->add_option("--train-limit", o->train_limit, "Train on the first N training records only (0: all)")
      ->check(CLI::Range(0, 1 << 30))
      ->capture_default_str();
  cmd->add_option("--lr-blocks", o->lr_blocks, "Learning rates, each shared over a block of steps")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd->add_option("--outer-steps", o->outer_steps, "Outer steps (greedy: passes over the horizon)")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  cmd->add_option("--gamma-lr", o->gamma_lr, "Sign optimizer: initial step of the learning rates")->capture_default_str();
  cmd->add_option("--gamma-momentum", o->gamma_momentum, "Sign optimizer: initial step of the momentum")->capture_default_str();
  cmd->add_option("--gamma-wd", o->gamma_wd, "Sign optimizer: initial step of the weight decay")->capture_default_str();
  cmd->add_option("--clip-hessian", o->clip_hessian, "Forward mode: clip the Hessian-matrix product to ±c (0: off)")
      ->check(CLI::Range(0.0, 1e30))
      ->capture_default_str();
  cmd->add_option("--greedy-horizon", o->greedy_horizon, "Greedy: inner steps between updates (0: T / lr-blocks)")
      ->check(CLI::Range(0, 1 << 30))
      ->capture_default_str();
  cmd->add_option("--cosine-lrs", o->cosine_lrs, "Cosine: initial learning rates to try")->delimiter(',')->capture_default_str();
  cmd->add_option("--seed", o->seed, "Seed for the split, batch order and initialization")->capture_default_str();
  cmd->add_option("--threads", o->threads, "Threads (0: the default)")->check(CLI::Range(0, 256))->capture_default_str();
  cmd->callback([o] { run_hpo(*o); });
}

}  // namespace gradhpo::tools
