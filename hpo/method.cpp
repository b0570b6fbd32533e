#include "method.h"

#include <algorithm>
#include <chrono>

#include "resources.h"

namespace gradhpo::hpo {

bool Support::supports(HyperKind k) const { return std::find(kinds.begin(), kinds.end(), k) != kinds.end(); }

bool Support::supports(nn::OptimizerKind k) const {
  return std::find(optimizers.begin(), optimizers.end(), k) != optimizers.end();
}

Support Support::loss_defining_only() {
  Support s;
  s.kinds = {HyperKind::l2, HyperKind::example_weight, HyperKind::loss};
  return s;
}

std::string Support::describe() const {
  std::string s;
  for (HyperKind k : kinds) s += (s.empty() ? "" : ", ") + std::string(kind_name(k));
  s += "; ";
  for (std::size_t i = 0; i < optimizers.size(); ++i)
    s += (i ? " and " : "") + std::string(optimizers[i] == nn::OptimizerKind::sgd ? "SGD" : "Adam");
  if (!segments) s += "; whole runs only";
  return s;
}

Method::Method(std::string name, Options options, Support support)
    : name_(std::move(name)), options_(std::move(options)), support_(std::move(support)) {}

void Method::check_supports(const BilevelProblem& problem) const {
  for (const HyperGroup& g : problem.hyper.groups())
    require(support_.supports(g.kind), name_ + " cannot differentiate hyperparameter group '" + g.name + "' (" +
                                           kind_name(g.kind) + "): it handles " + support_.describe());
  require(support_.supports(problem.optimizer.kind),
          name_ + " does not support the " + std::string(problem.optimizer.kind == nn::OptimizerKind::sgd ? "SGD" : "Adam") +
              " inner optimizer: it handles " + support_.describe());
  check_problem(problem);
}

Hypergradient Method::compute(const BilevelProblem& problem, const Tensor& theta, const Segment* segment) const {
  const auto start = std::chrono::steady_clock::now();
  check_supports(problem);
  problem.hyper.check_theta(theta, name_.c_str());  // a NaN hyperparameter, named with the method
  if (segment && !support_.segments)
    throw Error(name_ + " differentiates whole runs only: it cannot take the segment the greedy setting asks for");
  check_memory(*this, problem, segment, available_memory());  // before any work: a refusal, not bad_alloc hours later
  Unroll u(problem, theta);
  const Segment seg = detail::resolve(u, segment);
  MethodOutput o = run(u, seg);

  // The one place a result is assembled, for every method.
  Hypergradient out;
  out.method = o.label.empty() ? name_ : o.label;
  out.val_loss = o.val_loss;
  out.final_train_loss = o.final_train_loss;
  out.theta = u.theta_on_host();
  out.d_theta = o.d_theta.to(Device::cpu);  // θ-sized results on the host, where the caller's θ is
  out.direct = o.direct.defined() ? o.direct.to(Device::cpu) : Tensor();
  out.d_w0 = std::move(o.d_w0);
  out.final_state = std::move(o.final_state);
  out.cost = o.cost;
  detail::record_counts(out.cost, u.counts);
  out.notes = std::move(o.notes);
  if (const std::string n = detail::adam_note(problem); !n.empty()) out.notes.insert(out.notes.begin(), n);
  out.cost.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  require(out.d_theta.defined() && out.d_theta.numel() == problem.hyper.size(),
          name_ + ": the method returned a hypergradient of " +
              std::to_string(out.d_theta.defined() ? out.d_theta.numel() : 0) + " entries for " +
              std::to_string(problem.hyper.size()) + " hyperparameters");
  if (const std::int64_t i = first_non_finite(out.d_theta); i >= 0)
    throw Error(name_ + ": the hypergradient of " + problem.hyper.entry_name(i) + " is not finite" +
                (problem.optimizer.kind == nn::OptimizerKind::adam ? "; " + detail::adam_note(problem)
                                                                    : std::string("; the inner run is unstable")));
  return out;
}

}  // namespace gradhpo::hpo
