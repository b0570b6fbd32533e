// A Gaussian process regression model for Bayesian optimization (Rasmussen & Williams 2006,
// "Gaussian Processes for Machine Learning", Ch. 2 and 5; the recipe of Snoek, Larochelle &
// Adams 2012, "Practical Bayesian Optimization of Machine Learning Algorithms", Section 3).
//
//   kernel   ARD Matérn 5/2 (Snoek et al. Eq. 1; R&W Eq. 4.17):
//                k(x, x') = σ_f² (1 + √5 r + 5r²/3) exp(−√5 r),   r² = Σ_d (x_d − x'_d)² / ℓ_d²
//            plus noise σ_n² on the diagonal.
//   inputs   the unit cube of the search box; outputs standardized (mean 0, variance 1) inside.
//   fit      type-II maximum likelihood: log p(y | X, ℓ, σ_f², σ_n²) (R&W Eq. 2.30) and its gradient
//            ½ tr((α αᵀ − K⁻¹) ∂K/∂p) (R&W Eq. 5.9), maximized over log ℓ, log σ_f², log σ_n²
//            with NLopt's L-BFGS from several starts. Snoek et al. integrate these out by slice
//            sampling instead; a point estimate is what Ax/BoTorch (Micaelli & Storkey, App. E) use.
//   posterior  the latent f at x: mean k*ᵀ K⁻¹ y, variance k(x, x) − k*ᵀ K⁻¹ k* (R&W Eq. 2.25–2.26),
//            through Eigen's Cholesky factorization (LLT) of K.
//   acquisition  expected improvement for minimization (Snoek et al. Eq. 2):
//                EI(x) = σ(x) (γ Φ(γ) + φ(γ)),   γ = (f_best − μ(x)) / σ(x),
//            with its gradient in x, for NLopt's gradient-based maximizers.
#pragma once

#include <cstdint>
#include <vector>

#include <Eigen/Cholesky>
#include <Eigen/Core>

namespace gradhpo::hpo {

struct GpParams {
  Eigen::VectorXd length_scales;  ///< ℓ_d, in unit-cube coordinates
  double signal_variance = 1;     ///< σ_f², in standardized output units
  double noise_variance = 1e-3;   ///< σ_n², in standardized output units
  /// (log ℓ_1 .. log ℓ_D, log σ_f², log σ_n²): the coordinates the fit moves.
  Eigen::VectorXd to_log() const;
  static GpParams from_log(const Eigen::VectorXd& p);
};

class GaussianProcess {
 public:
  /// x: n × D inputs (one per row), y: n observations (n >= 1). Throws Error on a size mismatch
  /// or a non-finite value.
  GaussianProcess(Eigen::MatrixXd x, Eigen::VectorXd y, GpParams params);

  const GpParams& params() const { return params_; }
  std::int64_t size() const { return x_.rows(); }
  /// log p(y_std | X) of the standardized observations (R&W Eq. 2.30).
  double log_marginal_likelihood() const { return lml_; }
  /// Its gradient with respect to GpParams::to_log() (R&W Eq. 5.9).
  Eigen::VectorXd log_marginal_likelihood_gradient() const;

  struct Prediction {
    double mean = 0, variance = 0;  ///< of the latent f (no noise), in the units of y
  };
  Prediction predict(const Eigen::VectorXd& x) const;
  /// EI(x) against `incumbent` (in the units of y; usually the best value observed), and its
  /// gradient in x when `gradient` is not null.
  double expected_improvement(const Eigen::VectorXd& x, double incumbent, Eigen::VectorXd* gradient = nullptr) const;
  /// Bytes of the inputs, observations, Gram matrix factor and weights held.
  std::size_t nbytes() const;

 private:
  double kernel(const Eigen::VectorXd& a, const Eigen::VectorXd& b) const;
  Eigen::MatrixXd x_;
  Eigen::VectorXd y_;        // standardized
  double y_mean_ = 0, y_scale_ = 1;
  GpParams params_;
  Eigen::LLT<Eigen::MatrixXd> llt_;
  Eigen::VectorXd alpha_;    // K⁻¹ y
  double jitter_ = 0;        // added to the diagonal when K was numerically not positive definite
  double lml_ = 0;
};

struct GpFitOptions {
  int restarts = 3;              ///< random starts besides the given one
  int max_evaluations = 200;     ///< likelihood evaluations per start
  std::uint64_t seed = 0;        ///< of the random starts
  double min_length_scale = 1e-2, max_length_scale = 20;
  double min_signal_variance = 5e-2, max_signal_variance = 20;
  double min_noise_variance = 1e-6, max_noise_variance = 1;
};

/// The GP whose kernel parameters maximize the marginal likelihood, searched with NLopt
/// (LD_LBFGS with the analytic gradient, within the bounds of `options`) from `start` (clamped
/// into the bounds) and from `restarts` log-uniform random starts; the best start wins.
GaussianProcess fit_gaussian_process(const Eigen::MatrixXd& x, const Eigen::VectorXd& y, const GpParams& start,
                                     const GpFitOptions& options = {});

}  // namespace gradhpo::hpo
