#include "dual_math.h"

#include <cstring>

namespace gradhpo::dual {

using kernels::BinaryOp;

namespace {
std::int64_t row_size(const Tensor& block) { return block.numel() / block.dim(0); }
}  // namespace

Tensor block_op_value(BinaryOp op, const Tensor& block, const Tensor& value) {
  const std::int64_t K = block.dim(0), na = row_size(block), nb = value.numel();
  if (na >= nb) return kernels::binary(op, block, value).reshape(Shape{K, na});
  Tensor out = Tensor::empty(Shape{K, nb}, value.dtype(), value.device());
  for (std::int64_t k = 0; k < K; ++k)
    out.rows(k, 1).copy_from(kernels::binary(op, block.rows(k, 1).reshape(Shape{na}), value));
  return out;
}

Tensor value_op_block(BinaryOp op, const Tensor& value, const Tensor& block) {
  const std::int64_t K = block.dim(0), na = value.numel(), nb = row_size(block);
  if (nb >= na) return kernels::binary(op, value, block).reshape(Shape{K, nb});
  Tensor out = Tensor::empty(Shape{K, na}, value.dtype(), value.device());
  for (std::int64_t k = 0; k < K; ++k)
    out.rows(k, 1).copy_from(kernels::binary(op, value, block.rows(k, 1).reshape(Shape{nb})));
  return out;
}

Tensor broadcast_block(const Tensor& block, std::int64_t N) {
  const std::int64_t K = block.dim(0), n = row_size(block);
  if (n == N) return block;
  return kernels::expand_middle(block, K, N / n, n, 1.0).reshape(Shape{K, N});
}

Tensor sum_block_to(const Tensor& block, std::int64_t n) {
  const std::int64_t K = block.dim(0), N = row_size(block);
  if (n == N) return block;
  return kernels::reduce_middle(block, K, N / n, n, 1.0).reshape(Shape{K, n});
}

void add_to(Tensor& acc, Tensor t, double alpha) {
  if (!t.defined()) return;
  if (!acc.defined()) {
    if (alpha == 1.0) acc = t.unique() ? std::move(t) : t.clone();
    else acc = kernels::affine(t, alpha, 0.0);
    return;
  }
  kernels::axpy(acc, t, alpha);
}

}  // namespace gradhpo::dual
