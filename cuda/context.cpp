#include "context.h"

#include <mutex>
#include <string>

#include "check.h"
#include "cuda.h"
#include "cudnn_conv.h"

namespace gradhpo::cuda {

Context& context(const char* op) {
  static Context* ctx = nullptr;
  static std::once_flag once;
  std::call_once(once, [op] {
    auto* c = new Context;
    GRADHPO_CUDA_CALL(op, cudaGetDevice(&c->device));
    GRADHPO_CUDA_CALL(op, cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking));
    GRADHPO_CUDA_CALL(op, cublasCreate(&c->blas));
    GRADHPO_CUDA_CALL(op, cublasSetStream(c->blas, c->stream));
    // Exact IEEE products unless set_tf32(true): the CPU comparison tests depend on it.
    GRADHPO_CUDA_CALL(op, cublasSetMathMode(c->blas, CUBLAS_DEFAULT_MATH));
    ctx = c;
  });
  return *ctx;
}

bool available() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  return count > 0;
}

std::string describe_device() {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    (void)cudaGetLastError();
    return std::string("no CUDA device: ") + cudaGetErrorName(status) + " (" + cudaGetErrorString(status) + ")";
  }
  if (count == 0) return "no CUDA device: the driver reports none";
  int device = 0;
  cudaDeviceProp p{};
  GRADHPO_CUDA_CALL("describe_device", cudaGetDevice(&device));
  GRADHPO_CUDA_CALL("describe_device", cudaGetDeviceProperties(&p, device));
  return std::string(p.name) + " (sm_" + std::to_string(p.major) + std::to_string(p.minor) + ", " +
         std::to_string(p.totalGlobalMem >> 30) + " GiB)";
}

void synchronize() {
  Context& c = context("synchronize");
  GRADHPO_CUDA_CALL("synchronize", cudaStreamSynchronize(c.stream));
}

void set_tf32(bool enabled) {
  Context& c = context("set_tf32");
  GRADHPO_CUDA_CALL("set_tf32", cublasSetMathMode(c.blas, enabled ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
  cudnn_follow_tf32(enabled);
}

}  // namespace gradhpo::cuda
