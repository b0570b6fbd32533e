// C (+)= op(A) op(B) through cuBLAS, for the row-major views of engine/ops/matmul.cpp.
//
// cuBLAS is column-major, and a row-major [r, c] matrix is the column-major [c, r] matrix with
// leading dimension c. So the row-major C = op(A) op(B) is computed as the column-major
// Cᵀ = op(B)ᵀ op(A)ᵀ: the operands swap places and keep their transpose flags. The stacked
// K-tangent product (a [K·m, k] block times one matrix) is then one tall GEMM, as on the CPU.
#include <cstdint>
#include <string>

#include "check.h"
#include "context.h"
#include "kernels.h"

namespace gradhpo::cuda {
namespace {

cublasStatus_t gemm_call(cublasHandle_t h, cublasOperation_t tb, cublasOperation_t ta, int n, int m, int k,
                         const float* alpha, const float* B, int ldb, const float* A, int lda, const float* beta,
                         float* C, int ldc) {
  return cublasSgemm(h, tb, ta, n, m, k, alpha, B, ldb, A, lda, beta, C, ldc);
}
cublasStatus_t gemm_call(cublasHandle_t h, cublasOperation_t tb, cublasOperation_t ta, int n, int m, int k,
                         const double* alpha, const double* B, int ldb, const double* A, int lda, const double* beta,
                         double* C, int ldc) {
  return cublasDgemm(h, tb, ta, n, m, k, alpha, B, ldb, A, lda, beta, C, ldc);
}

int as_int(std::int64_t v) {
  GRADHPO_CHECK(v <= 0x7fffffff, "matmul: dimension " + std::to_string(v) + " exceeds cuBLAS's 32-bit sizes");
  return static_cast<int>(v);
}

}  // namespace

void gemm(const Tensor& A, const Shape& a_shape, bool trans_a, const Tensor& B, const Shape& b_shape, bool trans_b,
          Tensor& C, bool accumulate) {
  const std::int64_t m = trans_a ? a_shape[1] : a_shape[0], k = trans_a ? a_shape[0] : a_shape[1];
  const std::int64_t n = trans_b ? b_shape[0] : b_shape[1];
  if (m == 0 || n == 0) return;
  Context& c = context("matmul");
  dispatch_float(C.dtype(), "matmul", [&](auto zero) {
    using T = decltype(zero);
    const T alpha = 1, beta = accumulate ? T(1) : T(0);
    GRADHPO_CUDA_CALL("matmul",
                      gemm_call(c.blas, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N,
                                as_int(n), as_int(m), as_int(k), &alpha, static_cast<const T*>(B.raw()),
                                as_int(b_shape[1]), static_cast<const T*>(A.raw()), as_int(a_shape[1]), &beta,
                                static_cast<T*>(C.raw()), as_int(n)));
  });
}

}  // namespace gradhpo::cuda
