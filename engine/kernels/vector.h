// Whole-vector kernels outside any tape: what the training loop's in-place optimizer step, batch
// norm's running statistics and hpo/'s methods (accumulating adjoints, contracting tangent
// columns, finiteness checks) do on flat parameter-sized tensors.
//
// Each runs on the device of its operands, like math.h: a device tensor sends the call to that
// device's backend (engine/backend.h), and these CPU loops are the reference every backend is
// tested against. The optimizer updates are the formulas of optim_element.h, which the CUDA
// kernels compile too.
#pragma once

#include <cstdint>

#include "../tensor.h"

namespace gradhpo::kernels {

/// Σ x_i y_i of two float tensors of one dtype and numel, accumulated in double: in index order
/// on the CPU; on a device in a fixed order too (deterministic), though not the same one.
double dot(const Tensor& x, const Tensor& y);
/// The index of the first NaN or ±inf element of x, or −1 when every element is finite.
std::int64_t first_non_finite(const Tensor& x);
/// max_i |x_i| over the elements that are not NaN (0 for an empty tensor).
double max_abs(const Tensor& x);
/// x_i ← min(max(x_i, lo), hi), in place (NaN stays NaN); lo ≤ hi, else Error.
void clamp(Tensor& x, double lo, double hi);
/// acc ← (1 − m) acc + m x, each element computed in double and rounded once to acc's dtype
/// (the running mean and variance of batch norm). Same numel and dtype.
void lerp(Tensor& acc, const Tensor& x, double m);

/// One in-place step of optimizer::sgd on every element: w, v (velocity) and g of one numel and
/// dtype; `decay_mask` undefined, or shaped like w (parameter i decays by μ · mask_i).
struct SgdUpdate {
  double lr = 0, momentum = 0, weight_decay = 0;
};
void sgd_update(Tensor& w, Tensor& v, const Tensor& g, const Tensor& decay_mask, const SgdUpdate& h);

/// One in-place step of optimizer::adam, with its bias corrections (computed in double by the
/// caller, then rounded to the element type as every hyperparameter is).
struct AdamUpdate {
  double lr = 0, beta1 = 0, beta2 = 0, eps = 0, weight_decay = 0;
  bool decoupled = false, eps_inside_sqrt = false;
  double bc1 = 1, sqrt_bc2 = 1;
};
void adam_update(Tensor& w, Tensor& m, Tensor& v, const Tensor& g, const Tensor& decay_mask, const AdamUpdate& h);

}  // namespace gradhpo::kernels
