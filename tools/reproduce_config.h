// The experiments of `gradhpo reproduce`: small JSON files shipped in tools/reproduce/ (installed
// to share/gradhpo/reproduce), one per table or figure of a paper:
//   {
//     "title":   what is reproduced (one line, shown by --list),
//     "scaled":  what was scaled down for a 2-core machine (or "note": what the run shows),
//     "paper":   {"source": "...", "rows": [{"method": "forward", "label": "Ours", "test_accuracy": 98.7}, ...]}
//                (optional; the metrics a row may give are paper_metrics(), each with an optional
//                "<metric>_sd": the paper's error bar),
//     "protocol": {"random": "...", ...}: per baseline, the paper's search space and protocol
//                (ranges, scale, sharing, seeds) with the sentence that says so (optional),
//     "options": the comparison's options (tools/compare_command.h), every one overridable by --set
//   }
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace gradhpo::tools {

struct PaperRow {
  std::string method;  ///< a key of the comparison's method table
  std::string label;   ///< the paper's name for it
  std::vector<std::pair<std::string, double>> values;  ///< metric → the paper's number ("<metric>_sd": its error bar)
};

struct ReproduceConfig {
  std::string name;    ///< the file's stem: "ms-table1"
  std::string file;
  std::string title, scaled, note;
  std::string paper_source;
  std::vector<PaperRow> paper;
  std::vector<std::pair<std::string, std::string>> protocol;  ///< method -> the paper's space and protocol
  nlohmann::json options;
};

/// The metrics a paper row may give, with their units: test_accuracy (%), test_loss, train_loss,
/// best_val_loss, seconds_per_run (s per training run or meta-iteration), peak_mb (MB).
const std::vector<std::string>& paper_metrics();

/// Folders searched for <name>.json, in order: share/gradhpo/reproduce next to the executable's
/// bin/, tools/reproduce next to it in a build tree, and the source tree's tools/reproduce.
std::vector<std::string> reproduce_folders();
/// Every shipped experiment, by name (the first folder that has a name wins).
std::vector<ReproduceConfig> list_reproduce_configs();
/// The experiment called `name` (throws Error listing the known ones).
ReproduceConfig find_reproduce_config(const std::string& name);
/// Reads and checks one file: unknown top-level keys, a missing "scaled"/"note", paper rows
/// without a method or with an unknown metric are refused naming the file and the key. A
/// relative "data" option is resolved by resolve_data_folder, so that an experiment finds its
/// data from any working directory.
ReproduceConfig read_reproduce_config(const std::string& file);

/// The folder a relative `data` option of the experiment file `config_file` names, searched in
/// order: the working directory; the file's folder and each folder above it (the shipped
/// "../shared/data/mnist" is relative to the repository root, two levels above
/// tools/reproduce/); $GRADHPO_DATA/<the path's last name>. The first that exists, made
/// absolute; `data` unchanged when it is absolute, empty, or found nowhere (the loader then
/// names it and `--set data=FOLDER` says where it is).
std::string resolve_data_folder(const std::string& data, const std::string& config_file);

}  // namespace gradhpo::tools
