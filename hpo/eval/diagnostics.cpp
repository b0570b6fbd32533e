#include "diagnostics.h"

#include <chrono>
#include <cmath>
#include <random>

namespace gradhpo::hpo {

const char* factor_name(Factor f) {
  switch (f) {
    case Factor::train_order: return "training data order";
    case Factor::val_sample: return "validation sample";
    case Factor::init_weights: return "initial weights";
    case Factor::hyperparameters: return "hyperparameters";
  }
  return "?";
}

HypergradientSpread spread_of(const std::vector<std::vector<double>>& samples) {
  HypergradientSpread s;
  if (samples.empty()) return s;
  const std::size_t N = samples[0].size();
  const double P = static_cast<double>(samples.size());
  s.mean.assign(N, 0.0);
  s.std.assign(N, 0.0);
  s.hypervariance.assign(N, 0.0);
  s.sign_fluctuation.assign(N, 0.0);
  for (std::size_t n = 0; n < N; ++n) {
    double sum = 0;
    int pos = 0, neg = 0;
    for (const auto& row : samples) {
      sum += row.at(n);
      pos += row[n] > 0;
      neg += row[n] < 0;
    }
    const double mean = sum / P;
    double var = 0;
    for (const auto& row : samples) var += (row[n] - mean) * (row[n] - mean);
    s.mean[n] = mean;
    s.std[n] = std::sqrt(var / P);
    s.hypervariance[n] = mean != 0 ? s.std[n] / std::abs(mean) : INFINITY;
    s.sign_fluctuation[n] = static_cast<double>(std::min(pos, neg)) / P;
    s.mean_hypervariance += s.hypervariance[n] / static_cast<double>(N);
    s.mean_sign_fluctuation += s.sign_fluctuation[n] / static_cast<double>(N);
  }
  return s;
}

/// The samples of every factor, each hypergradient from `method` at the perturbed problem and θ.
std::vector<HypervarianceRow> hypervariance(const ProblemFactory& factory, const Tensor& theta, const Method& method,
                                            int perturbations, const std::vector<Factor>& factors, std::uint64_t seed) {
  require(perturbations >= 2, "hypervariance: needs at least 2 perturbations, got " + std::to_string(perturbations));
  std::vector<HypervarianceRow> rows;
  for (Factor f : factors) {
    const auto start = std::chrono::steady_clock::now();
    HypervarianceRow row;
    row.factor = f;
    std::mt19937_64 rng(seed + 977 * static_cast<std::uint64_t>(f));
    std::uniform_real_distribution<double> u(-1.0, 1.0);
    for (int p = 1; p <= perturbations; ++p) {
      const BilevelProblem problem = factory(f, f == Factor::hyperparameters ? 0 : p);
      Tensor th = theta.clone().to(DType::f64);
      if (f == Factor::hyperparameters) {
        std::vector<double> raw = th.to_vector();
        for (std::size_t i = 0; i < raw.size(); ++i) {
          const HyperGroup& g = problem.hyper.group(problem.hyper.group_of(static_cast<std::int64_t>(i)));
          const double lam = apply_transform(g.transform, raw[i]) * (1 + 0.01 * u(rng));
          raw[i] = inverse_transform(g.transform, lam);
        }
        th = Tensor::from(raw, th.shape(), DType::f64);
      }
      row.samples.push_back(method.compute(problem, th).d_theta.to_vector());
    }
    row.spread = spread_of(row.samples);
    row.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace gradhpo::hpo
