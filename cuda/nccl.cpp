#include "nccl.h"

#include <cstdlib>
#include <map>

#include "../engine/error.h"

#if GRADHPO_HAVE_NCCL
#include <nccl.h>

#include <cstring>

#include "check.h"
#include "context.h"
#endif

namespace gradhpo::cuda {

#if GRADHPO_HAVE_NCCL

namespace {

/// Throws Error("nccl: <call> failed on rank r of N: <NCCL's name> (<its last error>)").
void check_nccl(ncclResult_t status, const char* call, int rank, int size, ncclComm_t comm = nullptr) {
  if (status == ncclSuccess) return;
  std::string why = ncclGetErrorString(status);
  const char* last = ncclGetLastError(comm);
  if (last && *last) why += std::string(" (") + last + ")";
  throw Error(std::string("nccl: ") + call + " failed on rank " + std::to_string(rank) + " of " +
              std::to_string(size) + ": " + why);
}

ncclDataType_t nccl_type(DType d) { return d == DType::f64 ? ncclFloat64 : ncclFloat32; }

}  // namespace

struct NcclComm::Impl {
  ncclComm_t comm = nullptr;
};

bool nccl_built() { return true; }

std::string nccl_unique_id() {
  ncclUniqueId id;
  check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId", 0, 1);
  return std::string(reinterpret_cast<const char*>(&id), sizeof id);
}

NcclComm::NcclComm(const std::string& unique_id, int rank, int size)
    : impl_(std::make_unique<Impl>()), rank_(rank), size_(size) {
  require(unique_id.size() == sizeof(ncclUniqueId), "nccl: a unique id of " + std::to_string(unique_id.size()) +
                                                         " bytes (NCCL's are " + std::to_string(sizeof(ncclUniqueId)) +
                                                         ": make it with nccl_unique_id)");
  require(size >= 1 && rank >= 0 && rank < size,
          "nccl: rank " + std::to_string(rank) + " of " + std::to_string(size) + " is no rank of the communicator");
  // The reductions that are not deterministic between calls stay off unless the user chose
  // the algorithms (nccl.h's comment).
  setenv("NCCL_ALGO", "^NVLS,NVLSTree,CollNetDirect,CollNetChain", /*overwrite=*/0);
  context("nccl");  // NCCL binds the current device: the one gradhpo's stream lives on
  ncclUniqueId id;
  std::memcpy(&id, unique_id.data(), sizeof id);
  check_nccl(ncclCommInitRank(&impl_->comm, size, id, rank), "ncclCommInitRank", rank, size);
}

NcclComm::~NcclComm() {
  if (impl_ && impl_->comm) (void)ncclCommDestroy(impl_->comm);
}

std::vector<Tensor*> NcclComm::sum_device_parts(const std::vector<Tensor*>& parts) const {
  std::vector<Tensor*> host;
  std::map<DType, std::vector<Tensor*>> by_dtype;  // ordered: every rank packs the same way
  for (Tensor* t : parts) {
    if (t->device() != Device::cuda) {
      host.push_back(t);
      continue;
    }
    require(t->dtype() == DType::f32 || t->dtype() == DType::f64,
            std::string("nccl: a sum over the ranks of a ") + dtype_name(t->dtype()) +
                " tensor (float32 and float64 only)");
    by_dtype[t->dtype()].push_back(t);
  }
  if (by_dtype.empty()) return host;
  Context& c = context("nccl sum");
  for (auto& [dtype, group] : by_dtype) {
    std::int64_t total = 0;
    for (const Tensor* t : group) total += t->numel();
    const std::size_t element = dtype_size(dtype);
    Tensor packed = Tensor::empty(Shape{total}, dtype, Device::cuda);
    char* at = static_cast<char*>(packed.raw());
    for (const Tensor* t : group) {
      const std::size_t bytes = static_cast<std::size_t>(t->numel()) * element;
      GRADHPO_CUDA_CALL("nccl sum", cudaMemcpyAsync(at, t->raw(), bytes, cudaMemcpyDeviceToDevice, c.stream));
      at += bytes;
    }
    check_nccl(ncclAllReduce(packed.raw(), packed.raw(), static_cast<std::size_t>(total), nccl_type(dtype), ncclSum,
                             impl_->comm, c.stream),
               "ncclAllReduce", rank_, size_, impl_->comm);
    ++calls_;
    const char* from = static_cast<const char*>(packed.raw());
    for (Tensor* t : group) {
      const std::size_t bytes = static_cast<std::size_t>(t->numel()) * element;
      Tensor sum = Tensor::empty(t->shape(), dtype, Device::cuda);
      GRADHPO_CUDA_CALL("nccl sum", cudaMemcpyAsync(sum.raw(), from, bytes, cudaMemcpyDeviceToDevice, c.stream));
      from += bytes;
      *t = std::move(sum);
    }
  }
  return host;
}

#else  // built without NCCL

struct NcclComm::Impl {};

bool nccl_built() { return false; }

namespace {
[[noreturn]] void no_nccl(const char* what) {
  throw Error(std::string("nccl: ") + what +
              ": this gradhpo was built without NCCL (GRADHPO_NCCL=OFF, or nccl.h and libnccl were not found in the "
              "CUDA toolkit)");
}
}  // namespace

std::string nccl_unique_id() { no_nccl("nccl_unique_id"); }

NcclComm::NcclComm(const std::string&, int rank, int size) : rank_(rank), size_(size) { no_nccl("NcclComm"); }

NcclComm::~NcclComm() = default;

std::vector<Tensor*> NcclComm::sum_device_parts(const std::vector<Tensor*>&) const { no_nccl("sum_device_parts"); }

#endif

}  // namespace gradhpo::cuda
