#include "check.h"

#include <string>

#include "../engine/error.h"

namespace gradhpo::cuda {

void check(cudaError_t status, const char* call, const char* op) {
  if (status == cudaSuccess) return;
  (void)cudaGetLastError();  // clear a sticky launch error so the next call is judged alone
  throw Error(std::string(op) + ": " + call + " failed: " + cudaGetErrorName(status) + " (" +
              cudaGetErrorString(status) + ")");
}

void check(cublasStatus_t status, const char* call, const char* op) {
  if (status == CUBLAS_STATUS_SUCCESS) return;
  throw Error(std::string(op) + ": " + call + " failed: " + cublasGetStatusName(status));
}

void check_launch(const char* kernel, const char* op) {
  const cudaError_t status = cudaGetLastError();
  if (status == cudaSuccess) return;
  throw Error(std::string(op) + ": launch of " + kernel + " failed: " + cudaGetErrorName(status) + " (" +
              cudaGetErrorString(status) + ")");
}

}  // namespace gradhpo::cuda
