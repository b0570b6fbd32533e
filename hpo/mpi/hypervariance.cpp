#include "hypervariance.h"

#include <cstring>
#include <string>

#include "../../engine/error.h"
#include "task_pool.h"

namespace gradhpo::mpi {

namespace {

// A sample on the wire: its seconds, then its hypergradient's doubles as they are in memory.
std::string encode(const hpo::PerturbationSample& s) {
  std::string b(sizeof(double) * (1 + s.d_theta.size()), '\0');
  std::memcpy(b.data(), &s.seconds, sizeof(double));
  if (!s.d_theta.empty()) std::memcpy(b.data() + sizeof(double), s.d_theta.data(), sizeof(double) * s.d_theta.size());
  return b;
}

hpo::PerturbationSample decode(const std::string& b) {
  require(b.size() >= sizeof(double) && b.size() % sizeof(double) == 0, "mpi hypervariance: a sample cut short");
  hpo::PerturbationSample s;
  std::memcpy(&s.seconds, b.data(), sizeof(double));
  s.d_theta.resize(b.size() / sizeof(double) - 1);
  if (!s.d_theta.empty()) std::memcpy(s.d_theta.data(), b.data() + sizeof(double), b.size() - sizeof(double));
  return s;
}

}  // namespace

std::vector<hpo::HypervarianceRow> hypervariance(const Communicator& comm, const hpo::ProblemFactory& factory,
                                                 const Tensor& theta, const hpo::Method& method, int perturbations,
                                                 const std::vector<hpo::Factor>& factors, std::uint64_t seed) {
  const std::vector<hpo::Perturbation> all = hpo::perturbations_of(factory, theta, perturbations, factors, seed);
  const std::vector<TaskOutcome> outcomes =
      run_tasks(comm, static_cast<std::int64_t>(all.size()), [&](std::int64_t i) {
        return encode(hpo::sample_perturbation(factory, method, all[static_cast<std::size_t>(i)]));
      });
  // Rank 0 sends every rank the samples in index order (a u64 length before each), or the first
  // error, so that every rank returns the same rows or throws the same Error.
  std::string bytes;
  if (comm.is_root()) {
    std::string error;
    for (const TaskOutcome& t : outcomes) {
      if (!t.ok && error.empty()) {
        const hpo::Perturbation& p = all[static_cast<std::size_t>(t.index)];
        error = std::string("mpi hypervariance: perturbation ") + std::to_string(p.index) + " of " +
                hpo::factor_name(p.factor) + " (task " + std::to_string(t.index) + ") failed on rank " +
                std::to_string(t.rank) + ": " + t.error;
      }
      const std::uint64_t n = t.bytes.size();
      bytes.append(reinterpret_cast<const char*>(&n), sizeof n);
      bytes += t.bytes;
    }
    bytes = error.empty() ? "+" + bytes : "!" + error;
  }
  comm.broadcast(bytes);
  require(!bytes.empty() && bytes[0] == '+', bytes.empty() ? "mpi hypervariance: nothing from rank 0" : bytes.substr(1));
  std::vector<hpo::PerturbationSample> samples;
  std::size_t at = 1;
  for (std::size_t i = 0; i < all.size(); ++i) {
    std::uint64_t n = 0;
    require(at + sizeof n <= bytes.size(), "mpi hypervariance: samples cut short");
    std::memcpy(&n, bytes.data() + at, sizeof n);
    at += sizeof n;
    require(at + n <= bytes.size(), "mpi hypervariance: samples cut short");
    samples.push_back(decode(bytes.substr(at, n)));
    at += n;
  }
  return hpo::hypervariance_rows(all, samples);
}

}  // namespace gradhpo::mpi
