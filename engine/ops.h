// Every primitive, plus the operator overloads that model code is written with.
#pragma once

#include "ops/batchnorm.h"
#include "ops/channel.h"
#include "ops/conv.h"
#include "ops/elementwise.h"
#include "ops/matmul.h"
#include "ops/pool.h"
#include "ops/reduce.h"
#include "ops/shape.h"
#include "ops/softmax.h"
#include "ops/weighted_l2.h"

namespace gradhpo {

inline Var operator+(const Var& a, const Var& b) { return add(a, b); }
inline Var operator-(const Var& a, const Var& b) { return sub(a, b); }
inline Var operator*(const Var& a, const Var& b) { return mul(a, b); }
inline Var operator/(const Var& a, const Var& b) { return div(a, b); }
inline Var operator-(const Var& x) { return affine(x, -1.0, 0.0); }

inline Var operator+(const Var& x, double c) { return affine(x, 1.0, c); }
inline Var operator+(double c, const Var& x) { return affine(x, 1.0, c); }
inline Var operator-(const Var& x, double c) { return affine(x, 1.0, -c); }
inline Var operator-(double c, const Var& x) { return affine(x, -1.0, c); }
inline Var operator*(const Var& x, double c) { return affine(x, c, 0.0); }
inline Var operator*(double c, const Var& x) { return affine(x, c, 0.0); }
inline Var operator/(const Var& x, double c) { return affine(x, 1.0 / c, 0.0); }
inline Var operator/(double c, const Var& x) { return affine(reciprocal(x), c, 0.0); }

// A Tensor operand is data: it enters the tape as a constant (no adjoint, no tangent).
inline Var operator+(const Var& a, const Tensor& b) { return add(a, a.tape().constant(b)); }
inline Var operator+(const Tensor& a, const Var& b) { return add(b.tape().constant(a), b); }
inline Var operator-(const Var& a, const Tensor& b) { return sub(a, a.tape().constant(b)); }
inline Var operator-(const Tensor& a, const Var& b) { return sub(b.tape().constant(a), b); }
inline Var operator*(const Var& a, const Tensor& b) { return mul(a, a.tape().constant(b)); }
inline Var operator*(const Tensor& a, const Var& b) { return mul(b.tape().constant(a), b); }
inline Var operator/(const Var& a, const Tensor& b) { return div(a, a.tape().constant(b)); }
inline Var operator/(const Tensor& a, const Var& b) { return div(b.tape().constant(a), b); }
inline Var matmul(const Tensor& a, const Var& b, bool ta = false, bool tb = false) {
  return matmul(b.tape().constant(a), b, ta, tb);
}
inline Var matmul(const Var& a, const Tensor& b, bool ta = false, bool tb = false) {
  return matmul(a, a.tape().constant(b), ta, tb);
}

}  // namespace gradhpo
