#include "forward_columns.h"

#include <cstring>
#include <memory>
#include <vector>

#include "../../engine/error.h"

namespace gradhpo::mpi {

hpo::Shard RankColumnBlocks::block(std::int64_t N) const {
  require(N >= comm_.size(), "forward-mode columns: " + std::to_string(N) + " hyperparameters over " +
                                 std::to_string(comm_.size()) +
                                 " ranks (each rank needs at least one column: use at most " + std::to_string(N) +
                                 " ranks, or data-parallel training)");
  return hpo::shard_of(N, comm_.rank(), comm_.size());
}

void RankColumnBlocks::gather(Tensor& d_theta) const {
  const std::int64_t N = d_theta.numel();
  const hpo::Shard mine = block(N);
  const std::vector<double> all = d_theta.to(DType::f64).to_vector();
  std::string bytes(static_cast<std::size_t>(mine.size()) * sizeof(double), '\0');
  std::memcpy(bytes.data(), all.data() + mine.begin, bytes.size());
  const std::vector<std::string> blocks = comm_.gather(bytes);
  std::string assembled(static_cast<std::size_t>(N) * sizeof(double), '\0');
  for (int r = 0; r < static_cast<int>(blocks.size()); ++r) {
    const hpo::Shard b = hpo::shard_of(N, r, comm_.size());
    require(blocks[static_cast<std::size_t>(r)].size() == static_cast<std::size_t>(b.size()) * sizeof(double),
            "forward-mode columns: rank " + std::to_string(r) + " sent " +
                std::to_string(blocks[static_cast<std::size_t>(r)].size()) + " bytes for a block of " +
                std::to_string(b.size()) + " columns");
    std::memcpy(assembled.data() + b.begin * static_cast<std::int64_t>(sizeof(double)),
                blocks[static_cast<std::size_t>(r)].data(), blocks[static_cast<std::size_t>(r)].size());
  }
  comm_.broadcast(assembled);
  std::vector<double> values(static_cast<std::size_t>(N));
  std::memcpy(values.data(), assembled.data(), assembled.size());
  d_theta = Tensor::from(values, d_theta.shape(), d_theta.dtype());
}

void shard_forward_columns(hpo::BilevelProblem& problem, const Communicator& comm) {
  problem.column_blocks = std::make_shared<const RankColumnBlocks>(comm);
}

hpo::Hypergradient forward_hypergradient(const Communicator& comm, const hpo::BilevelProblem& problem,
                                         const Tensor& theta, const std::map<std::string, std::string>& options) {
  hpo::BilevelProblem sharded = problem;
  shard_forward_columns(sharded, comm);
  const hpo::ForwardMethod method(hpo::Options::parse(hpo::forward_option_specs(), options, "forward"));
  return method.compute(sharded, theta);
}

}  // namespace gradhpo::mpi
