// The process's CUDA context as gradhpo uses it: the current device, one stream for all work,
// one cuBLAS handle bound to that stream. Created on first use (so a program that never touches
// a device tensor never initializes CUDA) and never destroyed (tensors may outlive statics).
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

namespace gradhpo::cuda {

struct Context {
  int device = 0;
  cudaStream_t stream = nullptr;
  cublasHandle_t blas = nullptr;
};

/// The context, created on first call; throws gradhpo::Error naming `op` when there is no device.
Context& context(const char* op);

}  // namespace gradhpo::cuda
