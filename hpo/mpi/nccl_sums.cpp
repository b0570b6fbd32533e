#include "nccl_sums.h"

#include <algorithm>

#if GRADHPO_HAVE_CUDA
#include "../../cuda/nccl.h"
#endif

namespace gradhpo::mpi {

NcclSums::NcclSums(Communicator comm) : comm_(std::move(comm)) {}

NcclSums::~NcclSums() = default;

std::vector<Tensor*> NcclSums::sum_device_parts(const std::vector<Tensor*>& parts) {
#if GRADHPO_HAVE_CUDA
  const auto on_device = [](const Tensor* t) { return t->device() == Device::cuda; };
  if (!cuda::nccl_built() || std::none_of(parts.begin(), parts.end(), on_device)) return parts;
  if (!nccl_) {
    std::string id = comm_.is_root() ? cuda::nccl_unique_id() : std::string();
    comm_.broadcast(id);
    nccl_ = std::make_shared<cuda::NcclComm>(id, comm_.rank(), comm_.size());
  }
  return static_cast<const cuda::NcclComm*>(nccl_.get())->sum_device_parts(parts);
#else
  return parts;
#endif
}

std::int64_t NcclSums::allreduce_calls() const {
#if GRADHPO_HAVE_CUDA
  if (nccl_) return static_cast<const cuda::NcclComm*>(nccl_.get())->allreduce_calls();
#endif
  return 0;
}

}  // namespace gradhpo::mpi
