// `gradhpo hypervariance`: Micaelli & Storkey's Section 5.1 diagnostics — the hypervariance
// (std/|mean|) and sign fluctuation (min(P+, P−)/P) of learning-rate hypergradients under P
// perturbations of the training-data order, the validation sample, the initial weights and the
// hyperparameters, with the schedule shared over blocks of steps and with one value per step —
// of an offline method constructed by name (--method, default forward, --option key=value).
// Under mpirun the perturbations are spread over the ranks (--distribute trials, the only workload
// here and chosen by itself under mpirun: hpo/mpi/hypervariance.h), with the single-process
// results bit for bit (results.json; seconds aside); only rank 0 prints and writes the folder.
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>

#include <gradhpo/data/load.h>
#include <gradhpo/data/random.h>
#include <gradhpo/hpo/tasks/classification.h>
#include <gradhpo/hpo/eval/diagnostics.h>
#include <gradhpo/hpo/registry.h>
#include <gradhpo/hpo/tasks/experiments.h>

#include <gradhpo/hpo/run_store.h>
#ifdef GRADHPO_WITH_MPI
#include <gradhpo/hpo/mpi/hypervariance.h>
#endif
#include <nlohmann/json.hpp>

#include "commands.h"
#include "method_options.h"
#include "option_set.h"
#include "plot.h"
#include "ranks.h"
#include "run_folder.h"
#include "train_run.h"

namespace gradhpo::tools {

namespace {

struct HypervarianceOptions {
  std::string dataset = "fashion-mnist";
  std::string data_folder;
  std::string model = "mlp";
  std::int64_t train_limit = 2048;
  std::int64_t batch_size = 64;
  std::int64_t steps = 50;
  std::int64_t blocks = 5;
  int perturbations = 4;
  double lr = 0.05;
  std::int64_t val_subset = 500;
  std::uint64_t seed = 0;
  std::string method = "forward";    ///< the offline method whose hypergradients are sampled
  std::vector<std::string> options;  ///< its options, key=value
  int threads = 0;
  /// "trials": the perturbations over the ranks; "none": every rank computes them all; "auto":
  /// trials under mpirun, none otherwise.
  std::string distribute = "auto";
};

OptionSet option_set(HypervarianceOptions& o) {
  OptionSet s;
  s.text("dataset", &o.dataset, data::dataset_names(), "Dataset");
  s.path("data", &o.data_folder, "Folder with the dataset files (default: $GRADHPO_DATA, then the Debian package)");
  s.text("model", &o.model, nn::model_names(), "Model");
  s.integer("train-limit", &o.train_limit, 1, 1 << 30, "Training examples");
  s.integer("batch-size", &o.batch_size, 1, 1 << 20, "Batch size, in examples");
  s.integer("steps", &o.steps, 2, 1 << 24, "Inner steps T");
  s.integer("blocks", &o.blocks, 1, 1 << 24, "Learning rates of the shared schedule (compared with one per step)");
  s.integer("perturbations", &o.perturbations, 2, 1000, "P: perturbations per factor");
  s.real("lr", &o.lr, 1e-9, 100, "The unperturbed learning rate (every block)");
  s.integer("val-subset", &o.val_subset, 0, 1 << 30, "Validation examples in L_val (0: all)");
  s.seed("seed", &o.seed, "Base seed (>= 0)");
  s.text("method", &o.method, hpo::Registry::global().names(hpo::MethodKind::offline),
         "The offline hypergradient method, by its registry name");
  s.texts("option", &o.options, {}, "Options of the method, key=value (its registered options)");
  s.integer("threads", &o.threads, 0, 256, "Threads (0: the default)");
  s.text("distribute", &o.distribute, {"auto", "none", "trials"},
         "Under mpirun: trials (every perturbation a task spread over the ranks, the results the one-process run's bit "
         "for bit; the only workload here, so auto chooses it under mpirun) or none (every rank computes all)");
  return s;
}

/// The rows of hpo::hypervariance, over the ranks under --distribute trials.
std::vector<hpo::HypervarianceRow> hypervariance_rows(const std::string& distribute, const hpo::ProblemFactory& factory,
                                                      const Tensor& theta, const hpo::Method& method, int perturbations,
                                                      const std::vector<hpo::Factor>& factors, std::uint64_t seed) {
  if (distribute == "trials" && under_mpi()) {
#ifdef GRADHPO_WITH_MPI
    return mpi::hypervariance(mpi::Communicator::world(), factory, theta, method, perturbations, factors, seed);
#endif
  }
  return hpo::hypervariance(factory, theta, method, perturbations, factors, seed);
}

/// A row as results.json keeps it: every statistic as its double (nlohmann writes the shortest
/// text that reads back to the same bits).
nlohmann::json row_json(const std::string& setting, const hpo::HypervarianceRow& r) {
  return {{"learning_rates", setting},
          {"factor", hpo::factor_name(r.factor)},
          {"mean_hypervariance", r.spread.mean_hypervariance},
          {"mean_sign_fluctuation", r.spread.mean_sign_fluctuation},
          {"mean", r.spread.mean},
          {"std", r.spread.std},
          {"hypervariance", r.spread.hypervariance},
          {"sign_fluctuation", r.spread.sign_fluctuation},
          {"samples", r.samples},
          {"seconds", r.seconds}};
}

void run(HypervarianceOptions o, const std::string& out) {
  if (o.distribute == "auto") o.distribute = under_mpi() ? "trials" : "none";
  require(o.distribute == "none" || under_mpi(),
          "--distribute trials runs under mpirun: mpirun -np N gradhpo hypervariance --distribute trials ...");
#ifndef GRADHPO_WITH_MPI
  require(o.distribute == "none", "--distribute trials: this build of gradhpo has no MPI (install libopenmpi-dev and "
                                  "rebuild; GRADHPO_MPI)");
#endif
  // The output folder before any work: it exists or can be made, is writable, holds no run
  // (rank 0 alone writes it).
  if (!out.empty() && ranks().root()) hpo::check_run_folder(out, hpo::FolderUse::fresh);
  set_threads(o.threads);
  const std::unique_ptr<hpo::Method> method = hpo::Registry::global().make_offline(o.method, option_texts(o.options, "--option"));
  const hpo::SplitSets d = hpo::load_split_sets(o.dataset, o.data_folder, 0.1, o.seed, o.train_limit);
  const data::Dataset &train = d.train, &val = d.val;
  std::shared_ptr<const nn::Model> model =
      nn::make_model(o.model, Shape{train.channels(), train.height(), train.width()}, train.num_classes);
  auto factory = [&](std::int64_t blocks) {
    return [&, blocks](hpo::Factor f, int index) {
      hpo::Hyperparameters h;
      h.add(hpo::Hyperparameters::learning_rate(blocks, o.lr));
      nn::OptimizerConfig opt;
      opt.momentum = 0.9;
      hpo::ClassificationOptions co;
      co.batch_size = o.batch_size;
      co.val_subset = o.val_subset;
      co.batch_seed = data::derive_seed(o.seed, 10 + (f == hpo::Factor::train_order ? index : 0));
      co.val_seed = data::derive_seed(o.seed, 20 + (f == hpo::Factor::val_sample ? index : 0));
      co.init_seed = data::derive_seed(o.seed, 30 + (f == hpo::Factor::init_weights ? index : 0));
      return hpo::make_classification_task(model, train, val, std::move(h), opt, o.steps, co).problem;
    };
  };
  const std::vector<hpo::Factor> factors = {hpo::Factor::train_order, hpo::Factor::val_sample, hpo::Factor::init_weights,
                                            hpo::Factor::hyperparameters};
  std::vector<std::vector<std::string>> rows;
  nlohmann::json results = nlohmann::json::array();
  BarPlot bars{"hypervariance of the learning-rate hypergradients", "mean std/|mean| over hyperparameters", {}, {}};
  for (std::int64_t blocks : {o.blocks, o.steps}) {
    const hpo::BilevelProblem p0 = factory(blocks)(hpo::Factor::train_order, 0);
    const auto result =
        hypervariance_rows(o.distribute, factory(blocks), p0.hyper.initial(), *method, o.perturbations, factors, o.seed);
    const std::string setting = blocks == o.steps ? "one per step" : std::to_string(blocks) + " shared";
    for (const auto& r : result) {
      results.push_back(row_json(setting, r));
      std::ostringstream hv, sf, sec;
      hv << std::setprecision(3) << r.spread.mean_hypervariance;
      sf << std::setprecision(3) << 100 * r.spread.mean_sign_fluctuation;
      sec << std::fixed << std::setprecision(1) << r.seconds;
      rows.push_back({setting, hpo::factor_name(r.factor), hv.str(), sf.str() + "%", sec.str()});
      bars.labels.push_back(setting + ": " + hpo::factor_name(r.factor));
      bars.values.push_back(r.spread.mean_hypervariance);
    }
  }
  const std::vector<std::string> header = {"learning rates", "perturbed factor", "hypervariance", "sign fluctuation", "seconds"};
  std::cout << "gradhpo hypervariance: " << model->describe() << ", T = " << o.steps << ", P = " << o.perturbations << "\n";
  for (const auto& r : rows)
    std::cout << "  " << std::left << std::setw(14) << r[0] << std::setw(22) << r[1] << " hypervariance " << std::setw(9)
              << r[2] << " sign fluctuation " << std::setw(7) << r[3] << " (" << r[4] << " s)\n";
  if (out.empty() || !ranks().root()) return;
  RunFolder folder(out);
  folder.write("results.csv", csv_table(header, rows));
  folder.write("results.json", results.dump(2) + "\n");
  const std::vector<std::string> pics = draw(bars, folder.file("hypervariance"));
  folder.write_index("gradhpo hypervariance", {{"Results", html_table(header, rows)}}, {"hypervariance.svg"});
  std::cout << "plots: " << pics[0] << "\n";
}

}  // namespace

void add_hypervariance_command(CLI::App& app) {
  auto o = std::make_shared<HypervarianceOptions>();
  auto out = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand("hypervariance", "Hypervariance and sign fluctuation (Micaelli & Storkey, Section 5.1)");
  cmd->footer("Example: gradhpo hypervariance --dataset fashion-mnist --steps 50 --blocks 5 --perturbations 4 --out runs/hv\n"
              "Over MPI ranks: mpirun -np 4 gradhpo hypervariance ... (--distribute trials, chosen under mpirun)");
  auto opts = std::make_shared<OptionSet>(option_set(*o));
  opts->add_to(*cmd);
  cmd->add_option("--out", *out, "Folder for results.csv, results.json (every statistic and sample), the plot and index.html");
  cmd->footer(std::string(cmd->get_footer()) + "\n\n" + offline_methods_help());
  cmd->callback([o, out] { run(*o, *out); });
}

}  // namespace gradhpo::tools
