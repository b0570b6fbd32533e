#include "gaussian_process.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <random>

#include <nlopt.hpp>

#include "../../../data/random.h"
#include "../../../engine/error.h"
#include "../random_search.h"

namespace gradhpo::hpo {

namespace {

const double kSqrt5 = std::sqrt(5.0);
const double kLog2Pi = std::log(2 * std::numbers::pi);

/// Matérn 5/2 at distance r: (1 + √5 r + 5r²/3) e^{−√5 r}, and g(r) = (5/3)(1 + √5 r) e^{−√5 r},
/// the factor that every derivative shares: ∂k/∂(Δ_d) = −σ_f² g(r) Δ_d / ℓ_d² (so no 1/r at r = 0).
struct Matern {
  double value, g;
};
Matern matern52(double r) {
  const double e = std::exp(-kSqrt5 * r);
  return {(1 + kSqrt5 * r + 5 * r * r / 3) * e, 5.0 / 3.0 * (1 + kSqrt5 * r) * e};
}

double scaled_distance(const Eigen::VectorXd& a, const Eigen::VectorXd& b, const Eigen::VectorXd& ell) {
  return std::sqrt(((a - b).array() / ell.array()).square().sum());
}

double normal_pdf(double z) { return std::exp(-0.5 * z * z) / std::sqrt(2 * std::numbers::pi); }
double normal_cdf(double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); }

}  // namespace

Eigen::VectorXd GpParams::to_log() const {
  Eigen::VectorXd p(length_scales.size() + 2);
  p.head(length_scales.size()) = length_scales.array().log().matrix();
  p[length_scales.size()] = std::log(signal_variance);
  p[length_scales.size() + 1] = std::log(noise_variance);
  return p;
}

GpParams GpParams::from_log(const Eigen::VectorXd& p) {
  GpParams g;
  const Eigen::Index D = p.size() - 2;
  g.length_scales = p.head(D).array().exp().matrix();
  g.signal_variance = std::exp(p[D]);
  g.noise_variance = std::exp(p[D + 1]);
  return g;
}

GaussianProcess::GaussianProcess(Eigen::MatrixXd x, Eigen::VectorXd y, GpParams params)
    : x_(std::move(x)), params_(std::move(params)) {
  const Eigen::Index n = x_.rows();
  require(n >= 1 && y.size() == n, "gaussian process: " + std::to_string(n) + " inputs for " +
                                       std::to_string(y.size()) + " observations (need as many, at least one)");
  require(params_.length_scales.size() == x_.cols(), "gaussian process: " +
                                                         std::to_string(params_.length_scales.size()) +
                                                         " length scales for inputs of dimension " +
                                                         std::to_string(x_.cols()));
  require(x_.allFinite() && y.allFinite(), "gaussian process: an input or observation is not finite");
  // Standardize: the fit's bounds on σ_f² and σ_n² are then in units of the data's spread.
  y_mean_ = y.mean();
  const double var = n > 1 ? (y.array() - y_mean_).square().sum() / static_cast<double>(n - 1) : 0.0;
  y_scale_ = var > 0 ? std::sqrt(var) : 1.0;
  y_ = (y.array() - y_mean_) / y_scale_;

  Eigen::MatrixXd K(n, n);
  for (Eigen::Index a = 0; a < n; ++a)
    for (Eigen::Index b = 0; b <= a; ++b)
      K(a, b) = K(b, a) = kernel(x_.row(a).transpose(), x_.row(b).transpose());
  K.diagonal().array() += params_.noise_variance;
  // Duplicate or very close inputs with little noise make K numerically singular: add the
  // smallest jitter that lets Cholesky through (counted in nbytes' owner, reported by none).
  for (jitter_ = 0;; jitter_ = jitter_ == 0 ? 1e-10 * params_.signal_variance : jitter_ * 10) {
    Eigen::MatrixXd Kj = K;
    Kj.diagonal().array() += jitter_;
    llt_.compute(Kj);
    if (llt_.info() == Eigen::Success) break;
    require(jitter_ < params_.signal_variance, "gaussian process: the Gram matrix is not positive definite");
  }
  alpha_ = llt_.solve(y_);
  const Eigen::VectorXd diag = llt_.matrixL().toDenseMatrix().diagonal();
  lml_ = -0.5 * y_.dot(alpha_) - diag.array().log().sum() - 0.5 * static_cast<double>(n) * kLog2Pi;
}

double GaussianProcess::kernel(const Eigen::VectorXd& a, const Eigen::VectorXd& b) const {
  return params_.signal_variance * matern52(scaled_distance(a, b, params_.length_scales)).value;
}

Eigen::VectorXd GaussianProcess::log_marginal_likelihood_gradient() const {
  const Eigen::Index n = x_.rows(), D = x_.cols();
  // W = α αᵀ − K⁻¹; ∂ log p / ∂p_j = ½ Σ_ab W_ab ∂K_ab/∂p_j   (R&W Eq. 5.9)
  const Eigen::MatrixXd W = alpha_ * alpha_.transpose() - llt_.solve(Eigen::MatrixXd::Identity(n, n));
  Eigen::VectorXd grad = Eigen::VectorXd::Zero(D + 2);
  const Eigen::VectorXd& ell = params_.length_scales;
  for (Eigen::Index a = 0; a < n; ++a)
    for (Eigen::Index b = 0; b < n; ++b) {
      const Eigen::VectorXd delta = x_.row(a).transpose() - x_.row(b).transpose();
      const Matern m = matern52(scaled_distance(x_.row(a).transpose(), x_.row(b).transpose(), ell));
      // ∂K/∂ log ℓ_d = σ_f² g(r) Δ_d² / ℓ_d²;  ∂K/∂ log σ_f² = σ_f² M(r)
      grad.head(D).array() += 0.5 * W(a, b) * params_.signal_variance * m.g * (delta.array() / ell.array()).square();
      grad[D] += 0.5 * W(a, b) * params_.signal_variance * m.value;
    }
  grad[D + 1] = 0.5 * params_.noise_variance * W.trace();  // ∂K/∂ log σ_n² = σ_n² I
  return grad;
}

GaussianProcess::Prediction GaussianProcess::predict(const Eigen::VectorXd& x) const {
  const Eigen::Index n = x_.rows();
  Eigen::VectorXd k(n);
  for (Eigen::Index a = 0; a < n; ++a) k[a] = kernel(x, x_.row(a).transpose());
  const Eigen::VectorXd v = llt_.matrixL().solve(k);
  const double var = std::max(params_.signal_variance - v.squaredNorm(), 0.0);
  return {y_mean_ + y_scale_ * k.dot(alpha_), y_scale_ * y_scale_ * var};
}

double GaussianProcess::expected_improvement(const Eigen::VectorXd& x, double incumbent, Eigen::VectorXd* gradient) const {
  const Eigen::Index n = x_.rows(), D = x_.cols();
  const Eigen::VectorXd& ell = params_.length_scales;
  // In standardized units: EI_y = y_scale · EI_std.
  Eigen::VectorXd k(n);
  Eigen::MatrixXd dk(n, D);  // ∂k(x, x_a)/∂x_d = −σ_f² g(r) (x_d − x_ad) / ℓ_d²
  for (Eigen::Index a = 0; a < n; ++a) {
    const Eigen::VectorXd delta = x - x_.row(a).transpose();
    const Matern m = matern52(scaled_distance(x, x_.row(a).transpose(), ell));
    k[a] = params_.signal_variance * m.value;
    dk.row(a) = (-params_.signal_variance * m.g * delta.array() / ell.array().square()).transpose();
  }
  const double mu = k.dot(alpha_);
  const Eigen::VectorXd Kinv_k = llt_.solve(k);
  const double var = params_.signal_variance - k.dot(Kinv_k);
  const double best = (incumbent - y_mean_) / y_scale_;
  if (var <= 1e-12) {  // at an observed input: no uncertainty left, only a certain improvement
    if (gradient) *gradient = Eigen::VectorXd::Zero(D);
    return y_scale_ * std::max(best - mu, 0.0);
  }
  const double sigma = std::sqrt(var);
  const double gamma = (best - mu) / sigma;
  const double Phi = normal_cdf(gamma), phi = normal_pdf(gamma);
  if (gradient) {
    // dEI/dμ = −Φ(γ), dEI/dσ = φ(γ);  dμ/dx = dkᵀ α,  dσ/dx = −dkᵀ K⁻¹ k / σ
    const Eigen::VectorXd dmu = dk.transpose() * alpha_;
    const Eigen::VectorXd dsigma = -(dk.transpose() * Kinv_k) / sigma;
    *gradient = y_scale_ * (-Phi * dmu + phi * dsigma);
  }
  return y_scale_ * sigma * (gamma * Phi + phi);
}

std::size_t GaussianProcess::nbytes() const {
  const auto n = static_cast<std::size_t>(x_.rows()), D = static_cast<std::size_t>(x_.cols());
  return sizeof(double) * (n * D + 3 * n + n * n);
}

GaussianProcess fit_gaussian_process(const Eigen::MatrixXd& x, const Eigen::VectorXd& y, const GpParams& start,
                                     const GpFitOptions& o) {
  const Eigen::Index D = x.cols();
  std::vector<double> lower(static_cast<std::size_t>(D + 2)), upper(lower.size());
  for (Eigen::Index d = 0; d < D; ++d) {
    lower[static_cast<std::size_t>(d)] = std::log(o.min_length_scale);
    upper[static_cast<std::size_t>(d)] = std::log(o.max_length_scale);
  }
  lower[static_cast<std::size_t>(D)] = std::log(o.min_signal_variance);
  upper[static_cast<std::size_t>(D)] = std::log(o.max_signal_variance);
  lower[static_cast<std::size_t>(D + 1)] = std::log(o.min_noise_variance);
  upper[static_cast<std::size_t>(D + 1)] = std::log(o.max_noise_variance);

  // The objective, remembering the best point seen: NLopt may stop with a roundoff error after
  // it has already improved on the start.
  struct Search {
    const Eigen::MatrixXd* x;
    const Eigen::VectorXd* y;
    double best = -std::numeric_limits<double>::infinity();
    std::vector<double> best_p;
  } search{&x, &y, -std::numeric_limits<double>::infinity(), {}};
  auto objective = [](const std::vector<double>& p, std::vector<double>& grad, void* data) -> double {
    auto* s = static_cast<Search*>(data);
    const Eigen::VectorXd lp = Eigen::Map<const Eigen::VectorXd>(p.data(), static_cast<Eigen::Index>(p.size()));
    try {
      const GaussianProcess gp(*s->x, *s->y, GpParams::from_log(lp));
      const double value = gp.log_marginal_likelihood();
      if (!grad.empty()) Eigen::Map<Eigen::VectorXd>(grad.data(), lp.size()) = gp.log_marginal_likelihood_gradient();
      if (value > s->best) {
        s->best = value;
        s->best_p = p;
      }
      return value;
    } catch (const Error&) {  // no jitter made K positive definite: the worst value, flat
      std::fill(grad.begin(), grad.end(), 0.0);
      return -1e300;
    }
  };

  std::mt19937_64 rng(data::derive_seed(o.seed, 1));
  for (int s = 0; s <= o.restarts; ++s) {
    std::vector<double> p(lower.size());
    if (s == 0) {
      const Eigen::VectorXd lp = start.to_log();
      require(lp.size() == D + 2, "gaussian process fit: the start has " + std::to_string(lp.size() - 2) +
                                      " length scales for inputs of dimension " + std::to_string(D));
      for (std::size_t i = 0; i < p.size(); ++i) p[i] = std::clamp(lp[static_cast<Eigen::Index>(i)], lower[i], upper[i]);
    } else {
      for (std::size_t i = 0; i < p.size(); ++i) p[i] = lower[i] + unit_uniform(rng) * (upper[i] - lower[i]);
    }
    nlopt::opt opt(nlopt::LD_LBFGS, static_cast<unsigned>(p.size()));
    opt.set_lower_bounds(lower);
    opt.set_upper_bounds(upper);
    opt.set_max_objective(objective, &search);
    opt.set_maxeval(o.max_evaluations);
    opt.set_ftol_abs(1e-9);
    opt.set_xtol_rel(1e-8);
    double value = 0;
    try {
      opt.optimize(p, value);
    } catch (const std::exception&) {
      // roundoff_limited and friends: keep the best point the objective has seen.
    }
  }
  if (search.best_p.empty()) return GaussianProcess(x, y, start);  // nothing factorized: say why
  const Eigen::VectorXd best = Eigen::Map<const Eigen::VectorXd>(search.best_p.data(), D + 2);
  return GaussianProcess(x, y, GpParams::from_log(best));
}

}  // namespace gradhpo::hpo
