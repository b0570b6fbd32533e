// The CUDA implementations of the DeviceBackend entries (engine/backend.h): each has the
// contract of the CPU function of the same name; backend.cpp puts them in the table. Plus the
// batched GEMM that conv.cu and matmul share.
#pragma once

#include <cstddef>
#include <cstdint>

#include "../engine/backend.h"  // PoolWindow, Dual, ConvGeometry
#include "../engine/kernels/element.h"
#include "../engine/tensor.h"

namespace gradhpo::cuda {

// memory.cpp
void* allocate(std::size_t bytes);
void deallocate(void* block);
void copy(void* dst, bool dst_on_device, const void* src, bool src_on_device, std::size_t bytes);

// elementwise.cu
void fill(Tensor& t, double value);
Tensor binary(kernels::BinaryOp op, const Tensor& a, const Tensor& b);
void axpy(Tensor& acc, const Tensor& x, double alpha);
Tensor affine(const Tensor& x, double a, double b);
Tensor unary(kernels::UnaryOp op, const Tensor& x);
Tensor unary_derivative(kernels::UnaryOp op, const Tensor& x, const Tensor& y, int order);

// reduce.cu
Tensor reduce_middle(const Tensor& x, std::int64_t A, std::int64_t B, std::int64_t C, double scale);
Tensor expand_middle(const Tensor& x, std::int64_t A, std::int64_t B, std::int64_t C, double scale);

// gemm.cpp
void gemm(const Tensor& A, const Shape& a_shape, bool trans_a, const Tensor& B, const Shape& b_shape, bool trans_b,
          Tensor& C, bool accumulate);
/// One row-major product shape for a batch: C_i (+)= op(A_i) op(B_i), i < batch, where A_i is
/// [a_rows, a_cols] stored at A + i·a_stride (a_stride 0: one matrix shared by the batch).
struct BatchedGemm {
  std::int64_t a_rows, a_cols, a_stride;
  bool trans_a;
  std::int64_t b_rows, b_cols, b_stride;
  bool trans_b;
  std::int64_t c_stride, batch;
};
template <class T> void gemm_batched(const char* op, const BatchedGemm& g, const T* A, const T* B, T* C, bool accumulate);

// channel.cu
Dual channel_affine(const Dual& x, const Dual* scale, const Dual* shift, bool with_value);
Dual channel_sum(const Dual& x);
Dual channel_dot(const Dual& a, const Dual& b);
Dual channel_broadcast(const Dual& v, const Shape& shape);

// conv.cu
Dual conv2d(const Dual& x, const Dual& w, const kernels::ConvGeometry& g, bool with_value);
Dual conv2d_backward_input(const Dual& gy, const Dual& w, const kernels::ConvGeometry& g, const Shape& x_shape);
Dual conv2d_backward_weight(const Dual& gy, const Dual& x, const kernels::ConvGeometry& g, const Shape& w_shape);

// pool.cu
void max_pool(const PoolWindow& p, std::int64_t planes, const Tensor& x, Tensor& y, Tensor& arg);
void pool_gather(const PoolWindow& p, std::int64_t planes, std::int64_t arg_planes, const Tensor& x, const Tensor& arg,
                 Tensor& out);
void pool_scatter(const PoolWindow& p, std::int64_t planes, std::int64_t arg_planes, const Tensor& gy,
                  const Tensor& arg, Tensor& out);
void avg_pool(const PoolWindow& p, std::int64_t planes, const Tensor& x, Tensor& y);
void avg_pool_adjoint(const PoolWindow& p, std::int64_t planes, const Tensor& gy, Tensor& xb);

// batchnorm.cu
void standardize(const Tensor& x, double eps, Tensor& xh, Tensor& s, Tensor& mean, Tensor& var);
void standardize_tangent(const Tensor& xh, const Tensor& s, const Tensor& xt, Tensor& out);
void standardize_backward(const Tensor& xh, const Tensor& s, const Tensor& g, const Tensor& gt, const Tensor& xt,
                          const Tensor& xht, Tensor& xb, Tensor& xbt);

// softmax.cu
Tensor log_softmax(const Tensor& x);
Tensor log_softmax_tangent(const Tensor& y, const Tensor& xt);
void log_softmax_backward(const Tensor& y, const Tensor& g, const Tensor& gt, const Tensor& yt, Tensor& xb,
                          Tensor& xb_tangent);
Tensor gather(const Tensor& x, const Tensor& labels, std::int64_t rows, std::int64_t C);
Tensor scatter(const Tensor& g, const Tensor& labels, std::int64_t rows, std::int64_t C);

// vector.cu
double dot(const Tensor& x, const Tensor& y);
std::int64_t first_non_finite(const Tensor& x);
double max_abs(const Tensor& x);
void clamp(Tensor& x, double lo, double hi);
void lerp(Tensor& acc, const Tensor& x, double m);
void sgd_update(Tensor& w, Tensor& v, const Tensor& g, const Tensor& decay_mask, const kernels::SgdUpdate& h);
void adam_update(Tensor& w, Tensor& m, Tensor& v, const Tensor& g, const Tensor& decay_mask,
                 const kernels::AdamUpdate& h);

}  // namespace gradhpo::cuda
