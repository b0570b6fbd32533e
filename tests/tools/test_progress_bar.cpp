// The progress bar's ETA (tools/progress.h, tools/loop_progress.h): the time left at the pace so
// far, on the bar of every long loop.
#include <doctest/doctest.h>

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include <gradhpo/hpo/progress.h>

#include "../../tools/loop_progress.h"
#include "../../tools/progress.h"

using namespace gradhpo;
using namespace gradhpo::tools;

TEST_CASE("eta_text: the time left at the pace so far, nothing before a pace or after the end") {
  CHECK(eta_text(30, 0.25) == "ETA 1m30s");
  CHECK(eta_text(10, 0.5) == "ETA 10s");
  CHECK(eta_text(3600, 0.5) == "ETA 1h00m");
  CHECK(eta_text(5, 0).empty());
  CHECK(eta_text(5, 1).empty());
  CHECK(eta_text(5, NAN).empty());
}

TEST_CASE("the hpo loops' bar shows the fraction done and an ETA") {
  // Draw into a file in place of the terminal's stderr.
  char path[] = "/tmp/gradhpo-bar-XXXXXX";
  const int fd = ::mkstemp(path);
  REQUIRE(fd >= 0);
  std::fflush(stderr);
  const int saved = ::dup(STDERR_FILENO);
  ::dup2(fd, STDERR_FILENO);
  {
    LoopProgress bar("hpo forward", /*enabled=*/true);
    hpo::report_progress("outer", 0, 4);
    hpo::report_progress("forward", 0, 10);
    std::this_thread::sleep_for(std::chrono::milliseconds(150));  // past the redraw throttle
    hpo::report_progress("forward", 10, 10);
    hpo::report_progress("outer", 1, 4);
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    hpo::report_progress("forward", 5, 10);  // 1.5 of 4 outer steps
  }
  std::fflush(stderr);
  ::dup2(saved, STDERR_FILENO);
  ::close(saved);
  ::close(fd);
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  ::unlink(path);
  const std::string out = s.str();
  INFO(out);
  CHECK(out.find("hpo forward outer 1/4 · forward 5/10 [") != std::string::npos);
  CHECK(out.find(" 38% ETA ") != std::string::npos);  // 1.5 / 4 done
}
