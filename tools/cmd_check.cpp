// `gradhpo check`: the exactness ladder of one of the papers' problems — every applicable
// hypergradient method beside exact reverse mode (relative error, cosine, sign agreement, time,
// peak memory) — and, with --fd, check_hypergradient of one offline method (--method NAME, by
// default reverse, with --option key=value for its registered options) against central
// differences of the whole training run (one pair of runs per hyperparameter: small problems).
#include <iostream>
#include <map>
#include <memory>

#include <gradhpo/hpo/eval/ladder.h>
#include <gradhpo/hpo/registry.h>
#include <gradhpo/hpo/tasks/experiments.h>

#include "commands.h"
#include "method_options.h"
#include "train_run.h"

namespace gradhpo::tools {

namespace {

struct CheckOptions {
  std::string experiment = "l2";
  hpo::ExperimentOptions data;
  bool markdown = false;
  bool fd = false;
  bool forward = false;
  std::string method = "reverse";       ///< the offline method --fd checks
  std::vector<std::string> options;     ///< its options, key=value
  int threads = 0;
};

void run_check(const CheckOptions& o) {
  set_threads(o.threads);
  // The method is constructed (its options validated) before the problem is built.
  const std::unique_ptr<hpo::Method> checked = hpo::Registry::global().make_offline(o.method, option_texts(o.options, "--option"));
  const hpo::Experiment e = hpo::make_experiment(o.experiment, o.data);
  const hpo::BilevelProblem& p = e.task.problem;
  std::cout << "gradhpo check: " << o.experiment << " — " << p.hyper.size() << " hyperparameters, "
            << p.num_params() << " parameters, T = " << p.horizon << "\n  " << p.description << "\n";
  std::vector<hpo::LadderMethod> methods = hpo::standard_ladder();
  if (!o.forward) {  // N columns of P: 7,850 × 7,850 here — say so rather than run it
    std::erase_if(methods, [](const hpo::LadderMethod& m) { return m.name == "forward mode"; });
    std::cout << "  (forward mode left out: it carries " << p.hyper.size() << " tangent columns of "
              << p.num_params() << " parameters; --forward runs it)\n";
  }
  const Tensor theta = p.hyper.initial();
  std::cout << hpo::ladder_table(hpo::exactness_ladder(p, theta, methods), o.markdown);
  if (o.fd) {
    const hpo::Hypergradient h = checked->compute(p, theta);
    const hpo::HypergradientCheck c = hpo::check_hypergradient(p, theta, h.d_theta);
    std::cout << "check_hypergradient (" << h.method << "): " << c.verdict << "\n";
    if (!c.ok) throw Error("the hypergradient of " + o.method + " failed its finite-difference check");
  }
}

}  // namespace

void add_check_command(CLI::App& app) {
  auto o = std::make_shared<CheckOptions>();
  CLI::App* cmd = app.add_subcommand("check", "The exactness ladder: every method's hypergradient beside the exact one");
  cmd->footer("Example: gradhpo check --experiment cleaning --data ../shared/data/mnist --train-size 1000 --val-size 1000");
  cmd->add_option("--experiment", o->experiment, "Problem")->check(CLI::IsMember(hpo::experiment_names()))->capture_default_str();
  cmd->add_option("--dataset", o->data.dataset, "Dataset")->capture_default_str();
  cmd->add_option("--data", o->data.data_folder, "Folder with the dataset files (default: $GRADHPO_DATA)");
  cmd->add_option("--train-size", o->data.train_size, "Training examples")->check(CLI::Range(1, 1 << 24))->capture_default_str();
  cmd->add_option("--val-size", o->data.val_size, "Validation examples")->check(CLI::Range(1, 1 << 24))->capture_default_str();
  cmd->add_option("--steps", o->data.horizon, "Inner steps T")->check(CLI::Range(1, 1 << 24))->capture_default_str();
  cmd->add_option("--batch-size", o->data.batch_size, "Batch size (0: full batch)")->check(CLI::Range(0, 1 << 24))->capture_default_str();
  cmd->add_option("--lr", o->data.lr, "Inner learning rate")->check(CLI::Range(0.0, 100.0))->capture_default_str();
  cmd->add_option("--momentum", o->data.momentum, "Inner momentum")->check(CLI::Range(0.0, 1.0))->capture_default_str();
  cmd->add_option("--seed", o->data.seed, "Seed for the split, corruption, batches and initialization")->capture_default_str();
  cmd->add_flag("--markdown", o->markdown, "Print the table with markdown pipes");
  cmd->add_flag("--fd", o->fd, "Also check reverse mode against finite differences of the whole run (2 runs per hyperparameter)");
  cmd->add_flag("--forward", o->forward, "Include forward mode (N tangent columns)");
  cmd->add_option("--method", o->method, "The offline method --fd checks, by its registry name")->capture_default_str();
  cmd->add_option("--option", o->options, "key=value: an option of --method (repeatable; see the method list below)");
  cmd->footer(std::string(cmd->get_footer()) + "\n\n" + offline_methods_help());
  cmd->add_option("--threads", o->threads, "Threads (0: the default)")->check(CLI::Range(0, 256))->capture_default_str();
  cmd->callback([o] { run_check(*o); });
}

}  // namespace gradhpo::tools
