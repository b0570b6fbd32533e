// Offline methods of the tests' own for the outer loop and hpo::solve (test_outer, test_solve):
// registry entries of their own (names, options, Support) that delegate to the registered
// forward and reverse mode, so that the loops are tested through names the tests control — one
// of them (test-whole-runs) declares that it cannot take segments.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include <gradhpo/hpo/registry.h>
#include <gradhpo/hpo/solve.h>

namespace gradhpo::testing {

/// The registered method `name` with one option set from `value`.
inline std::unique_ptr<hpo::Method> delegate(const std::string& name, const std::string& option, const hpo::OptionValue& value) {
  hpo::register_builtin_methods();
  hpo::Options o(hpo::Registry::global().offline(name).options, name);
  o.set(option, value);
  return hpo::Registry::global().make_offline(name, o);
}

/// Another method's Hypergradient as a Method's output (compute() redoes the common part and
/// takes the pass counts from `u`, so they are handed on there).
inline hpo::MethodOutput output_of(hpo::Unroll& u, hpo::Hypergradient h) {
  u.counts.gradients = h.cost.gradient_evals;
  u.counts.fwd_over_rev = h.cost.fwd_over_rev_passes;
  u.counts.steps = h.cost.step_passes;
  hpo::MethodOutput o;
  o.label = h.method;
  o.val_loss = h.val_loss;
  o.final_train_loss = h.final_train_loss;
  o.d_theta = h.d_theta;
  o.direct = h.direct;
  o.d_w0 = h.d_w0;
  o.final_state = std::move(h.final_state);
  o.cost = h.cost;
  return o;
}

/// Forward mode (Franceschi et al. 2017, Eq. 11–13), option "clip-hessian".
class TestForward : public hpo::Method {
 public:
  explicit TestForward(hpo::Options o = hpo::Options(specs(), "test-forward"), hpo::Support s = {},
                       std::string name = "test-forward")
      : Method(std::move(name), std::move(o), std::move(s)),
        inner_(delegate("forward", "clip-hessian", options().real("clip-hessian"))) {}
  static hpo::OptionSpecs specs() {
    return {hpo::OptionSpec::real("clip-hessian", 0, 0, 1e30, "clip H·Z to ±c (0: off)")};
  }
  hpo::Estimate estimate(const hpo::BilevelProblem&) const override { return {}; }

 protected:
  hpo::MethodOutput run(hpo::Unroll& u, const hpo::Segment& seg) const override {
    return output_of(u, inner_->compute(u.problem(), u.theta_on_host().to(DType::f64), &seg));
  }

 private:
  std::unique_ptr<hpo::Method> inner_;
};

/// Reverse mode (Maclaurin et al. 2015), option "policy".
class TestReverse : public hpo::Method {
 public:
  explicit TestReverse(hpo::Options o = hpo::Options(specs(), "test-reverse"))
      : Method("test-reverse", std::move(o), hpo::Support{}),
        inner_(delegate("reverse", "policy", options().text("policy"))) {}
  static hpo::OptionSpecs specs() {
    return {hpo::OptionSpec::choice("policy", "store-all", {"store-all", "exact-reversal", "checkpoint"}, "memory policy")};
  }
  hpo::Estimate estimate(const hpo::BilevelProblem&) const override { return {}; }

 protected:
  hpo::MethodOutput run(hpo::Unroll& u, const hpo::Segment& seg) const override {
    return output_of(u, inner_->compute(u.problem(), u.theta_on_host().to(DType::f64), &seg));
  }

 private:
  std::unique_ptr<hpo::Method> inner_;
};

/// Registers test-forward, test-reverse and test-whole-runs (forward mode that declares it
/// cannot take segments) into the global registry for the scope's lifetime.
class TestMethods {
 public:
  TestMethods() {
    hpo::Registry& r = hpo::Registry::global();
    add(r, "test-forward", TestForward::specs(), [](const hpo::Options& o) { return std::make_unique<TestForward>(o); });
    add(r, "test-reverse", TestReverse::specs(), [](const hpo::Options& o) { return std::make_unique<TestReverse>(o); });
    hpo::Support whole;
    whole.segments = false;
    add(r, "test-whole-runs", TestForward::specs(),
        [whole](const hpo::Options& o) { return std::make_unique<TestForward>(o, whole, "test-whole-runs"); }, whole);
  }
  ~TestMethods() {
    for (const char* n : {"test-forward", "test-reverse", "test-whole-runs"}) hpo::Registry::global().remove(n);
  }
  TestMethods(const TestMethods&) = delete;
  TestMethods& operator=(const TestMethods&) = delete;

 private:
  static void add(hpo::Registry& r, const std::string& name, hpo::OptionSpecs specs,
                  std::function<std::unique_ptr<hpo::Method>(const hpo::Options&)> make, hpo::Support support = {}) {
    hpo::OfflineEntry e;
    e.name = name;
    e.summary = "a test's own method";
    e.citation = "tests/hpo/wrapped_methods.h";
    e.options = std::move(specs);
    e.support = support;
    e.make = std::move(make);
    r.add(std::move(e));
  }
};

/// hpo::solve over test-forward (clip-hessian 3) with the sign optimizer for `steps` outer steps.
inline hpo::SolveOptions forward_options(int steps) {
  hpo::SolveOptions o;
  o.method = "test-forward";
  o.method_options = {{"clip-hessian", "3"}};
  o.outer.kind = hpo::OuterKind::sign;
  o.outer.step = {0.1, 0.5};
  o.outer.max_steps = steps;
  return o;
}

}  // namespace gradhpo::testing
