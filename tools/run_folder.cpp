#include "run_folder.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

#include <gradhpo/engine/error.h>
#include <gradhpo/hpo/run_store.h>

namespace gradhpo::tools {

RunFolder::RunFolder(std::string path) : path_(std::move(path)) {
  std::error_code ec;
  std::filesystem::create_directories(path_, ec);
  require(!ec && std::filesystem::is_directory(path_), "cannot create the run folder '" + path_ + "': " + ec.message());
}

bool RunFolder::exists(const std::string& name) const { return std::filesystem::exists(file(name)); }

void RunFolder::write(const std::string& name, const std::string& text) const {
  std::ifstream f(file(name), std::ios::binary);
  if (f && std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>()) == text) return;  // unchanged
  hpo::commit_file(file(name), text);
}

void RunFolder::write_json(const std::string& name, const nlohmann::json& j) const { write(name, j.dump(2) + "\n"); }

nlohmann::json RunFolder::read_json(const std::string& name) const {
  std::ifstream f(file(name));
  require(static_cast<bool>(f), "cannot read '" + file(name) + "'");
  try {
    nlohmann::json j;
    f >> j;
    return j;
  } catch (const nlohmann::json::exception& e) {
    throw Error("'" + file(name) + "' is not valid JSON: " + e.what());
  }
}

std::string html_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      default: o += c;
    }
  }
  return o;
}

std::string html_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows) {
  std::ostringstream s;
  s << "<table>\n<tr>";
  for (const std::string& h : header) s << "<th>" << html_escape(h) << "</th>";
  s << "</tr>\n";
  for (const auto& r : rows) {
    s << "<tr>";
    for (const std::string& c : r) s << "<td>" << html_escape(c) << "</td>";
    s << "</tr>\n";
  }
  s << "</table>\n";
  return s.str();
}

std::string text_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows) {
  // Widths in code points, not bytes: cells hold "–" and "λ".
  auto width = [](const std::string& s) {
    std::size_t n = 0;
    for (unsigned char ch : s) n += (ch & 0xC0) != 0x80;
    return n;
  };
  std::vector<std::size_t> w(header.size(), 0);
  for (std::size_t k = 0; k < header.size(); ++k) w[k] = width(header[k]);
  for (const auto& row : rows)
    for (std::size_t k = 0; k < row.size() && k < w.size(); ++k) w[k] = std::max(w[k], width(row[k]));
  std::ostringstream s;
  auto line = [&](const std::vector<std::string>& row) {
    for (std::size_t k = 0; k < row.size() && k < w.size(); ++k)
      s << (k ? "  " : "") << row[k] << std::string(k + 1 < row.size() ? w[k] - width(row[k]) : 0, ' ');
    s << "\n";
  };
  line(header);
  for (const auto& row : rows) line(row);
  return s.str();
}

std::string csv_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows) {
  auto cell = [](const std::string& c) {
    if (c.find_first_of(",\"\n") == std::string::npos) return c;
    std::string q = "\"";
    for (char ch : c) q += ch == '"' ? std::string("\"\"") : std::string(1, ch);
    return q + "\"";
  };
  std::ostringstream s;
  for (std::size_t i = 0; i < header.size(); ++i) s << (i ? "," : "") << cell(header[i]);
  s << "\n";
  for (const auto& r : rows) {
    for (std::size_t i = 0; i < r.size(); ++i) s << (i ? "," : "") << cell(r[i]);
    s << "\n";
  }
  return s.str();
}

void RunFolder::write_index(const std::string& title, const std::vector<std::pair<std::string, std::string>>& sections,
                            const std::vector<std::string>& pictures) const {
  std::ostringstream s;
  s << "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" << html_escape(title) << "</title>\n"
    << "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse}"
       "td,th{border:1px solid #bbb;padding:3px 8px;text-align:right}img{max-width:100%}</style></head><body>\n"
    << "<h1>" << html_escape(title) << "</h1>\n";
  for (const auto& [heading, html] : sections) s << "<h2>" << html_escape(heading) << "</h2>\n" << html << "\n";
  if (!pictures.empty()) s << "<h2>Plots</h2>\n";
  for (const std::string& p : pictures) s << "<p><img src=\"" << html_escape(p) << "\" alt=\"" << html_escape(p) << "\"></p>\n";
  s << "</body></html>\n";
  write("index.html", s.str());
}

}  // namespace gradhpo::tools
