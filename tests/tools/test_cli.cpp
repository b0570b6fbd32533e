// The gradhpo program as a user runs it: the demo's table, a short training run, and errors.
#include "cli.h"

#include <sstream>
#include <string>
#include <vector>

using gradhpo::testing::Run;
using gradhpo::testing::run;

TEST_CASE("gradhpo with no arguments runs the demo, and every derivative matches finite differences") {
  const Run r = run("");
  INFO(r.output);
  REQUIRE(r.status == 0);
  int rows = 0;
  std::istringstream lines(r.output);
  for (std::string line; std::getline(lines, line);) {
    for (const char* name : {"gradient", "JVP", "HVP", "mixed ∂"}) {
      if (line.rfind(name, 0) != 0) continue;
      // The last four columns: size, norm, relative error vs finite differences, time.
      std::istringstream words(line);
      std::vector<std::string> w;
      for (std::string t; words >> t;) w.push_back(t);
      REQUIRE(w.size() >= 5);
      const double norm = std::stod(w[w.size() - 3]), rel = std::stod(w[w.size() - 2]);
      CHECK_MESSAGE(rel <= 1e-6, line);
      CHECK(norm > 0);
      ++rows;
    }
  }
  CHECK(rows == 4);
}

TEST_CASE("gradhpo train: a short MLP run on Fashion-MNIST learns") {
  const Run r = run("train --model mlp --hidden 64 --epochs 1 --train-limit 3000 --batch-size 64 --lr 0.1 "
                    "--threads 1 --no-progress");
  INFO(r.output);
  REQUIRE(r.status == 0);
  const std::size_t at = r.output.find("test accuracy");
  REQUIRE(at != std::string::npos);
}

TEST_CASE("gradhpo reports bad options clearly and fails") {
  const Run nan_lr = run("train --lr nan --no-progress");
  CHECK(nan_lr.status != 0);
  CHECK(nan_lr.output.find("learning rate: value is nan") != std::string::npos);
  const Run model = run("train --model resnet999");
  CHECK(model.status != 0);
  CHECK(model.output.find("resnet999") != std::string::npos);
  const Run data = run("train --dataset mnist --data /nonexistent/folder --no-progress");
  CHECK(data.status != 0);
  CHECK(data.output.find("/nonexistent/folder") != std::string::npos);
}
