// The gnuplot scripts behind every picture the program draws (tools/plot.h): bar charts from
// zero, distinct colours with a legend, whole-number step tics, and labels drawn as typed.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <unistd.h>
#include <string>

#include "../../tools/plot.h"

using namespace gradhpo::tools;

namespace {

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

/// The colours the script's plot clauses use ("lc rgb '#0072b2'").
std::vector<std::string> colours(const std::string& script) {
  std::vector<std::string> out;
  const std::regex lc("lc rgb '(#[0-9a-f]{6})'");
  for (auto it = std::sregex_iterator(script.begin(), script.end(), lc); it != std::sregex_iterator(); ++it)
    out.push_back((*it)[1]);
  return out;
}

std::string read(const std::filesystem::path& file) {
  std::ifstream f(file);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

}  // namespace

TEST_CASE("a bar chart's value axis starts at zero") {
  // The quickstart's case: accuracies of 36% and 80% (gnuplot's autoscale put the axis at 35).
  const BarPlot bars{"test accuracy at an equal budget", "test accuracy (%)", {"forward", "random"}, {36.0, 80.0}};
  const std::string s = gnuplot_script(bars);
  INFO(s);
  CHECK(has(s, "set yrange [*<0:0<*]"));
  CHECK(has(s, "unset key"));  // one series: no legend to read
}

TEST_CASE("paper and ours are two series in distinct colours with a legend") {
  BarPlot bars{"paper vs ours: ms-table1", "test accuracy (%)", {"forward", "greedy", "random"}, {}};
  bars.series = {{"paper", {98.7, 97.5, 98.0}}, {"ours", {97.1, NAN, 95.2}}};
  const std::string s = gnuplot_script(bars);
  INFO(s);
  const std::vector<std::string> c = colours(s);
  REQUIRE(c.size() == 2);
  CHECK(c[0] != c[1]);
  CHECK(has(s, "title \"paper\""));
  CHECK(has(s, "title \"ours\""));
  CHECK(has(s, "set key"));
  CHECK_FALSE(has(s, "unset key"));
  CHECK(has(s, "xtic(4)"));          // the methods label the groups
  CHECK(has(s, "1 97.5 nan \"greedy\""));  // a method we did not run: no bar, not a bar at 0
  CHECK(has(s, "set yrange [*<0:0<*]"));
  CHECK_THROWS_WITH(gnuplot_script(BarPlot{"t", "y", {"a", "b"}, {}, {{"paper", {1.0}}}}),
                    doctest::Contains("series 'paper' has 1 values for 2 labels"));
}

TEST_CASE("line plots give every series its own colour and name it in the legend") {
  LinePlot p{"learning-rate schedule", "inner step", "learning rate", {}, false, true};
  for (int k = 0; k < 3; ++k) p.series.push_back({"method " + std::to_string(k), {0, 100, 200}, {0.1, 0.2 * k, 0.3}});
  const std::string s = gnuplot_script(p);
  INFO(s);
  const std::vector<std::string> c = colours(s);
  REQUIRE(c.size() == 3);
  CHECK(std::set<std::string>(c.begin(), c.end()).size() == 3);
  CHECK(has(s, "set key"));
  for (int k = 0; k < 3; ++k) CHECK(has(s, "title \"method " + std::to_string(k) + "\""));
}

TEST_CASE("an axis of steps has whole-number tics") {
  // Three outer steps: gnuplot's own tics would be 0, 0.5, 1, ..., 2.
  const LinePlot few{"validation loss per outer step", "outer step", "L_val", {{"L_val", {0, 1, 2}, {0.9, 0.7, 0.6}}}};
  CHECK(has(gnuplot_script(few), "set xtics 1\n"));
  const LinePlot many{"schedule", "inner step", "learning rate", {{"lr", {0, 40, 80, 120, 160, 200}, {1, 1, 2, 2, 3, 3}}}};
  CHECK(has(gnuplot_script(many), "set format x '%.0f'\n"));
  // An axis that is not of whole numbers keeps gnuplot's tics.
  const LinePlot real{"t", "seconds", "loss", {{"l", {0.5, 1.25}, {1, 2}}}};
  CHECK_FALSE(has(gnuplot_script(real), "set xtics 1"));
  CHECK_FALSE(has(gnuplot_script(real), "set format x"));
}

TEST_CASE("labels are drawn as typed: L_val is not L with a subscript") {
  const auto dir = std::filesystem::temp_directory_path() / ("gradhpo-plot-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const LinePlot p{"validation loss L_val per outer step", "outer step", "L_val", {{"x^2 & {a}", {0, 1, 2}, {0.9, 0.7, 0.6}}}};
  const std::vector<std::string> pics = draw(p, (dir / "val_loss").string());
  REQUIRE(pics.size() == 2);
  const std::string gp = read(dir / "val_loss.gp"), svg = read(dir / "val_loss.svg");
  CHECK(has(gp, "noenhanced"));
  INFO(svg.substr(0, 4000));
  // In enhanced mode gnuplot writes "L" and a subscript "v" in separate text spans.
  CHECK(has(svg, "L_val"));
  CHECK(has(svg, "x^2 &amp; {a}"));
  CHECK(std::filesystem::file_size(dir / "val_loss.png") > 1000);
  std::filesystem::remove_all(dir);
}
