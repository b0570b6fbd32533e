// The offline hypergradient methods' registry entries (registry.h): name, summary, citation,
// options, support, exactness (with the reference an approximation is checked against) and the
// option sets the registry-wide tests run besides the defaults.
#include "../registry.h"
#include "drmad.h"
#include "forward.h"
#include "implicit.h"
#include "one_step.h"
#include "references.h"
#include "reverse.h"

namespace gradhpo::hpo {

namespace {

template <class M>
std::function<std::unique_ptr<Method>(const Options&)> maker() {
  return [](const Options& o) { return std::make_unique<M>(o); };
}

}  // namespace

void register_offline_methods(Registry& r) {
  OfflineEntry reverse;
  reverse.name = "reverse";
  reverse.summary = "reverse-mode differentiation through training: the exact hypergradient, store-all, exact reversal "
                    "(SGD with momentum) or checkpointing";
  reverse.citation = "Maclaurin, Duvenaud & Adams 2015, Algorithms 2-3; Franceschi et al. 2017, Eq. 7-8";
  reverse.options = reverse_option_specs();
  reverse.exactness = Exactness::exact;
  reverse.test_variants = {{{"policy", "exact-reversal"}}, {{"policy", "checkpoint"}}, {{"policy", "checkpoint"}, {"checkpoint-every", "7"}}};
  reverse.make = maker<ReverseMethod>();
  r.add(std::move(reverse));

  OfflineEntry forward;
  forward.name = "forward";
  forward.summary = "forward-mode differentiation through training: the exact hypergradient, memory constant in T, "
                    "one K-direction pass per step";
  forward.citation = "Franceschi et al. 2017, Section 3.2; Micaelli & Storkey 2021, Eq. 4-7 and Appendix A";
  forward.options = forward_option_specs();
  forward.exactness = Exactness::exact;  // with its defaults: clipping and truncation change the numbers
  forward.test_variants = {{{"single-direction", "true"}}};
  forward.make = maker<ForwardMethod>();
  r.add(std::move(forward));

  OfflineEntry ift;
  ift.name = "ift";
  ift.summary = "the implicit function theorem at the weights training reached, with CG, a Neumann series or a dense "
                "solve for the inverse-Hessian product";
  ift.citation = "Lorraine, Vicol & Duvenaud 2020, Theorem 1 and Algorithms 2-3; Pedregosa 2016, Algorithm 1";
  ift.options = ift_option_specs();
  ift.support = Support::loss_defining_only();
  ift.exactness = Exactness::approximation;
  ift.reference = reference::ift;
  ift.test_variants = {{{"solver", "neumann"}}, {{"solver", "neumann"}, {"iterations", "0"}}, {{"solver", "exact"}}};
  ift.make = maker<ImplicitMethod>();
  r.add(std::move(ift));

  OfflineEntry drmad;
  drmad.name = "drmad";
  drmad.summary = "reverse mode along the straight line between S_0 and S_T instead of the stored trajectory";
  drmad.citation = "Fu, Luo, Liu, Yan & Chua 2016, Section 3, Algorithm 1";
  drmad.exactness = Exactness::approximation;
  drmad.reference = reference::drmad;
  drmad.make = maker<DrmadMethod>();
  r.add(std::move(drmad));

  OfflineEntry t1t2;
  t1t2.name = "t1t2";
  t1t2.summary = "the one-step hypergradient of the last inner step (T1-T2), exact or in DARTS' finite-difference form";
  t1t2.citation = "Luketina, Berglund, Greff & Raiko 2016, Eq. 4; Liu, Simonyan & Yang 2019 (DARTS), Eq. 7-8";
  t1t2.options = t1t2_option_specs();
  t1t2.exactness = Exactness::approximation;
  t1t2.reference = reference::t1t2;
  t1t2.test_variants = {{{"darts-radius", "0.01"}}};
  t1t2.make = maker<T1t2Method>();
  r.add(std::move(t1t2));

  OfflineEntry greedy;
  greedy.name = "greedy";
  greedy.summary = "generalized greedy: the gamma-weighted sum of the one-step hypergradients along the run";
  greedy.citation = "HippoTrainer, generalized greedy gradient-based HPO; Luketina et al. 2016, Eq. 4 per step";
  greedy.options = greedy_option_specs();
  greedy.exactness = Exactness::approximation;
  greedy.reference = reference::greedy;
  greedy.test_variants = {{{"gamma", "0"}}};
  greedy.make = maker<GreedyMethod>();
  r.add(std::move(greedy));
}

}  // namespace gradhpo::hpo
