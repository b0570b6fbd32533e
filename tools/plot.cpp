#include "plot.h"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include <gradhpo/engine/error.h>
#include <gradhpo/hpo/run_store.h>

namespace gradhpo::tools {

namespace {

std::string quoted(const std::string& s) {
  std::string q = "\"";
  for (char c : s) q += (c == '"' || c == '\\') ? std::string("\\") + c : std::string(1, c);
  return q + "\"";
}

/// Runs the script once per terminal; the pictures replace <stem>.svg / <stem>.png.
std::vector<std::string> render(const std::string& body, const std::string& stem) {
  std::vector<std::string> out;
  const std::string script = stem + ".gp";
  {
    // Through the run store's commit primitive: a kill never leaves a torn script.
    std::ostringstream f;
    f << "# gnuplot script written by gradhpo; run `gnuplot -e \"term='svg'; out='x.svg'\" " << script << "`\n"
      << "if (!exists(\"term\")) term = 'svg'\nif (!exists(\"out\")) out = '" << stem << ".svg'\n"
      << "set terminal term size 800,500\nset output out\n"
      << body;
    hpo::commit_file(script, f.str());
  }
  for (const char* term : {"svg", "pngcairo"}) {
    const std::string ext = std::string(term) == "svg" ? ".svg" : ".png";
    // gnuplot draws into a temporary file renamed over the picture: never a half-drawn picture.
    const std::string drawn = stem + ext + ".tmp";
    const std::string cmd = "gnuplot -e \"term='" + std::string(term) + "'; out='" + drawn + "'\" " + script + " 2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    require(p != nullptr, "plot: cannot run gnuplot (install the Debian package gnuplot-nox)");
    std::string msg;
    char buf[256];
    while (fgets(buf, sizeof buf, p)) msg += buf;
    const int rc = pclose(p);
    require(rc == 0, "plot: gnuplot failed on '" + script + "' (exit " + std::to_string(rc) + "): " + msg +
                         (rc == 127 << 8 ? " (install the Debian package gnuplot-nox)" : ""));
    require(std::rename(drawn.c_str(), (stem + ext).c_str()) == 0, "plot: cannot rename '" + drawn + "' to '" + stem + ext + "'");
    out.push_back(stem + ext);
  }
  return out;
}

}  // namespace

std::vector<std::string> draw(const LinePlot& p, const std::string& stem) {
  require(!p.series.empty(), "plot '" + p.title + "': no data");
  std::ostringstream s;
  s.precision(10);
  for (std::size_t k = 0; k < p.series.size(); ++k) {
    s << "$d" << k << " << EOD\n";
    for (std::size_t i = 0; i < p.series[k].x.size(); ++i)
      if (std::isfinite(p.series[k].y[i])) s << p.series[k].x[i] << " " << p.series[k].y[i] << "\n";
    s << "EOD\n";
  }
  s << "set title " << quoted(p.title) << "\nset xlabel " << quoted(p.xlabel) << "\nset ylabel " << quoted(p.ylabel)
    << "\nset grid\nset key below\nset offsets 0, 0, graph 0.05, graph 0.05\n";
  if (p.log_y) s << "set logscale y\n";
  s << "plot ";
  for (std::size_t k = 0; k < p.series.size(); ++k)
    s << (k ? ", " : "") << "$d" << k << " using 1:2 with " << (p.steps ? "steps" : "linespoints") << " lw 2 title "
      << quoted(p.series[k].name);
  s << "\n";
  return render(s.str(), stem);
}

std::vector<std::string> draw(const BarPlot& p, const std::string& stem) {
  require(!p.values.empty() && p.values.size() == p.labels.size(), "plot '" + p.title + "': labels and values differ");
  std::ostringstream s;
  s.precision(10);
  s << "$d << EOD\n";
  for (std::size_t i = 0; i < p.values.size(); ++i) s << i << " " << p.values[i] << " " << quoted(p.labels[i]) << "\n";
  s << "EOD\nset title " << quoted(p.title) << "\nset ylabel " << quoted(p.ylabel)
    << "\nset style fill solid 0.7\nset boxwidth 0.6\nset grid ytics\nset xtics rotate by -30\nset bmargin 10\nset rmargin 12\nunset key\n"
    << "plot $d using 1:2:xtic(3) with boxes lc rgb '#3060a0'\n";
  return render(s.str(), stem);
}

}  // namespace gradhpo::tools
