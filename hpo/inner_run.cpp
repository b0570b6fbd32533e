#include "inner_run.h"

#include <chrono>
#include <cmath>

#include "progress.h"

namespace gradhpo::hpo {

InnerRun run_inner(const BilevelProblem& problem, const Tensor& theta, const Segment* segment) {
  const auto start = std::chrono::steady_clock::now();
  Unroll u(problem, theta);
  u.set_check_reads(false);  // no hypergradient here: an unread group is no zero hypergradient
  const Segment seg = detail::resolve(u, segment);
  InnerRun out;
  InnerState s = seg.start;
  report_progress("train", 0, seg.steps);
  for (std::int64_t k = 0; k < seg.steps; ++k) {
    const LossPass lp = u.gradient(s.w(), seg.first + k);
    out.final_train_loss = lp.loss;
    s = u.step(s, lp.grad, seg.first + k);
    report_progress("train", k + 1, seg.steps);
  }
  Tape tape;
  tape.set_recording(false);
  const Var th = tape.variable(u.theta());
  out.val_loss = problem.val_loss(tape.variable(s.w()), HyperValues(problem.hyper, th, problem.horizon, problem.horizon)).item();
  out.final_state = std::move(s);
  out.steps = seg.steps;
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return out;
}

Candidate evaluate_candidate(const BilevelProblem& problem, const Tensor& theta) {
  Candidate sc;
  try {
    const InnerRun r = run_inner(problem, theta);
    sc.steps_run = r.steps;
    sc.final_train_loss = r.final_train_loss;
    if (std::isfinite(r.val_loss)) {
      sc.val_loss = r.val_loss;
      return sc;
    }
    sc.message = "the validation loss is not finite (" + std::to_string(r.val_loss) + ")";  // training stayed finite
    sc.failed_value = r.val_loss;
  } catch (const InnerDivergence& e) {
    sc.steps_run = e.step() + 1;
    sc.failed_step = e.step();
    sc.failed_value = e.value();
    sc.message = "inner step " + std::to_string(e.step()) + ": " + e.what();
  }
  sc.failed = true;
  return sc;
}

}  // namespace gradhpo::hpo
