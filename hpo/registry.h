// The registry: every method of gradhpo, reached by name and options (DESIGN.md, "One Method
// interface, one registry").
//
// Three kinds of entry, one per way a method works:
//   offline  compute(problem, θ, segment) → Hypergradient     (method.h: reverse, forward, IFT,
//            DrMAD, one-step T1–T2/DARTS, greedy); an outer loop (solve.h) steps θ on it
//   online   init(θ₀) / step(state), optax-style                (online/: T1–T2, greedy,
//            HyperDistill, hypergradient descent); θ moves during one training run
//   search   run(problem, search options) → trials              (search/: random, grid; Bayesian
//            optimization and HOAG from their own components)
//
// Each entry declares its options once (options.h): the CLI flags, the JSON keys, validate() and
// `--help` all come from that list. The CLI, configs, the compare harness, the exactness ladder,
// hypervariance, the benchmarks and embedders construct methods only through here.
//
// Registration is an explicit call, never a self-registering static: a static in an installed
// static library is dropped by the linker when nothing references its object file.
//
//     hpo::Registry& r = hpo::Registry::global();
//     hpo::register_builtin_methods(r);                       // idempotent
//     auto m = r.make_offline("reverse", {{"policy", "checkpoint"}});
//     hpo::Hypergradient h = m->compute(problem, theta);
#pragma once

#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "method.h"
#include "online/online.h"
#include "search/trials.h"

namespace gradhpo::hpo {

enum class MethodKind : std::uint8_t { offline, online, search };
const char* method_kind_name(MethodKind k);

/// How an offline method's result relates to the true hypergradient of the run, which decides
/// what the registry-wide tests check it against (tests/hpo/test_registry.cpp).
enum class Exactness : std::uint8_t {
  /// The exact dL_val/dθ of the unrolled run: checked against central finite differences of the
  /// whole training run (≤ 1e-6) and against every other exact method (≤ 1e-10).
  exact,
  /// An approximation with a definition of its own (IFT at w_T, Neumann, CG, DrMAD, one-step,
  /// greedy): checked against the plain reference implementation registered beside it (≤ 1e-10).
  approximation,
};

/// A plain implementation of an approximation's definition, written for clarity rather than
/// speed (dense algebra, explicit loops), that the registry tests compare the method with.
using ReferenceFn = std::function<Tensor(const BilevelProblem& problem, const Tensor& theta, const Options& options)>;

struct OfflineEntry {
  std::string name;               ///< registry key, kebab-case: "reverse", "forward", "ift", ...
  std::string summary;            ///< one line for `--help` and the method list
  std::string citation;           ///< paper, equation or algorithm ("Franceschi et al. 2017, Eq. 7–8")
  OptionSpecs options;
  Support support;
  Exactness exactness = Exactness::exact;
  ReferenceFn reference;          ///< required for approximations, empty for exact methods
  /// Option sets the registry tests run besides the defaults (each exact reversal and
  /// checkpointing policy of "reverse", each solver of "ift"), as key–value maps.
  std::vector<std::map<std::string, std::string>> test_variants;
  std::function<std::unique_ptr<Method>(const Options& options)> make;
};

struct OnlineEntry {
  std::string name, summary, citation;
  OptionSpecs options;
  Support support;
  /// The outer optimizer (outer.h) moves θ after every inner step.
  std::function<std::unique_ptr<OnlineMethod>(const BilevelProblem& problem, const OuterOptions& outer,
                                              const Options& options)>
      make;
};

struct SearchEntry {
  std::string name, summary, citation;
  OptionSpecs options;
  /// Runs trials over `common.box` within `common.budget` (and max_trials).
  std::function<SearchRun(const BilevelProblem& problem, const SearchOptions& common, const Options& options)> run;
  /// Optional: the checks run() makes before any work, on their own (the comparison harness
  /// checks every entry before it runs any). Throws Error naming the field.
  std::function<void(const BilevelProblem& problem, const SearchOptions& common, const Options& options)> validate;
};

class Registry {
 public:
  /// The process-wide registry (empty until something registers into it).
  static Registry& global();

  /// Adds an entry; throws Error when the name is taken in any kind, is empty or not kebab-case,
  /// when an option name repeats, or when an approximation has no reference.
  void add(OfflineEntry entry);
  void add(OnlineEntry entry);
  void add(SearchEntry entry);
  /// Removes an entry of any kind (a test's own method); false when there is none.
  bool remove(const std::string& name);

  bool contains(const std::string& name) const;
  /// The kind of the entry called `name`; throws Error listing the names when there is none.
  MethodKind kind(const std::string& name) const;
  const OfflineEntry& offline(const std::string& name) const;
  const OnlineEntry& online(const std::string& name) const;
  const SearchEntry& search(const std::string& name) const;
  /// Names of one kind, in registration order.
  std::vector<std::string> names(MethodKind kind) const;
  const OptionSpecs& options(const std::string& name) const;

  /// Construct by name from options given as a key–value map of texts, or as a JSON object.
  std::unique_ptr<Method> make_offline(const std::string& name, const std::map<std::string, std::string>& options = {}) const;
  std::unique_ptr<Method> make_offline_json(const std::string& name, const std::string& json_object) const;
  std::unique_ptr<Method> make_offline(const std::string& name, const Options& options) const;
  /// make_offline("forward", {{"clip-hessian", "3"}}): a braced list is a key–value map (without
  /// this overload it would be ambiguous with Options, whose explicit constructor also takes one).
  std::unique_ptr<Method> make_offline(const std::string& name,
                                       std::initializer_list<std::pair<const std::string, std::string>> options) const {
    return make_offline(name, std::map<std::string, std::string>(options));
  }
  std::unique_ptr<OnlineMethod> make_online(const std::string& name, const BilevelProblem& problem, const OuterOptions& outer,
                                            const std::map<std::string, std::string>& options = {}) const;
  SearchRun run_search(const std::string& name, const BilevelProblem& problem, const SearchOptions& common,
                       const std::map<std::string, std::string>& options = {}) const;

  /// The method list for `--help`: per kind, each name, its summary, citation and options.
  std::string help() const;

 private:
  void claim(const std::string& name, const OptionSpecs& specs);
  std::vector<OfflineEntry> offline_;
  std::vector<OnlineEntry> online_;
  std::vector<SearchEntry> search_;
};

/// Registers every method of gradhpo::hpo (offline, online, random and grid search) into `r`;
/// a second call does nothing. The components add theirs: register_bayesian_methods
/// (gradhpo::bayesian), register_hoag_method (gradhpo::hoag), and register_all_methods
/// (gradhpo::tasks) calls all three.
void register_builtin_methods(Registry& r = Registry::global());

/// The per-family registrations register_builtin_methods is made of (one file each).
void register_offline_methods(Registry& r);
void register_online_methods(Registry& r);
void register_search_methods(Registry& r);

}  // namespace gradhpo::hpo
