#include "plot.h"

#include <algorithm>
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
      // noenhanced: labels print as typed ("L_val", "beta^2"), not as gnuplot's markup.
      << "set terminal term size 800,500 noenhanced\nset output out\n"
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

/// The series colours, in order: distinct hues that stay apart in print and for the common
/// colour-vision deficiencies (Okabe & Ito's palette).
const char* colour(std::size_t k) {
  static const char* const colours[] = {"#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#000000"};
  return colours[k % (sizeof colours / sizeof *colours)];
}

bool whole(double x) { return std::isfinite(x) && x == std::floor(x); }

}  // namespace

std::string gnuplot_script(const LinePlot& p) {
  require(!p.series.empty(), "plot '" + p.title + "': no data");
  std::ostringstream s;
  s.precision(10);
  bool whole_x = true;
  double lo = INFINITY, hi = -INFINITY;
  for (std::size_t k = 0; k < p.series.size(); ++k) {
    require(p.series[k].x.size() == p.series[k].y.size(), "plot '" + p.title + "': series '" + p.series[k].name +
                                                                "' has " + std::to_string(p.series[k].x.size()) + " x and " +
                                                                std::to_string(p.series[k].y.size()) + " y values");
    s << "$d" << k << " << EOD\n";
    for (std::size_t i = 0; i < p.series[k].x.size(); ++i)
      if (std::isfinite(p.series[k].y[i])) {
        const double x = p.series[k].x[i];
        s << x << " " << p.series[k].y[i] << "\n";
        whole_x = whole_x && whole(x);
        lo = std::min(lo, x);
        hi = std::max(hi, x);
      }
    s << "EOD\n";
  }
  s << "set title " << quoted(p.title) << "\nset xlabel " << quoted(p.xlabel) << "\nset ylabel " << quoted(p.ylabel)
    << "\nset grid\nset key below\nset offsets 0, 0, graph 0.05, graph 0.05\n";
  // Steps are whole numbers: tics at every step over a short axis, else whole-number labels
  // (gnuplot's own tics over 0..3 would put one at 0.5).
  if (whole_x && lo <= hi) s << (hi - lo <= 10 ? "set xtics 1\n" : "set format x '%.0f'\n");
  if (p.log_y) s << "set logscale y\n";
  s << "plot ";
  for (std::size_t k = 0; k < p.series.size(); ++k)
    s << (k ? ", " : "") << "$d" << k << " using 1:2 with " << (p.steps ? "steps" : "linespoints") << " lw 2 lc rgb '"
      << colour(k) << "' title " << quoted(p.series[k].name);
  s << "\n";
  return s.str();
}

std::string gnuplot_script(const BarPlot& p) {
  const bool grouped = !p.series.empty();
  require(!p.labels.empty(), "plot '" + p.title + "': no bars");
  require(grouped || p.values.size() == p.labels.size(), "plot '" + p.title + "': labels and values differ");
  for (const BarSeries& b : p.series)
    require(b.values.size() == p.labels.size(), "plot '" + p.title + "': series '" + b.name + "' has " +
                                                    std::to_string(b.values.size()) + " values for " +
                                                    std::to_string(p.labels.size()) + " labels");
  const std::vector<BarSeries> series = grouped ? p.series : std::vector<BarSeries>{{"", p.values}};
  std::ostringstream s;
  s.precision(10);
  // One row per label: its position, each series' value ("NaN": no bar), the label.
  s << "$d << EOD\n";
  for (std::size_t i = 0; i < p.labels.size(); ++i) {
    s << i;
    for (const BarSeries& b : series) s << " " << (std::isfinite(b.values[i]) ? b.values[i] : NAN);
    s << " " << quoted(p.labels[i]) << "\n";
  }
  const double n = static_cast<double>(series.size()), width = 0.7 / n;
  s << "EOD\nset title " << quoted(p.title) << "\nset ylabel " << quoted(p.ylabel)
    << "\nset style fill solid 0.8 border -1\nset boxwidth " << width
    << "\nset grid ytics\nset xtics rotate by -30\nset bmargin 10\nset rmargin 12\n"
    // The value axis always includes 0, so a bar's height is its value.
    << "set yrange [*<0:0<*]\nset offsets 0.5, 0.5, graph 0.05, 0\n"
    << (grouped ? "set key outside right top\n" : "unset key\n") << "plot ";
  // With an even number of series no bar stands at the label: the tic labels come on their own.
  if (series.size() % 2 == 0) s << "$d using 1:(NaN):xtic(" << (series.size() + 2) << ") with boxes notitle, ";
  for (std::size_t k = 0; k < series.size(); ++k) {
    const double shift = (static_cast<double>(k) - (n - 1) / 2) * width;  // side by side around the label
    s << (k ? ", " : "") << "$d using ($1" << (shift < 0 ? "-" : "+") << std::abs(shift) << "):" << (k + 2);
    if (shift == 0) s << ":xtic(" << (series.size() + 2) << ")";
    s << " with boxes lc rgb '" << colour(k) << "' title " << quoted(series[k].name);
  }
  s << "\n";
  return s.str();
}

std::vector<std::string> draw(const LinePlot& p, const std::string& stem) { return render(gnuplot_script(p), stem); }

std::vector<std::string> draw(const BarPlot& p, const std::string& stem) { return render(gnuplot_script(p), stem); }

}  // namespace gradhpo::tools
