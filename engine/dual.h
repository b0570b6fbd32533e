// Dual: a value with K tangent directions carried at once.
//
// The tangent block is stored as a [K, numel] tensor: row k is the k-th direction, laid out like
// the value. Stacking the directions this way is what lets one GEMM serve all K of them
// (`[X; Ẋ_1..Ẋ_K] W` is a single product). An undefined tangent means "exactly zero" — data
// inputs and hyperparameters cost no tangent work (PyTorch's "undefined means zero").
// K = 0 (no tangent) is plain mode.
#pragma once

#include "tensor.h"

namespace gradhpo {

struct Dual {
  Tensor value;
  Tensor tangent;  // [K, value.numel()], or undefined for zero

  Dual() = default;
  explicit Dual(Tensor v) : value(std::move(v)) {}
  Dual(Tensor v, Tensor t) : value(std::move(v)), tangent(std::move(t)) {}

  bool has_tangent() const { return tangent.defined(); }
  std::int64_t K() const { return tangent.defined() ? tangent.dim(0) : 0; }
  /// Direction k of the tangent, viewed with the value's shape.
  Tensor tangent_row(std::int64_t k) const {
    return tangent.rows(k, 1).reshape(value.shape());
  }
  /// The same dual without its tangent.
  Dual value_only() const { return Dual(value); }
};

}  // namespace gradhpo
