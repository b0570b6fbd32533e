// C (+)= op(A) op(B) through cuBLAS, for the row-major views of engine/ops/matmul.cpp, and the
// strided-batched form conv.cu uses (one product shape over all images of a batch).
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
                         const float* alpha, const float* B, int ldb, long long sb, const float* A, int lda,
                         long long sa, const float* beta, float* C, int ldc, long long sc, int batch) {
  if (batch == 1) return cublasSgemm(h, tb, ta, n, m, k, alpha, B, ldb, A, lda, beta, C, ldc);
  return cublasSgemmStridedBatched(h, tb, ta, n, m, k, alpha, B, ldb, sb, A, lda, sa, beta, C, ldc, sc, batch);
}
cublasStatus_t gemm_call(cublasHandle_t h, cublasOperation_t tb, cublasOperation_t ta, int n, int m, int k,
                         const double* alpha, const double* B, int ldb, long long sb, const double* A, int lda,
                         long long sa, const double* beta, double* C, int ldc, long long sc, int batch) {
  if (batch == 1) return cublasDgemm(h, tb, ta, n, m, k, alpha, B, ldb, A, lda, beta, C, ldc);
  return cublasDgemmStridedBatched(h, tb, ta, n, m, k, alpha, B, ldb, sb, A, lda, sa, beta, C, ldc, sc, batch);
}

int as_int(std::int64_t v) {
  GRADHPO_CHECK(v <= 0x7fffffff, "gemm: dimension " + std::to_string(v) + " exceeds cuBLAS's 32-bit sizes");
  return static_cast<int>(v);
}

}  // namespace

template <class T> void gemm_batched(const char* op, const BatchedGemm& g, const T* A, const T* B, T* C, bool accumulate) {
  const std::int64_t m = g.trans_a ? g.a_cols : g.a_rows, k = g.trans_a ? g.a_rows : g.a_cols;
  const std::int64_t n = g.trans_b ? g.b_rows : g.b_cols;
  if (m == 0 || n == 0 || g.batch == 0) return;
  Context& c = context(op);
  const T alpha = 1, beta = accumulate ? T(1) : T(0);
  GRADHPO_CUDA_CALL(op, gemm_call(c.blas, g.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, g.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N,
                                  as_int(n), as_int(m), as_int(k), &alpha, B, as_int(g.b_cols), g.b_stride, A,
                                  as_int(g.a_cols), g.a_stride, &beta, C, as_int(n), g.c_stride, as_int(g.batch)));
}
template void gemm_batched<float>(const char*, const BatchedGemm&, const float*, const float*, float*, bool);
template void gemm_batched<double>(const char*, const BatchedGemm&, const double*, const double*, double*, bool);

void gemm(const Tensor& A, const Shape& a_shape, bool trans_a, const Tensor& B, const Shape& b_shape, bool trans_b,
          Tensor& C, bool accumulate) {
  const BatchedGemm g{a_shape[0], a_shape[1], 0, trans_a, b_shape[0], b_shape[1], 0, trans_b, 0, 1};
  dispatch_float(C.dtype(), "matmul", [&](auto zero) {
    using T = decltype(zero);
    gemm_batched<T>("matmul", g, static_cast<const T*>(A.raw()), static_cast<const T*>(B.raw()), static_cast<T*>(C.raw()),
                    accumulate);
  });
}

}  // namespace gradhpo::cuda
