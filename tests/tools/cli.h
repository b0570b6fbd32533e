// Runs the built gradhpo program as a user would, capturing what it prints.
#pragma once

#include <doctest/doctest.h>

#include <array>
#include <cstdio>
#include <string>
#include <sys/wait.h>

namespace gradhpo::testing {

struct Run {
  int status;
  std::string output;  // stdout and stderr together
};

/// `env`: assignments put before the program, e.g. "GRADHPO_GEMM=eigen"; `cwd`: the folder it
/// runs in (default: the test's).
inline Run run(const std::string& args, const std::string& env = "", const std::string& cwd = "") {
  const std::string cmd = (cwd.empty() ? "" : "cd '" + cwd + "' && ") + (env.empty() ? "" : "env " + env + " ") +
                          std::string(GRADHPO_CLI) + " " + args + " 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string out;
  std::array<char, 4096> buf{};
  while (std::fgets(buf.data(), buf.size(), pipe)) out += buf.data();
  const int raw = pclose(pipe);
  return {WIFEXITED(raw) ? WEXITSTATUS(raw) : -1, out};
}

}  // namespace gradhpo::testing
