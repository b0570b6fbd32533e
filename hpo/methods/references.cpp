#include "references.h"

#include <cmath>
#include <functional>

#include <Eigen/Dense>

#include "../../engine/autodiff.h"
#include "../inner_run.h"
#include "reverse.h"

namespace gradhpo::hpo::reference {

namespace {

Eigen::VectorXd vec(const Tensor& t) {
  const std::vector<double> v = t.to_vector();
  return Eigen::Map<const Eigen::VectorXd>(v.data(), static_cast<Eigen::Index>(v.size()));
}

Tensor tensor(const Eigen::VectorXd& v, DType dtype) {
  return Tensor::from(std::vector<double>(v.data(), v.data() + v.size()), Shape{v.size()}, DType::f64).to(dtype);
}

Tensor host_f64(const Tensor& t) { return t.to(Device::cpu).to(DType::f64); }

}  // namespace

Tensor ift(const BilevelProblem& p, const Tensor& theta, const Options& o) {
  const Tensor w = run_inner(p, theta).final_state.w();
  const std::int64_t t = p.horizon - 1, P = w.numel();
  const Tensor th = theta.to(p.dtype());
  // H = ∇²_w L_train(w_T; batch T−1) + μI.
  auto train = [&](const Var& W) { return p.train_loss(W, HyperValues(p.hyper, W.tape().constant(th), t, p.horizon), t); };
  const std::vector<double> h = hessian(train, w).to_vector();
  const Eigen::MatrixXd H =
      Eigen::Map<const Eigen::MatrixXd>(h.data(), P, P) + p.optimizer.weight_decay * Eigen::MatrixXd::Identity(P, P);
  Unroll u(p, theta);
  const Unroll::ValPass val = u.validation(w);
  const Eigen::VectorXd b = vec(val.grad_w);

  Eigen::VectorXd q;
  const std::string& solver = o.text("solver");
  if (solver == "exact") {
    q = H.completeOrthogonalDecomposition().solve(b);
  } else if (solver == "neumann") {
    const double alpha = o.real("neumann-alpha");
    const Eigen::MatrixXd M = Eigen::MatrixXd::Identity(P, P) - alpha * H;
    Eigen::MatrixXd power = Eigen::MatrixXd::Identity(P, P), A = power;
    for (std::int64_t j = 1; j <= o.integer("iterations"); ++j) {
      power = power * M;
      A += power;
    }
    q = alpha * (A * b);
  } else {  // cg: Nocedal & Wright, Algorithm 5.2, from q = 0
    const double tolerance = o.real("cg-tolerance") * b.norm();
    q = Eigen::VectorXd::Zero(P);
    Eigen::VectorXd r = b, d = r;
    for (std::int64_t k = 0; k < o.integer("iterations") && r.norm() > tolerance; ++k) {
      const Eigen::VectorXd Hd = H * d;
      const double curvature = d.dot(Hd);
      if (!(curvature > 0)) break;
      const double a = r.dot(r) / curvature;
      q += a * d;
      const Eigen::VectorXd r_next = r - a * Hd;
      d = r_next + (r_next.dot(r_next) / r.dot(r)) * d;
      r = r_next;
    }
  }
  // dL_val/dθ ≈ ∂_θ L_val − ∂_θ(q · ∇_w L_train) (the μ term does not depend on θ).
  auto train2 = [&](const Var& W, const Var& Th) { return p.train_loss(W, HyperValues(p.hyper, Th, t, p.horizon), t); };
  const Tensor mixed = mixed_vjp(train2, w, th, tensor(q, p.dtype())).mixed;
  return tensor(vec(val.grad_theta) - vec(mixed), DType::f64);
}

Tensor drmad(const BilevelProblem& p, const Tensor& theta, const Options&) {
  Unroll u(p, theta);
  const InnerState s0 = u.initial_state();
  const InnerState sT = run_inner(p, theta).final_state;
  std::vector<InnerState> states;
  std::vector<Tensor> grads;
  for (std::int64_t t = 0; t < p.horizon; ++t) {
    const double beta = static_cast<double>(t) / static_cast<double>(p.horizon);
    InnerState s;
    for (std::size_t i = 0; i < s0.parts.size(); ++i) {
      const std::vector<double> a = s0.parts[i].to_vector(), b = sT.parts[i].to_vector();
      std::vector<double> x(a.size());
      for (std::size_t j = 0; j < a.size(); ++j) x[j] = (1 - beta) * a[j] + beta * b[j];
      s.parts.push_back(Tensor::from(x, s0.parts[i].shape(), DType::f64).to(p.dtype()).to(s0.parts[i].device()));
    }
    grads.push_back(u.gradient(s.w(), t).grad);
    states.push_back(std::move(s));
  }
  return host_f64(reverse_along(p, theta, states, grads, sT).d_theta);
}

namespace {

/// Σ_t weight(t) h_t along the run (see greedy()).
Tensor one_step_sum(const BilevelProblem& p, const Tensor& theta, double darts_radius,
                    const std::function<double(std::int64_t)>& weight) {
  Unroll u(p, theta);
  InnerState s = u.initial_state();
  Eigen::VectorXd sum = Eigen::VectorXd::Zero(p.hyper.size());
  for (std::int64_t t = 0; t < p.horizon; ++t) {
    const Tensor g = u.gradient(s.w(), t).grad;
    const InnerState next = u.step(s, g, t);
    if (const double c = weight(t); c != 0) {
      // The exact derivative of L_val(w_{t+1}) through step t alone: reverse mode over one step.
      Eigen::VectorXd h = vec(reverse_along(p, theta, {s}, {g}, next, t).d_theta);
      if (darts_radius > 0) {
        // DARTS: the mixed product ∂_θ(ḡ · ∇_w L_train(w_t)) by a central difference along ḡ.
        InnerState adj;
        adj.parts.push_back(u.validation(next.w()).grad_w);
        for (std::size_t i = 1; i < s.parts.size(); ++i) adj.parts.push_back(Tensor::zeros(s.parts[i].shape(), p.dtype(), s.w().device()));
        const Tensor g_bar = u.step_vjp(s, g, t, adj).adj_g;
        const Eigen::VectorXd gb = vec(g_bar);
        if (gb.norm() > 0) {
          const double eps = darts_radius / gb.norm();
          const Eigen::VectorXd w = vec(s.w());
          const Eigen::VectorXd up = vec(u.theta_gradient(tensor(w + eps * gb, p.dtype()).reshape(s.w().shape()), t));
          const Eigen::VectorXd down = vec(u.theta_gradient(tensor(w - eps * gb, p.dtype()).reshape(s.w().shape()), t));
          h += (up - down) / (2 * eps) - vec(u.loss_pass(s.w(), t, g_bar, Tensor(), true).theta_tangent);
        }
      }
      sum += c * h;
    }
    s = next;
  }
  return tensor(sum, DType::f64);
}

}  // namespace

Tensor greedy(const BilevelProblem& p, const Tensor& theta, const Options& o) {
  const double gamma = o.real("gamma");
  return one_step_sum(p, theta, o.real("darts-radius"),
                      [&](std::int64_t t) { return std::pow(gamma, static_cast<double>(p.horizon - 1 - t)); });
}

Tensor t1t2(const BilevelProblem& p, const Tensor& theta, const Options& o) {
  return one_step_sum(p, theta, o.real("darts-radius"), [&](std::int64_t t) { return t == p.horizon - 1 ? 1.0 : 0.0; });
}

}  // namespace gradhpo::hpo::reference
