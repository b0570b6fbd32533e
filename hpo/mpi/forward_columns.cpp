#include "forward_columns.h"

#include <cstring>
#include <vector>

#include "../../engine/error.h"
#include "../registry.h"

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

void register_distributed_methods(const Communicator& comm) {
  hpo::Registry& r = hpo::Registry::global();
  hpo::OfflineEntry e = r.offline("forward");  // throws, naming the entries, before register_builtin_methods
  e.name = "forward-columns";
  e.summary = "forward mode with the columns of Z spread over the MPI ranks (" + std::to_string(comm.size()) +
              "): the same hypergradient, K/N directions per rank";
  e.test_variants.clear();
  auto blocks = std::make_shared<const RankColumnBlocks>(comm);
  e.make = [blocks](const hpo::Options& options) -> std::unique_ptr<hpo::Method> {
    return std::make_unique<hpo::ForwardMethod>(options, blocks);
  };
  r.remove(e.name);
  r.add(std::move(e));
}

}  // namespace gradhpo::mpi
