// The gradhpo program as a user runs it: the demo's table, a short training run, and errors.
#include "cli.h"

#include <sstream>
#include <string>
#include <vector>

using gradhpo::testing::Run;
using gradhpo::testing::run;

TEST_CASE("gradhpo demo: every derivative matches finite differences") {
  const Run r = run("demo");
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
  // Learning, not only finishing: chance is 10% and a loss of ln 10 = 2.30 (this run reaches
  // about 69% and a test loss of 0.93; a broken gradient stays near chance).
  auto number_after = [&](const std::string& label) {
    const std::size_t at = r.output.find(label);
    REQUIRE_MESSAGE(at != std::string::npos, "no '" << label << "' in the output");
    return std::stod(r.output.substr(at + label.size()));
  };
  CHECK(number_after("final    test accuracy ") >= 60.0);
  CHECK(number_after("% (loss ") <= 1.3);
}

TEST_CASE("gradhpo train: a last batch of one example trains") {
  // 129 training examples in batches of 128: the second batch holds one example.
  const Run r = run("train --model mlp --hidden 32 --epochs 1 --train-limit 129 --threads 1 --no-progress");
  INFO(r.output);
  CHECK(r.status == 0);
  CHECK(r.output.find("final    test accuracy") != std::string::npos);
}

TEST_CASE("GRADHPO_GEMM forces a GEMM library, and a bad value is an error") {
  const std::string args = "train --model mlp --hidden 32 --epochs 1 --train-limit 256 --threads 1 --no-progress";
  for (const char* library : {"eigen", "openblas", "auto"}) {
    const Run r = run(args, std::string("GRADHPO_GEMM=") + library);
    INFO(library << ": " << r.output);
    // openblas may be unusable in a build without it: then the error says so.
    if (std::string(library) == "openblas" && r.status != 0) CHECK(r.output.find("GRADHPO_GEMM=openblas, but") != std::string::npos);
    else CHECK(r.status == 0);
  }
  const Run bad = run(args, "GRADHPO_GEMM=mkl");
  CHECK(bad.status != 0);
  CHECK(bad.output.find("GRADHPO_GEMM: expected eigen, openblas or auto, got 'mkl'") != std::string::npos);
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

TEST_CASE("gradhpo constructs methods by their registry names and refuses unknown names and options") {
  // "greedy" names no comparison entry: the online method is online-greedy, the greedy setting
  // of the outer loop is forward-greedy.
  const Run greedy = run("compare --methods greedy");
  CHECK(greedy.status != 0);
  CHECK(greedy.output.find("--methods: greedy not in {") != std::string::npos);
  CHECK(greedy.output.find("online-greedy") != std::string::npos);
  CHECK(greedy.output.find("forward-greedy") != std::string::npos);
  const Run method = run("check --method no-such-method");
  CHECK(method.status != 0);
  CHECK(method.output.find("'no-such-method' is not an offline hypergradient method; offline methods: ") != std::string::npos);
  const Run online = run("check --method online-greedy");
  CHECK(online.status != 0);
  CHECK(online.output.find("'online-greedy' is not an offline hypergradient method (it is online)") != std::string::npos);
  const Run option = run("check --method reverse --option colour=blue");
  CHECK(option.status != 0);
  CHECK(option.output.find("reverse: no option 'colour'") != std::string::npos);
  const Run malformed = run("check --method reverse --option colour");
  CHECK(malformed.status != 0);
  CHECK(malformed.output.find("--option: 'colour' is not key=value") != std::string::npos);
  const Run help = run("check --help");
  CHECK(help.status == 0);
  CHECK(help.output.find("Offline methods (--method NAME, --option key=value):") != std::string::npos);
}

TEST_CASE("gradhpo methods lists every registered method of each kind with its options") {
  const Run r = run("methods");
  REQUIRE(r.status == 0);
  for (const char* name : {"  reverse: ", "  forward: ", "  ift: ", "  drmad: ", "  t1t2: ", "  greedy: ", "  online-t1t2: ",
                           "  hyperdistill: ", "  hypergradient-descent: ", "  random: ", "  grid: ", "  bayesian: ", "  hoag: "})
    CHECK_MESSAGE(r.output.find(name) != std::string::npos, name);
  CHECK(r.output.find("--policy <store-all | exact-reversal | checkpoint | auto> (default store-all)") != std::string::npos);
  CHECK(r.output.find("--solver <cg | neumann | exact>") != std::string::npos);
}
