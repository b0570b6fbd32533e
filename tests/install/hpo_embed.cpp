// An embedder of gradhpo::hpo alone (engine and nn underneath, nothing else) through the
// installed package: methods constructed by name from the registry, their options given as a
// key–value map and as a JSON object; every exact method agrees on the embedder's own problem;
// IFT runs by name; and hpo::solve learns the hyperparameters, saves its state, and continues
// from the saved state to the same bits as a run that was not interrupted.
#include <gradhpo/hpo/registry.h>
#include <gradhpo/hpo/solve.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <unistd.h>

#include "embed_problem.h"

using namespace gradhpo;

namespace {

using KeyValues = std::map<std::string, std::string>;  // a braced list alone is ambiguous with make_offline(name, Options)

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.nbytes() == b.nbytes() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

}  // namespace

int run_hpo_embed() {
  hpo::register_builtin_methods();  // explicit: a static library drops self-registering statics
  const hpo::Registry& registry = hpo::Registry::global();
  const hpo::BilevelProblem p = consumer::make_problem();
  const Tensor th = p.hyper.initial();

  // Every exact method by name, options as a key–value map or as a JSON object.
  const hpo::Hypergradient store = registry.make_offline("reverse")->compute(p, th);
  const hpo::Hypergradient exact = registry.make_offline_json("reverse", R"({"policy": "exact-reversal"})")->compute(p, th);
  const hpo::Hypergradient ckpt =
      registry.make_offline("reverse", KeyValues{{"policy", "checkpoint"}, {"checkpoint-every", "5"}})->compute(p, th);
  const hpo::Hypergradient fwd = registry.make_offline_json("forward", R"({"clip-hessian": 0})")->compute(p, th);
  double worst = 0;
  for (std::int64_t i = 0; i < th.numel(); ++i) {
    const double ref = store.d_theta.at(i);
    for (const hpo::Hypergradient* h : {&exact, &ckpt, &fwd})
      worst = std::max(worst, std::abs(h->d_theta.at(i) - ref) / std::max(1e-12, std::abs(ref)));
    std::printf("dL_val/d%s = %.10g\n", p.hyper.entry_name(i).c_str(), ref);
  }
  std::printf("largest relative disagreement between the four exact methods: %.3g\n", worst);

  // IFT by name, on the same problem with the L2 coefficient only (IFT takes loss-defining groups).
  const hpo::BilevelProblem implicit = consumer::make_problem(false, 400);
  const hpo::Hypergradient ift =
      registry.make_offline("ift", KeyValues{{"solver", "cg"}})->compute(implicit, implicit.hyper.initial());
  std::printf("IFT (CG): dL_val/dl2 = %.10g\n", ift.d_theta.at(0));

  // hpo::solve: 6 outer steps of the sign optimizer on forward mode, and the same run saved
  // after 3 steps and resumed from its state file.
  hpo::SolveOptions o;
  o.method = "forward";
  o.method_options = {{"clip-hessian", "0"}};
  o.outer.kind = hpo::OuterKind::sign;
  o.outer.step = {0.5, 0.01};
  o.outer.max_steps = 6;
  o.validate(p);
  const hpo::Summary whole = hpo::solve(p, o);
  std::printf("%s\n", whole.brief().c_str());
  const std::string state_file =
      (std::filesystem::temp_directory_path() / ("gradhpo_consumer_" + std::to_string(::getpid()) + ".state")).string();
  hpo::SolveOptions first = o;
  first.state_file = state_file;
  first.on_step = [](hpo::SolveRow& row, const Tensor&) { return row.step < 2; };
  (void)hpo::solve(p, first);
  const hpo::SolveState state = hpo::load_solve_state(state_file);
  std::filesystem::remove(state_file);
  hpo::SolveOptions rest = o;
  rest.resume = &state;
  const hpo::Summary resumed = hpo::solve(p, rest);
  const bool solved = whole.rows.size() == 6 && whole.rejections == 0 && whole.best_step >= 0 &&
                      whole.rows[static_cast<std::size_t>(whole.best_step)].val_loss < whole.rows[0].val_loss &&
                      resumed.rows.size() == 6 && same_bits(resumed.theta, whole.theta);
  std::printf("resumed after 3 steps: %s\n", same_bits(resumed.theta, whole.theta) ? "the same bits" : "DIFFERENT θ");
  return worst <= 1e-8 && std::isfinite(ift.d_theta.at(0)) && solved ? 0 : 1;
}
