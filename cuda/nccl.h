// NCCL (the NVIDIA Collective Communications Library, shipped inside the CUDA toolkit) for
// gradhpo's device tensors: sums over ranks, one GPU per rank, for data-parallel training whose
// weights live on the GPU (hpo/mpi/nccl_sums.h hands NCCL's id around over MPI; this file knows
// nothing of MPI). Built when GRADHPO_NCCL is on (the default where the toolkit has nccl.h and
// libnccl); without it, NcclComm's constructor throws Error saying so.
//
// What NCCL guarantees about the sums, and what we add:
//   - Every rank receives the same bits: each chunk is reduced once and the result is copied
//     unchanged to every rank (NVIDIA's NCCL maintainers: NVIDIA/nccl#855, #1497).
//   - The order of additions is NCCL's, not rank order: it follows the algorithm (ring, tree),
//     the protocol and the chunking, which NCCL chooses from the message size, the rank count and
//     the topology. With those fixed (the same NCCL, GPUs, ranks-to-GPUs mapping and sizes) the
//     ring and tree algorithms repeat the same order, so a run repeats its bits; NCCL documents no
//     stronger promise. NVLink SHARP (NVLS) reduces inside the switch and is not deterministic
//     between calls (NVIDIA/nccl#1497), and CollNet reduces in the network: unless the user set
//     NCCL_ALGO, the first NcclComm sets NCCL_ALGO=^NVLS,NVLSTree,CollNetDirect,CollNetChain
//     (as PyTorch does in its deterministic mode).
//   - float32 is summed in float32 (the MPI path packs float64 and rounds once); the result agrees
//     with the rank-ordered host sum to rounding, not to the bit.
//   - One packed buffer per dtype per call: the same parts give the same message sizes every
//     step, hence the same algorithm choice.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "../engine/tensor.h"

namespace gradhpo::cuda {

/// True when this build has NCCL (GRADHPO_NCCL).
bool nccl_built();

/// A fresh NCCL unique id (ncclGetUniqueId) as bytes: made on one rank and handed to every rank
/// of the communicator (over MPI, say) before they construct their NcclComm.
std::string nccl_unique_id();

/// A NCCL communicator of `size` ranks, this process rank `rank`, on the device gradhpo's CUDA
/// context uses (cuda.h: the current device when it was created). One GPU per rank: two ranks on
/// one GPU are refused by NCCL. Collective: every rank constructs it with the same id.
class NcclComm {
 public:
  NcclComm(const std::string& unique_id, int rank, int size);
  ~NcclComm();
  NcclComm(const NcclComm&) = delete;
  NcclComm& operator=(const NcclComm&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }

  /// Sums the device tensors among `parts` over the ranks (ncclAllReduce with ncclSum, packed
  /// into one buffer per dtype, on gradhpo's stream) and replaces each by a new tensor holding
  /// its sum — never writing into the parts' storage, which may be the tape's. Returns the
  /// parts on the host, untouched, in their order (for the caller's host sum). Collective: every
  /// rank passes parts of the same shapes, dtypes and devices. float32 and float64 only.
  std::vector<Tensor*> sum_device_parts(const std::vector<Tensor*>& parts) const;

  /// ncclAllReduce calls made by this communicator so far (tests check that the path ran).
  std::int64_t allreduce_calls() const { return calls_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int rank_ = 0, size_ = 1;
  mutable std::int64_t calls_ = 0;
};

}  // namespace gradhpo::cuda
