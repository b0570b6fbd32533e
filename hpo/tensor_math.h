// The few whole-vector operations the hypergradient methods do outside a tape (accumulating
// adjoints, contracting tangent columns), on float32 or float64 tensors, on the device of their
// operands (each is an engine kernel behind the device seam, engine/backend.h).
#pragma once

#include "../engine/tensor.h"

namespace gradhpo::hpo {

/// y += a x (same numel and dtype).
void axpy(Tensor& y, double a, const Tensor& x);
/// Σ x_i y_i, accumulated in double.
double dot(const Tensor& x, const Tensor& y);
/// Z [K, P] times u [P]: [K], accumulated in double.
Tensor columns_dot(const Tensor& Z, const Tensor& u);
/// Clips every entry to [−c, c] in place.
void clip(Tensor& x, double c);
/// max_i |x_i|.
double max_abs(const Tensor& x);
/// True when x and y have the same dtype, numel and bit pattern (NaNs included).
bool same_bits(const Tensor& x, const Tensor& y);

}  // namespace gradhpo::hpo
