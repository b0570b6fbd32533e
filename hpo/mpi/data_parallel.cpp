#include "data_parallel.h"

#include <algorithm>
#include <vector>

#include "../../engine/error.h"
#include "nccl_sums.h"

namespace gradhpo::mpi {

namespace {

// Every part in one message: packed as float64 (float32 values convert exactly), summed in
// rank order, and written back as new tensors of each part's dtype and shape — never into the
// parts' storage, which may be the tape's own buffers.
void sum_parts(const Communicator& comm, const std::vector<Tensor*>& parts) {
  std::int64_t total = 0;
  for (const Tensor* t : parts) {
    require(t->device() == Device::cpu, "data-parallel training over MPI: a " + std::string(dtype_name(t->dtype())) +
                                            " tensor on the GPU (this build has no NCCL: its sums go through host memory; run on the CPU)");
    total += t->numel();
  }
  std::vector<double> packed(static_cast<std::size_t>(total));
  std::int64_t at = 0;
  for (const Tensor* t : parts) {
    const Tensor d = t->to(DType::f64);
    std::copy(d.data<double>(), d.data<double>() + d.numel(), packed.begin() + at);
    at += d.numel();
  }
  comm.sum_in_rank_order(packed.data(), total);
  at = 0;
  for (Tensor* t : parts) {
    const std::vector<double> values(packed.begin() + at, packed.begin() + at + t->numel());
    at += t->numel();
    *t = Tensor::from(values, t->shape(), t->dtype());
  }
}

}  // namespace

void train_data_parallel(hpo::BilevelProblem& problem, const Communicator& comm, const DataParallelOptions& options) {
  // Parts on the GPU through NCCL where built (nccl_sums.h), the rest in rank order on the host.
  auto nccl = std::make_shared<NcclSums>(comm);
  problem.sum_over_shards = [comm, nccl](const std::vector<Tensor*>& parts) { sum_parts(comm, nccl->sum_device_parts(parts)); };
  problem.sum_batch_statistics = nullptr;
  if (options.sync_batch_norm)
    problem.sum_batch_statistics = [comm](double* values, std::int64_t count) { comm.sum_in_rank_order(values, count); };
}

}  // namespace gradhpo::mpi
