#include "rank_fault.h"

#include <csignal>
#include <cstdlib>
#include <memory>
#include <sstream>

#include <gradhpo/engine/error.h>

#include "ranks.h"

namespace gradhpo::tools {

namespace {

/// Where a fault strikes: rank, outer step, inner step.
struct FaultPoint {
  int rank = -1;
  std::int64_t outer = -1, inner = -1;
};

/// $`variable` as "r:o:i" (rank -1 when it is unset: no fault).
FaultPoint read_fault(const char* variable) {
  FaultPoint p;
  const char* text = std::getenv(variable);
  if (!text || !*text) return p;
  std::istringstream in(text);
  char colon1 = 0, colon2 = 0;
  in >> p.rank >> colon1 >> p.outer >> colon2 >> p.inner;
  require(in && in.peek() == std::char_traits<char>::eof() && colon1 == ':' && colon2 == ':' && p.rank >= 0 &&
              p.outer >= 0 && p.inner >= 0,
          std::string(variable) + "='" + text + "': expected rank:outer:inner, three numbers >= 0 (e.g. 1:1:2)");
  return p;
}

}  // namespace

void arm_rank_fault(hpo::BilevelProblem& problem, hpo::SolveOptions& so) {
  const FaultPoint kill = read_fault("GRADHPO_FAULT_KILL_RANK");
  const FaultPoint fail = read_fault("GRADHPO_FAULT_THROW_RANK");
  const int me = ranks().rank;
  if (kill.rank != me && fail.rank != me) return;
  // The outer step in progress: the resumed state's next one, then one past each finished step.
  auto outer = std::make_shared<std::int64_t>(so.resume ? so.resume->next_step : 0);
  problem.train_loss = [loss = problem.train_loss, outer, kill, fail, me](const Var& w, const hpo::HyperValues& h,
                                                                        std::int64_t step) {
    if (kill.rank == me && kill.outer == *outer && kill.inner == step) std::raise(SIGKILL);
    if (fail.rank == me && fail.outer == *outer && fail.inner == step)
      throw Error("fault injected by GRADHPO_FAULT_THROW_RANK at outer step " + std::to_string(*outer) +
                  ", inner step " + std::to_string(step));
    return loss(w, h, step);
  };
  so.on_step = [on_step = so.on_step, outer](hpo::SolveRow& row, const Tensor& w) {
    *outer = row.step + 1;
    return on_step ? on_step(row, w) : true;
  };
}

}  // namespace gradhpo::tools
