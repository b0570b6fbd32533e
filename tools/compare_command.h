// The `gradhpo compare` command as functions, for the commands that run a comparison (compare, reproduce):
// its options (one OptionSet: command line, JSON, --set), the method table and the run that
// prints the table and writes the run folder.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include <gradhpo/hpo/run_store.h>
#include <gradhpo/hpo/tasks/compare.h>
#include <gradhpo/hpo/tasks/experiments.h>

#include "option_set.h"

namespace gradhpo::tools {

struct CompareOptions {
  std::string experiment = "schedule";
  hpo::ExperimentOptions data;
  std::vector<std::string> methods = {"forward", "random"};
  // The budget (hpo/search/budget.h): budget_runs training runs of T inner steps per method, or
  // budget_seconds of wall time, or budget_work plain-step equivalents of engine work, whichever
  // runs out first (0: that limit off); with equalise "seconds" or "work" only the first method
  // gets it, the others what the first one used.
  std::int64_t budget_runs = 10;
  double budget_seconds = 0;
  double budget_work = 0;
  std::string equalise = "seconds";
  // Paired seeds: seed, seed + 1, ... (data split and order, initialization, search draws).
  int seeds = 1;
  // The black-box searches' space (hpo::SearchSpace): practitioner or paper ranges; per-block,
  // shared or auto.
  std::string space = "practitioner";
  std::string space_sharing = "auto";
  std::string outer = "";  // default per experiment: sign for schedule, adam otherwise
  double outer_step = 0;   // 0: the experiment's default
  // The online methods (T1-T2, DARTS, generalized greedy, HyperDistill, hypergradient descent) update θ after
  // every inner step with their own optimizer: its kind and step (0: 0.01, or outer_step if set).
  std::string online_outer = "sgd";
  double online_step = 0;
  double clip_hessian = 0; // forward mode: clip the Hessian-matrix product to ±c (0: off)
  std::vector<double> cosine_lrs = {0.05, 0.1, 0.2, 0.4, 0.6};  // cosine: Micaelli & Storkey, Appendix D
  std::vector<double> cosine_momenta = {0.0};        // Appendix D: "no gain from using momentum and weight decay"
  std::vector<double> cosine_weight_decays = {0.0};  // on MNIST and SVHN
  std::uint64_t search_seed = 0;
  bool markdown = false;
  int threads = 0;
};

/// Every option of a comparison, bound to `o`.
OptionSet compare_option_set(CompareOptions& o);
/// The names the methods option accepts.
const std::vector<std::string>& method_names();

struct CompareOutcome {
  hpo::Experiment experiment;   ///< the first seed's
  hpo::Comparison comparison;   ///< the first seed's
  hpo::SeededComparison seeded; ///< every seed's
};
/// Where a comparison keeps its run: the run store of its folder (null: no folder), checked and
/// created by the caller before any work, and whether plots are drawn there.
struct CompareFolder {
  hpo::RunStore* store = nullptr;
  bool plots = true;
  /// Every seed's methods spread over the MPI ranks (--distribute trials, hpo/mpi/compare.h);
  /// only rank 0 has the store.
  bool distribute_trials = false;
};
/// For each seed, builds the experiment, runs every method at the budget (a progress bar on a
/// terminal) and prints its table; with several seeds, then the table over seeds. With a store:
/// the rows it already holds are not run again (a resumed run), each finished row is committed
/// to it ("method/<k·M + i>" for seed k's method i, compare_record.h) and results.json/.csv
/// regenerated; at the end results.json holds the first seed's comparison and "seeds",
/// "summary" and every seed's under "runs", with comparison.svg/.png and index.html.
/// With folder.distribute_trials the rows run over the ranks and rank 0 prints the tables at the
/// end: the same rows, files and tables (timing aside; see hpo/mpi/compare.h); every other rank
/// returns nullopt, having printed and written nothing.
std::optional<CompareOutcome> run_compare(const CompareOptions& o, const CompareFolder& folder);
/// --distribute of compare and reproduce on `cmd`, into `distribute`.
void add_distribute_option(CLI::App& cmd, std::string& distribute);
/// Whether the rows run over the ranks: "trials", or by default several ranks under mpirun.
/// Throws Error for trials without mpirun, and for none on several ranks (each would run the
/// whole comparison).
bool distribute_trials(const std::string& distribute, const std::string& command);
/// What --resume may change of a stored comparison: only what cannot alter its rows (threads,
/// the table's format).
bool compare_resume_may_change(const std::string& key, const nlohmann::json& stored, const nlohmann::json& wanted);

}  // namespace gradhpo::tools
