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

std::vector<Perturbation> perturbations_of(const ProblemFactory& factory, const Tensor& theta, int perturbations,
                                           const std::vector<Factor>& factors, std::uint64_t seed) {
  require(perturbations >= 2, "hypervariance: needs at least 2 perturbations, got " + std::to_string(perturbations));
  std::vector<Perturbation> out;
  for (Factor f : factors) {
    std::mt19937_64 rng(seed + 977 * static_cast<std::uint64_t>(f));
    std::uniform_real_distribution<double> u(-1.0, 1.0);
    const Tensor th0 = theta.clone().to(DType::f64);
    if (f != Factor::hyperparameters) {
      for (int p = 1; p <= perturbations; ++p) out.push_back({f, p, th0});
      continue;
    }
    const BilevelProblem problem = factory(f, 0);
    for (int p = 1; p <= perturbations; ++p) {
      std::vector<double> raw = th0.to_vector();
      for (std::size_t i = 0; i < raw.size(); ++i) {
        const HyperGroup& g = problem.hyper.group(problem.hyper.group_of(static_cast<std::int64_t>(i)));
        const double lam = apply_transform(g.transform, raw[i]) * (1 + 0.01 * u(rng));
        raw[i] = inverse_transform(g.transform, lam);
      }
      out.push_back({f, 0, Tensor::from(raw, th0.shape(), DType::f64)});
    }
  }
  return out;
}

PerturbationSample sample_perturbation(const ProblemFactory& factory, const Method& method, const Perturbation& p) {
  const auto start = std::chrono::steady_clock::now();
  PerturbationSample s;
  s.d_theta = method.compute(factory(p.factor, p.index), p.theta).d_theta.to_vector();
  s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return s;
}

std::vector<HypervarianceRow> hypervariance_rows(const std::vector<Perturbation>& perturbations,
                                                 const std::vector<PerturbationSample>& samples) {
  require(samples.size() == perturbations.size(), "hypervariance: " + std::to_string(samples.size()) + " samples for " +
                                                      std::to_string(perturbations.size()) + " perturbations");
  std::vector<HypervarianceRow> rows;
  for (std::size_t i = 0; i < perturbations.size(); ++i) {
    if (rows.empty() || rows.back().factor != perturbations[i].factor) rows.push_back({perturbations[i].factor, {}, {}, 0});
    rows.back().samples.push_back(samples[i].d_theta);
    rows.back().seconds += samples[i].seconds;
  }
  for (HypervarianceRow& r : rows) r.spread = spread_of(r.samples);
  return rows;
}

std::vector<HypervarianceRow> hypervariance(const ProblemFactory& factory, const Tensor& theta, const Method& method,
                                            int perturbations, const std::vector<Factor>& factors, std::uint64_t seed) {
  const std::vector<Perturbation> all = perturbations_of(factory, theta, perturbations, factors, seed);
  std::vector<PerturbationSample> samples;
  for (const Perturbation& p : all) samples.push_back(sample_perturbation(factory, method, p));
  return hypervariance_rows(all, samples);
}

}  // namespace gradhpo::hpo
