// Plots as SVG and PNG, drawn by gnuplot (Debian's gnuplot-nox): the data go into a gnuplot
// script next to the pictures (<stem>.gp), so every figure can be redrawn or restyled by hand.
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

struct BarPlot {
  std::string title, ylabel;
  std::vector<std::string> labels;
  std::vector<double> values;
};

/// Writes <stem>.gp, <stem>.svg and <stem>.png; returns the two picture paths. Throws Error
/// when gnuplot is missing or fails (its message included).
std::vector<std::string> draw(const LinePlot& plot, const std::string& stem);
std::vector<std::string> draw(const BarPlot& plot, const std::string& stem);

}  // namespace gradhpo::tools
