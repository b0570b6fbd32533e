// CUDA and cuBLAS status codes as gradhpo::Error: every call into the runtime or cuBLAS goes
// through GRADHPO_CUDA_CALL / GRADHPO_CUBLAS_CALL, whose message names the op that made the
// call, the call itself and the code's name, e.g.
//   "matmul: cublasSgemm(...) failed: CUBLAS_STATUS_EXECUTION_FAILED"
//   "Tensor::empty: cudaMalloc(&block, bytes) failed: cudaErrorMemoryAllocation (out of memory)"
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

namespace gradhpo::cuda {

/// Throws gradhpo::Error unless `status` is cudaSuccess.
void check(cudaError_t status, const char* call, const char* op);
/// Throws gradhpo::Error unless `status` is CUBLAS_STATUS_SUCCESS.
void check(cublasStatus_t status, const char* call, const char* op);
/// Checks that the last kernel launch was accepted (launches report errors only this way).
void check_launch(const char* kernel, const char* op);

}  // namespace gradhpo::cuda

#define GRADHPO_CUDA_CALL(op, ...) ::gradhpo::cuda::check((__VA_ARGS__), #__VA_ARGS__, op)
