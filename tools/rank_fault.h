// Fault injection for the program among MPI ranks (tests/tools/test_distribute.cpp): one rank
// dies, or throws, in the middle of an outer step, and the test checks that the job ends naming
// that rank and that the run folder resumes — with this rank count and with another.
//
//   GRADHPO_FAULT_KILL_RANK=r:o:i    rank r raises SIGKILL on itself as it starts inner step i of
//                                    outer step o (both counted from 0, as results.json counts
//                                    them): no handler runs and nothing is flushed — a lost node,
//                                    the OOM killer. mpirun reports the rank and ends the job.
//   GRADHPO_FAULT_THROW_RANK=r:o:i   rank r throws gradhpo::Error there instead: the program's
//                                    error path (main.cpp, abort_other_ranks) ends the job.
//
// "Starts inner step i" is the rank's first evaluation of the training loss at step i in that
// outer step. Unset (always, outside tests): arm_rank_fault changes nothing.
#pragma once

#include <gradhpo/hpo/solve.h>

namespace gradhpo::tools {

/// Arms the faults the environment asks for on this rank: wraps `problem.train_loss` (to meet
/// inner step i) and `so.on_step` (to count outer steps from so.resume's next step, or 0). Call
/// once, after so.on_step and so.resume are set, just before hpo::solve. Throws Error on a
/// malformed value, naming the variable and the form it takes.
void arm_rank_fault(hpo::BilevelProblem& problem, hpo::SolveOptions& so);

}  // namespace gradhpo::tools
