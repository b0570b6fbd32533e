// The CUDA implementations of the DeviceBackend entries (engine/backend.h): each has the
// contract of the CPU function of the same name; backend.cpp puts them in the table.
#pragma once

#include <cstddef>
#include <cstdint>

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

// softmax.cu
Tensor log_softmax(const Tensor& x);
Tensor log_softmax_tangent(const Tensor& y, const Tensor& xt);
void log_softmax_backward(const Tensor& y, const Tensor& g, const Tensor& gt, const Tensor& yt, Tensor& xb,
                          Tensor& xb_tangent);
Tensor gather(const Tensor& x, const Tensor& labels, std::int64_t rows, std::int64_t C);
Tensor scatter(const Tensor& g, const Tensor& labels, std::int64_t rows, std::int64_t C);

}  // namespace gradhpo::cuda
