// The online methods' registry entries (registry.h, "online"): each declares its options once;
// the outer optimizer that moves θ after every inner step is the caller's OuterOptions.
#include <cmath>

#include "../registry.h"
#include "greedy.h"
#include "hyperdistill.h"
#include "hypergradient_descent.h"
#include "t1t2.h"

namespace gradhpo::hpo {

namespace {

/// γ ∈ [0, 1): the largest double below 1 is the inclusive upper bound.
const double kBelowOne = std::nextafter(1.0, 0.0);

OptionSpec darts_radius_option() {
  return OptionSpec::real("darts-radius", 0, 0, 1e6,
                          "0: the exact mixed product ∂_λ(ḡ·∇_w L_train); > 0: DARTS' central difference in weight "
                          "space with ‖w⁺ − w⁻‖ = 2 × this (Liu et al. 2019, Eq. 8; DARTS uses 0.01)");
}

OnlineEntry t1t2_entry() {
  OnlineEntry e;
  e.name = "online-t1t2";
  e.summary = "T1–T2: λ moves after every inner step along the hypergradient through that one step";
  e.citation = "Luketina et al. 2016, Section 2, Eq. 3–4; DARTS form: Liu et al. 2019, Eq. 8";
  e.options = {darts_radius_option()};
  e.make = [](const BilevelProblem& p, const OuterOptions& outer, const Options& o) {
    T1T2Options t;
    t.darts_radius = o.real("darts-radius");
    return std::unique_ptr<OnlineMethod>(std::make_unique<T1T2>(p, outer, t));
  };
  return e;
}

OnlineEntry greedy_entry() {
  OnlineEntry e;
  e.name = "online-greedy";
  e.summary = "generalized greedy: the one-step terms of T1–T2 summed with forgetting factor γ, top-k entries updated";
  e.citation = "GradHpO slides, \"Generalized Greedy Gradient-Based HPO\" (h_t = γ h_{t−1} + one-step term)";
  e.options = {OptionSpec::real("gamma", 0.9, 0, kBelowOne, "forgetting factor γ in [0, 1) (γ → 0: T1–T2)"),
               OptionSpec::integer("top-k", 0, 0, std::int64_t{1} << 40,
                                   "update only the k entries of largest |h_t| each step (0: every entry)"),
               darts_radius_option()};
  e.make = [](const BilevelProblem& p, const OuterOptions& outer, const Options& o) {
    GreedyOptions g;
    g.gamma = o.real("gamma");
    g.top_k = o.integer("top-k");
    g.darts_radius = o.real("darts-radius");
    return std::unique_ptr<OnlineMethod>(std::make_unique<GeneralizedGreedy>(p, outer, g));
  };
  return e;
}

OnlineEntry hyperdistill_entry() {
  OnlineEntry e;
  e.name = "hyperdistill";
  e.summary = "HyperDistill: the γ-discounted second-order term distilled into one Jacobian product per step";
  e.citation = "Lee et al. 2022 (ICLR), Section 3, Algorithm 1";
  e.options = {OptionSpec::real("gamma", 0.9, 0, kBelowOne, "decay γ of the distilled horizon, in [0, 1)"),
               OptionSpec::integer("fit-every", 20, 0, std::int64_t{1} << 40,
                                   "steps between least-squares fits of the scale θ (0: never; θ stays 1)")};
  e.make = [](const BilevelProblem& p, const OuterOptions& outer, const Options& o) {
    HyperDistillOptions h;
    h.gamma = o.real("gamma");
    h.fit_every = o.integer("fit-every");
    return std::unique_ptr<OnlineMethod>(std::make_unique<HyperDistill>(p, outer, h));
  };
  return e;
}

OnlineEntry hypergradient_descent_entry() {
  OnlineEntry e;
  e.name = "hypergradient-descent";
  e.summary = "hypergradient descent: one global learning rate moved by ∇f(w_t)·∂w_t/∂α_{t−1} before every step";
  e.citation = "Baydin et al. 2018, Section 2, Algorithms 1–3";
  e.support.kinds = {HyperKind::learning_rate};
  e.make = [](const BilevelProblem& p, const OuterOptions& outer, const Options&) {
    return std::unique_ptr<OnlineMethod>(std::make_unique<HypergradientDescent>(p, outer));
  };
  return e;
}

}  // namespace

void register_online_methods(Registry& r) {
  r.add(t1t2_entry());
  r.add(greedy_entry());
  r.add(hyperdistill_entry());
  r.add(hypergradient_descent_entry());
}

}  // namespace gradhpo::hpo
