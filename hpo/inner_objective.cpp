#include "inner_objective.h"

#include <sstream>

#include "tensor_math.h"

namespace gradhpo::hpo {

std::string InnerBatches::describe(std::int64_t horizon) const {
  std::ostringstream s;
  if (steps.empty()) {
    s << "the last step's batch (t = " << horizon - 1 << ")";
  } else if (steps.size() == 1) {
    s << "the batch of step " << steps[0];
  } else {
    s << "the mean of the batches of " << steps.size() << " steps (" << steps.front() << ", ..., " << steps.back() << ")";
  }
  return s.str();
}

void require_loss_defining(const Hyperparameters& hyper, const std::string& method) {
  require(!hyper.empty(), method + ": the problem has no hyperparameter groups to learn");
  for (const HyperGroup& g : hyper.groups())
    require(!is_optimizer_defining(g.kind),
            method + " cannot learn hyperparameter group '" + g.name + "' (" + kind_name(g.kind) +
                "): it is optimizer-defining, and the implicit function theorem differentiates the optimum of the "
                "training loss, which the optimizer's hyperparameters do not move. Use reverse or forward mode "
                "through training for it, or make it a fixed value of the inner optimizer");
}

InnerObjective::InnerObjective(Unroll& unroll, const InnerBatches& batches, const std::string& method)
    : u_(&unroll), steps_(batches.steps) {
  const BilevelProblem& p = unroll.problem();
  const std::int64_t T = p.horizon;
  if (steps_.empty()) steps_.push_back(T - 1);
  for (std::int64_t t : steps_)
    require(t >= 0 && t < T, method + ": training-loss step " + std::to_string(t) + " is outside [0, T = " +
                                 std::to_string(T) + ")");
  mu_ = p.optimizer.weight_decay;
  require(!(p.optimizer.kind == nn::OptimizerKind::adam && p.optimizer.decoupled && mu_ != 0),
          method + ": AdamW's decoupled weight decay has no training objective whose optimum training reaches; "
                   "use coupled weight decay (an L2 term) or none");
}

InnerObjective::Value InnerObjective::value_and_gradient(const Tensor& w) {
  const double scale = 1.0 / static_cast<double>(steps_.size());
  Value out;
  out.grad = Tensor::zeros(w.shape(), w.dtype(), w.device());
  for (std::int64_t t : steps_) {
    const LossPass lp = u_->gradient(w, t);
    out.value += scale * lp.loss;
    axpy(out.grad, scale, lp.grad);
  }
  // The weight decay's potential (μ/2)‖w‖² and its gradient μw.
  out.value += 0.5 * mu_ * dot(w, w);
  axpy(out.grad, mu_, w);
  return out;
}

InnerObjective::Products InnerObjective::products(const Tensor& w, const Tensor& v, bool with_mixed) {
  const double scale = 1.0 / static_cast<double>(steps_.size());
  const Tensor dir = v.to(w.dtype());
  Products out;
  out.hvp = Tensor::zeros(w.shape(), w.dtype(), w.device());
  if (with_mixed) out.mixed = Tensor::zeros(u_->theta().shape(), w.dtype(), w.device());
  for (std::int64_t t : steps_) {
    const LossPass lp = u_->loss_pass(w, t, dir, Tensor(), with_mixed);
    axpy(out.hvp, scale, lp.grad_tangent);
    if (with_mixed) axpy(out.mixed, scale, lp.theta_tangent);
  }
  axpy(out.hvp, mu_, dir);  // ∇²(μ/2)‖w‖² = μI; it does not depend on θ (μ is not learned)
  return out;
}

}  // namespace gradhpo::hpo
