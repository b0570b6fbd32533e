#include "reproduce_config.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

#include <gradhpo/engine/error.h>

namespace gradhpo::tools {

namespace fs = std::filesystem;

const std::vector<std::string>& paper_metrics() {
  static const std::vector<std::string> names = {"test_accuracy", "test_loss", "train_loss", "best_val_loss",
                                                 "seconds_per_run", "peak_mb"};
  return names;
}

std::vector<std::string> reproduce_folders() {
  std::vector<std::string> folders;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    folders.push_back((exe.parent_path().parent_path() / "share" / "gradhpo" / "reproduce").string());
    folders.push_back((exe.parent_path() / "reproduce").string());
  }
#ifdef GRADHPO_REPRODUCE_DIR
  folders.push_back(GRADHPO_REPRODUCE_DIR);
#endif
  return folders;
}

namespace {

std::string text_field(const nlohmann::json& j, const std::string& key, const std::string& where) {
  if (!j.contains(key)) return "";
  if (!j.at(key).is_string()) throw Error(where + ": '" + key + "' must be a string, got " + j.at(key).dump());
  return j.at(key).get<std::string>();
}

}  // namespace

std::string resolve_data_folder(const std::string& data, const std::string& config_file) {
  if (data.empty() || fs::path(data).is_absolute()) return data;
  std::error_code ec;
  std::vector<fs::path> candidates = {fs::path(data)};
  for (fs::path dir = fs::absolute(config_file, ec).parent_path(); !dir.empty(); dir = dir.parent_path()) {
    candidates.push_back(dir / data);
    if (dir == dir.root_path()) break;
  }
  if (const char* env = std::getenv("GRADHPO_DATA"); env && *env) {
    fs::path rel = fs::path(data).lexically_normal();
    if (rel.filename().empty()) rel = rel.parent_path();  // "mnist/"
    candidates.push_back(fs::path(env) / rel.filename());
  }
  for (const fs::path& c : candidates)
    if (fs::is_directory(c, ec)) return fs::weakly_canonical(fs::absolute(c, ec), ec).string();
  return data;
}

ReproduceConfig read_reproduce_config(const std::string& file) {
  std::ifstream f(file);
  if (!f) throw Error("cannot open experiment file '" + file + "'");
  nlohmann::json j;
  try {
    f >> j;
  } catch (const nlohmann::json::exception& e) {
    throw Error("experiment file '" + file + "' is not valid JSON: " + e.what());
  }
  if (!j.is_object()) throw Error(file + ": expected a JSON object, got " + j.dump().substr(0, 80));
  static const std::vector<std::string> keys = {"title", "scaled", "note", "paper", "protocol", "options"};
  for (auto it = j.begin(); it != j.end(); ++it)
    if (std::find(keys.begin(), keys.end(), it.key()) == keys.end())
      throw Error(file + ": unknown key '" + it.key() + "' (known: title, scaled, note, paper, protocol, options)");
  ReproduceConfig c;
  c.file = file;
  c.name = fs::path(file).stem().string();
  c.title = text_field(j, "title", file);
  c.scaled = text_field(j, "scaled", file);
  c.note = text_field(j, "note", file);
  if (c.title.empty()) throw Error(file + ": 'title' is missing (one line saying what is reproduced)");
  if (c.scaled.empty() && c.note.empty()) throw Error(file + ": neither 'scaled' nor 'note' says what was scaled down");
  if (!j.contains("options") || !j.at("options").is_object()) throw Error(file + ": 'options' must be an object of options");
  c.options = j.at("options");
  if (c.options.contains("data") && c.options.at("data").is_string())
    c.options["data"] = resolve_data_folder(c.options.at("data").get<std::string>(), file);
  if (j.contains("protocol")) {  // method -> the paper's search space and protocol for it, cited
    const nlohmann::json& p = j.at("protocol");
    if (!p.is_object()) throw Error(file + ": 'protocol' must be an object of method -> text");
    for (auto it = p.begin(); it != p.end(); ++it) {
      if (!it.value().is_string()) throw Error(file + ": protocol '" + it.key() + "' must be a text");
      c.protocol.emplace_back(it.key(), it.value().get<std::string>());
    }
  }
  if (j.contains("paper")) {
    const nlohmann::json& p = j.at("paper");
    const std::string where = file + ": paper";
    if (!p.is_object() || !p.contains("rows") || !p.at("rows").is_array())
      throw Error(where + " must be an object with 'source' and a list 'rows'");
    c.paper_source = text_field(p, "source", where);
    for (const nlohmann::json& row : p.at("rows")) {
      if (!row.is_object()) throw Error(where + ": a row must be an object, got " + row.dump());
      PaperRow r;
      r.method = text_field(row, "method", where);
      r.label = text_field(row, "label", where);
      if (r.method.empty()) throw Error(where + ": a row without 'method': " + row.dump());
      for (auto it = row.begin(); it != row.end(); ++it) {
        if (it.key() == "method" || it.key() == "label") continue;
        const std::string metric = it.key().size() > 3 && it.key().ends_with("_sd") ? it.key().substr(0, it.key().size() - 3) : it.key();
        if (std::find(paper_metrics().begin(), paper_metrics().end(), metric) == paper_metrics().end()) {
          std::string known;
          for (const std::string& m : paper_metrics()) known += (known.empty() ? "" : ", ") + m;
          throw Error(where + ": row '" + r.method + "' has the unknown metric '" + it.key() + "' (known: " + known + ")");
        }
        if (!it.value().is_number()) throw Error(where + ": row '" + r.method + "': '" + it.key() + "' must be a number");
        r.values.emplace_back(it.key(), it.value().get<double>());
      }
      c.paper.push_back(std::move(r));
    }
  }
  return c;
}

std::vector<ReproduceConfig> list_reproduce_configs() {
  std::map<std::string, std::string> files;  // name → the first folder's file
  for (const std::string& folder : reproduce_folders()) {
    std::error_code ec;
    if (!fs::is_directory(folder, ec)) continue;
    for (const fs::directory_entry& e : fs::directory_iterator(folder, ec))
      if (e.path().extension() == ".json") files.emplace(e.path().stem().string(), e.path().string());
  }
  std::vector<ReproduceConfig> out;
  for (const auto& [name, file] : files) out.push_back(read_reproduce_config(file));
  return out;
}

ReproduceConfig find_reproduce_config(const std::string& name) {
  for (const std::string& folder : reproduce_folders()) {
    const fs::path file = fs::path(folder) / (name + ".json");
    std::error_code ec;
    if (fs::is_regular_file(file, ec)) return read_reproduce_config(file.string());
  }
  std::string known;
  for (const ReproduceConfig& c : list_reproduce_configs()) known += (known.empty() ? "" : ", ") + c.name;
  std::string searched;
  for (const std::string& f : reproduce_folders()) searched += (searched.empty() ? "" : ", ") + f;
  throw Error("unknown experiment '" + name + "' (known: " + (known.empty() ? "none found" : known) + "; searched " + searched + ")");
}

}  // namespace gradhpo::tools
