// The one interface of an offline hypergradient method (DESIGN.md, "One Method interface, one
// registry"; optax's GradientTransformation and jaxopt's solvers, STYLE.md 16).
//
// A method is an object with a name, the hyperparameter kinds and inner optimizers it supports,
// validated options (options.h), a cost estimate made before any work, and
//
//     Hypergradient compute(problem, θ, segment)        dL_val/dθ = ∂_θ L_val + ∂_w L_val · dw_T/dθ
//
// Every method is constructed by name from the registry (registry.h); nobody calls a
// `*_hypergradient` free function or wraps one in a lambda. A method implements only `run`: the
// part of the computation that is its own. Method::compute does the rest, the same way for every
// method — it refuses an unsupported problem up front (naming the group and the method) and a
// run whose estimated buffers exceed the memory available (resources.h), builds
// the Unroll (which refuses NaN hyperparameters), resolves the segment, times the run, copies the
// pass counts into the cost, moves hyperparameter-sized results to the host, adds the notes every
// method owes (Adam's ε placement), and makes the non-finite check on the result, naming the
// first entry of θ whose hypergradient is NaN or inf.
//
// Adding a method is one file (a subclass of Method and its OptionSpecs) plus one registration:
// see hpo/README.md, "Adding a method".
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "hypergradient.h"
#include "options.h"

namespace gradhpo::hpo {

/// Which problems a method can differentiate. A problem outside it is refused by
/// Method::check_supports before any work, naming the group (or the optimizer) and the method.
struct Support {
  /// Hyperparameter kinds (learning rate, momentum, weight decay: optimizer-defining; L2, example
  /// weights, a user's own loss values: loss-defining). IFT-based methods take loss-defining only.
  std::vector<HyperKind> kinds = {HyperKind::learning_rate, HyperKind::momentum, HyperKind::weight_decay,
                                  HyperKind::l2, HyperKind::example_weight, HyperKind::loss};
  std::vector<nn::OptimizerKind> optimizers = {nn::OptimizerKind::sgd, nn::OptimizerKind::adam};
  /// Whether compute() takes a Segment other than the whole run (the greedy outer loop needs it).
  bool segments = true;

  bool supports(HyperKind k) const;
  bool supports(nn::OptimizerKind k) const;
  /// Support for loss-defining groups only (the implicit function theorem's methods).
  static Support loss_defining_only();
  /// "learning rate, momentum, weight decay, l2, example weights, loss values; SGD and Adam".
  std::string describe() const;
};

/// What a method will cost on a problem, before any work (the run store refuses a run whose
/// buffers do not fit in memory; the comparison harness charges methods by compute).
struct Estimate {
  /// Bytes of the method's own buffers at their peak (stored iterates, information buffer,
  /// checkpoints, tangent columns), not the model's activations: the peak Cost::peak_bytes reports.
  std::size_t buffer_bytes = 0;
  /// Work in gradient-evaluation equivalents: a reverse pass of L_train counts 1, a
  /// forward-over-reverse pass with K directions counts 2 + 2K (a gradient plus the tangent work;
  /// DESIGN.md, "Performance stance"), an optimizer-step VJP or JVP on P parameters counts 0.
  double gradient_equivalents = 0;
  /// One line on how the numbers come about ("T = 200 stored states of 3 × P float32 ...").
  std::string explain;
};

/// Another configuration of a method with its estimate: what a refusal for memory offers instead
/// (resources.h).
struct Alternative {
  std::string options;  ///< as a user gives them: "policy=checkpoint"
  Estimate estimate;
};

/// What a method's run() computes; Method::compute turns it into the Hypergradient.
struct MethodOutput {
  std::string label;              ///< what ran, e.g. "forward (K = 12)", "IFT (CG, 50 iterations)"
  double val_loss = 0;            ///< L_val(w_T)
  double final_train_loss = 0;    ///< L_train at the last inner step
  Tensor d_theta;                 ///< dL_val/dθ [N], on any device (compute() moves it to the host)
  Tensor direct;                  ///< ∂_θ L_val [N], likewise
  Tensor d_w0;                    ///< dL_val/dw_start [P] (methods that have it; stays on w's device)
  InnerState final_state;         ///< S at the end of the segment
  /// The method's buffer bytes (trajectory, information buffer, checkpoints, tangents, peak) and
  /// directions; compute() fills seconds and the pass counts.
  Cost cost;
  std::vector<std::string> notes; ///< what the method chose (exact reversal's bits, the solver's stop reason)
};

/// An offline hypergradient method. Subclasses implement name-independent behaviour only: the
/// registry entry (registry.h) owns the name, the option list and the reference to check against.
class Method {
 public:
  /// `options` must have been made from the method's registered specs (Options validates them).
  Method(std::string name, Options options, Support support);
  virtual ~Method() = default;
  Method(const Method&) = delete;
  Method& operator=(const Method&) = delete;

  const std::string& name() const { return name_; }
  const Options& options() const { return options_; }
  const Support& support() const { return support_; }

  /// Throws Error naming the method and the first group (or the optimizer) it cannot
  /// differentiate, or a method-specific refusal (check_problem), before any work.
  void check_supports(const BilevelProblem& problem) const;

  /// dL_val/dθ over `segment` (null: the whole run from S_0). See the file comment for what
  /// every method gets from here. Throws InnerDivergence when training diverges, Error otherwise.
  Hypergradient compute(const BilevelProblem& problem, const Tensor& theta, const Segment* segment = nullptr) const;

  /// Buffers and work of compute(problem, ·) over the whole run, before any work. compute()
  /// refuses a run whose buffers exceed the memory available (resources.h) before it starts.
  virtual Estimate estimate(const BilevelProblem& problem) const = 0;
  /// Other configurations of this method that compute the same thing with other buffers (reverse
  /// mode's policies), with their estimates; the refusal for memory lists them. Default: none.
  virtual std::vector<Alternative> alternatives(const BilevelProblem& problem) const {
    (void)problem;
    return {};
  }

 protected:
  /// The method's own computation over a resolved segment; `u` holds θ and counts the passes.
  virtual MethodOutput run(Unroll& u, const Segment& segment) const = 0;
  /// A refusal of its own beyond Support (exact reversal refusing β = 0, say): throws Error.
  virtual void check_problem(const BilevelProblem& problem) const { (void)problem; }

 private:
  std::string name_;
  Options options_;
  Support support_;
};

}  // namespace gradhpo::hpo
