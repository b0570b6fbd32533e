// The components with packages of their own, through the installed package: Bayesian
// optimization (gradhpo::bayesian: GSL's Sobol design, NLopt's optimizers) over the embedder's
// L2 coefficient must do at least as well as its start, and HOAG (gradhpo::hoag: libLBFGS) must
// not raise L_val. Run by gradhpo_consumer after its own checks.
#include <gradhpo/hpo/hoag/hoag.h>
#include <gradhpo/hpo/inner_run.h>
#include <gradhpo/hpo/search/bayesian/bayesian.h>

#include <cstdio>

#include "embed_problem.h"

using namespace gradhpo;

int main() {
  const hpo::BilevelProblem p = consumer::make_problem();
  const double start = hpo::run_inner(p, p.hyper.initial()).val_loss;
  hpo::BayesianOptions bo;
  bo.box = {{"l2", 1e-4, 10, true}};
  bo.budget.inner_steps = 8 * p.horizon;
  const hpo::SearchRun run = hpo::bayesian_optimization(p, bo);
  std::printf("%s\n", run.brief().c_str());
  const bool searched = run.trials.size() == 8 && run.best_val_loss() <= start + 1e-12;

  const hpo::BilevelProblem implicit = consumer::make_problem(false, 400);
  hpo::HoagOptions ho;
  ho.max_iterations = 5;
  const hpo::HoagRun hoag = hpo::run_hoag(implicit, ho);
  std::printf("HOAG: L_val %.6g -> %.6g in %zu iterations\n", hoag.iterations.front().val_loss,
              hoag.iterations.back().val_loss, hoag.iterations.size());
  const bool hoag_ran = hoag.iterations.back().val_loss <= hoag.iterations.front().val_loss;
  return searched && hoag_ran ? 0 : 1;
}
