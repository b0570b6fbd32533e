// The device half of data-parallel sums (data_parallel.h): the parts that live on the GPU are
// summed over the ranks by NCCL (cuda/nccl.h: one ncclAllReduce per dtype, every rank the same
// bits, the order of additions NCCL's), the rest go on to the rank-ordered host sum. NCCL's
// communicator is made at the first device part — a collective step, as every sum is: rank 0
// makes NCCL's id and broadcasts it over the MPI communicator. One GPU per rank: choose each
// rank's device (CUDA_VISIBLE_DEVICES, or cudaSetDevice by local rank) before its first device
// tensor. In a build without NCCL (no CUDA, or GRADHPO_NCCL=OFF) nothing is taken: the host sum
// refuses device tensors, saying why.
#pragma once

#include <memory>
#include <vector>

#include "../../engine/tensor.h"
#include "communicator.h"

namespace gradhpo::mpi {

class NcclSums {
 public:
  explicit NcclSums(Communicator comm);
  ~NcclSums();
  /// Sums the device tensors among `parts` over the ranks and replaces them by their sums;
  /// returns the others, untouched, for the host sum. Collective.
  std::vector<Tensor*> sum_device_parts(const std::vector<Tensor*>& parts);
  /// NCCL allreduce calls so far (0 before the first device part, and without NCCL).
  std::int64_t allreduce_calls() const;

 private:
  Communicator comm_;
  std::shared_ptr<void> nccl_;  // cuda::NcclComm, made at the first device part
};

}  // namespace gradhpo::mpi
