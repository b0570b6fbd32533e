// The folder a long run leaves behind: the config it ran, results as JSON and CSV, plots, a
// checkpoint, and an index.html that shows them. Every file is written through the run store's
// commit primitive (hpo/run_store.h: a temporary file, fsync, rename, fsync of the folder), so an
// interrupted run never leaves a half-written file; the files here are derived from the run's
// record (run.state) and rewritten from it.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace gradhpo::tools {

class RunFolder {
 public:
  /// Creates the folder (and its parents) if needed.
  explicit RunFolder(std::string path);
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  bool exists(const std::string& name) const;
  void write(const std::string& name, const std::string& text) const;
  void write_json(const std::string& name, const nlohmann::json& j) const;
  nlohmann::json read_json(const std::string& name) const;
  /// index.html: a title, sections of (heading, HTML), and pictures (paths relative to the folder).
  void write_index(const std::string& title, const std::vector<std::pair<std::string, std::string>>& sections,
                   const std::vector<std::string>& pictures) const;

 private:
  std::string path_;
};

std::string html_escape(const std::string& s);
/// A plain HTML table (cells escaped).
std::string html_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows);
/// The same rows as aligned plain text for a terminal (two spaces between columns).
std::string text_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows);
/// The same rows as CSV (cells with commas or quotes quoted).
std::string csv_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows);

}  // namespace gradhpo::tools
