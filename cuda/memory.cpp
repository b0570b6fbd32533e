// Raw device memory for the engine's storage pool (engine/storage.cpp caches these blocks, so in
// steady state no call here happens at all) and the copies between host and device.
#include "check.h"
#include "context.h"
#include "kernels.h"

namespace gradhpo::cuda {

void* allocate(std::size_t bytes) {
  context("Tensor::empty");  // the device and stream exist before the first block
  void* block = nullptr;
  GRADHPO_CUDA_CALL("Tensor::empty", cudaMalloc(&block, bytes));
  return block;
}

// cudaFree waits for the device, so no queued kernel can still be using the block.
void deallocate(void* block) { GRADHPO_CUDA_CALL("Storage", cudaFree(block)); }

void copy(void* dst, bool dst_on_device, const void* src, bool src_on_device, std::size_t bytes) {
  Context& c = context("Tensor::to");
  GRADHPO_CUDA_CALL("Tensor::to", cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, c.stream));
  // Waiting whenever the host is involved: the host may read dst as soon as we return, and may
  // free or reuse a host source at once.
  if (!dst_on_device || !src_on_device) GRADHPO_CUDA_CALL("Tensor::to", cudaStreamSynchronize(c.stream));
}

}  // namespace gradhpo::cuda
