// Plots as SVG and PNG, drawn by gnuplot (Debian's gnuplot-nox): the data go into a gnuplot
// script next to the pictures (<stem>.gp), so every figure can be redrawn or restyled by hand.
//
// Every script: enhanced text off (a label "L_val" prints as typed, not L with a subscript v),
// one distinct colour per series with a legend, bar charts whose value axis includes 0 (a 36% bar
// is not drawn as empty above an axis starting at 35), and whole-number tics on an x axis whose
// points are all whole numbers (steps: no tic at 2.5).
#pragma once

#include <string>
#include <vector>

namespace gradhpo::tools {

struct Series {
  std::string name;
  std::vector<double> x, y;
};

struct LinePlot {
  std::string title, xlabel, ylabel;
  std::vector<Series> series;
  bool log_y = false;
  bool steps = false;  ///< draw as a step function (a schedule shared over blocks)
};

/// One series of a grouped bar chart: a value per label (NaN: no bar).
struct BarSeries {
  std::string name;
  std::vector<double> values;
};

struct BarPlot {
  std::string title, ylabel;
  std::vector<std::string> labels;
  std::vector<double> values;  ///< one bar per label, in one colour, no legend
  /// Instead of `values`: several series side by side at each label ("paper", "ours"), each in
  /// its own colour, named in the legend.
  std::vector<BarSeries> series = {};
};

/// The gnuplot script draw() writes, before the lines that choose the terminal and the output:
/// what the tests read.
std::string gnuplot_script(const LinePlot& plot);
std::string gnuplot_script(const BarPlot& plot);

/// Writes <stem>.gp, <stem>.svg and <stem>.png; returns the two picture paths. Throws Error
/// when gnuplot is missing or fails (its message included).
std::vector<std::string> draw(const LinePlot& plot, const std::string& stem);
std::vector<std::string> draw(const BarPlot& plot, const std::string& stem);

}  // namespace gradhpo::tools
