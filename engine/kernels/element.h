// The element math, once: the scalar formulas of every elementwise op and of its first and
// second derivatives, as functors that the CPU kernels (engine/kernels/math.cpp) and the CUDA
// kernels (cuda/elementwise.cu) both call. The CPU tests therefore exercise the very text the
// GPU runs; only the loops around these functors differ between backends.
//
// Plain C++ sees GRADHPO_HD as nothing; nvcc sees __host__ __device__. This header includes
// nothing but <cmath>, so .cu files can include it without the engine's Eigen headers.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define GRADHPO_HD __host__ __device__
#else
#define GRADHPO_HD
#endif

namespace gradhpo::kernels {

enum class BinaryOp { add, sub, mul, div };
enum class UnaryOp { exp, log, tanh, sigmoid, relu, softplus, square, sqrt, reciprocal };

namespace element {

// Unqualified calls after these using-declarations find std:: overloads on the host and CUDA's
// float/double overloads on the device.
using std::abs;
using std::exp;
using std::log;
using std::log1p;
using std::sqrt;
using std::tanh;

// ---- binary ----------------------------------------------------------------------------------
struct Add { template <class T> GRADHPO_HD T operator()(T a, T b) const { return a + b; } };
struct Sub { template <class T> GRADHPO_HD T operator()(T a, T b) const { return a - b; } };
struct Mul { template <class T> GRADHPO_HD T operator()(T a, T b) const { return a * b; } };
struct Div { template <class T> GRADHPO_HD T operator()(T a, T b) const { return a / b; } };

/// s + alpha v: the accumulation of kernels::axpy.
template <class T> struct Axpy {
  T alpha;
  GRADHPO_HD T operator()(T s, T v) const { return s + alpha * v; }
};
/// a x + b: kernels::affine.
template <class T> struct Affine {
  T a, b;
  GRADHPO_HD T operator()(T x) const { return a * x + b; }
};

/// Calls f(functor) for a binary op: the one switch from the runtime op to a functor type.
template <class F> decltype(auto) with_binary(BinaryOp op, F&& f) {
  switch (op) {
    case BinaryOp::add: return f(Add{});
    case BinaryOp::sub: return f(Sub{});
    case BinaryOp::mul: return f(Mul{});
    case BinaryOp::div: break;
  }
  return f(Div{});
}

// ---- unary: value(x), d1(x, y) = f'(x), d2(x, y) = f''(x), with y = f(x) --------------------
// Derivatives are written in terms of y where that is cheaper:
//   exp: y, y          log: 1/x, -1/x^2          tanh: 1-y^2, -2y(1-y^2)
//   sigmoid: y(1-y), y(1-y)(1-2y)                relu: [x>0], 0
//   softplus: s=sigmoid(x), s(1-s)               square: 2x, 2
//   sqrt: 1/(2y), -1/(4y^3)                      reciprocal: -y^2, 2y^3

template <class T> GRADHPO_HD T sigmoid_of(T x) {
  // Split by sign so exp never overflows.
  return x >= T(0) ? T(1) / (T(1) + exp(-x)) : exp(x) / (T(1) + exp(x));
}

struct Exp {
  template <class T> GRADHPO_HD static T value(T x) { return exp(x); }
  template <class T> GRADHPO_HD static T d1(T, T y) { return y; }
  template <class T> GRADHPO_HD static T d2(T, T y) { return y; }
};
struct Log {
  template <class T> GRADHPO_HD static T value(T x) { return log(x); }
  template <class T> GRADHPO_HD static T d1(T x, T) { return T(1) / x; }
  template <class T> GRADHPO_HD static T d2(T x, T) { return T(-1) / (x * x); }
};
struct Tanh {
  template <class T> GRADHPO_HD static T value(T x) { return tanh(x); }
  template <class T> GRADHPO_HD static T d1(T, T y) { return T(1) - y * y; }
  template <class T> GRADHPO_HD static T d2(T, T y) { return T(-2) * y * (T(1) - y * y); }
};
struct Sigmoid {
  template <class T> GRADHPO_HD static T value(T x) { return sigmoid_of(x); }
  template <class T> GRADHPO_HD static T d1(T, T y) { return y * (T(1) - y); }
  template <class T> GRADHPO_HD static T d2(T, T y) { return y * (T(1) - y) * (T(1) - T(2) * y); }
};
struct Relu {
  template <class T> GRADHPO_HD static T value(T x) { return x > T(0) ? x : T(0); }
  template <class T> GRADHPO_HD static T d1(T x, T) { return x > T(0) ? T(1) : T(0); }
  template <class T> GRADHPO_HD static T d2(T, T) { return T(0); }
};
struct Softplus {
  // log(1 + e^x) = max(x, 0) + log1p(e^-|x|), stable for large |x|.
  template <class T> GRADHPO_HD static T value(T x) { return (x > T(0) ? x : T(0)) + log1p(exp(-abs(x))); }
  template <class T> GRADHPO_HD static T d1(T x, T) { return sigmoid_of(x); }
  template <class T> GRADHPO_HD static T d2(T x, T) {
    const T s = sigmoid_of(x);
    return s * (T(1) - s);
  }
};
struct Square {
  template <class T> GRADHPO_HD static T value(T x) { return x * x; }
  template <class T> GRADHPO_HD static T d1(T x, T) { return T(2) * x; }
  template <class T> GRADHPO_HD static T d2(T, T) { return T(2); }
};
struct Sqrt {
  template <class T> GRADHPO_HD static T value(T x) { return sqrt(x); }
  template <class T> GRADHPO_HD static T d1(T, T y) { return T(0.5) / y; }
  template <class T> GRADHPO_HD static T d2(T, T y) { return T(-0.25) / (y * y * y); }
};
struct Reciprocal {
  template <class T> GRADHPO_HD static T value(T x) { return T(1) / x; }
  template <class T> GRADHPO_HD static T d1(T, T y) { return -y * y; }
  template <class T> GRADHPO_HD static T d2(T, T y) { return T(2) * y * y * y; }
};

/// f(x) of a unary functor type, as a callable object.
template <class Fn> struct Value {
  template <class T> GRADHPO_HD T operator()(T x) const { return Fn::value(x); }
};
/// f'(x) and f''(x) of a unary functor type, given x and y = f(x), as callable objects.
template <class Fn> struct FirstDerivative {
  template <class T> GRADHPO_HD T operator()(T x, T y) const { return Fn::d1(x, y); }
};
template <class Fn> struct SecondDerivative {
  template <class T> GRADHPO_HD T operator()(T x, T y) const { return Fn::d2(x, y); }
};

/// Calls f(functor) for a unary op: the one switch from the runtime op to a functor type.
template <class F> decltype(auto) with_unary(UnaryOp op, F&& f) {
  switch (op) {
    case UnaryOp::exp: return f(Exp{});
    case UnaryOp::log: return f(Log{});
    case UnaryOp::tanh: return f(Tanh{});
    case UnaryOp::sigmoid: return f(Sigmoid{});
    case UnaryOp::relu: return f(Relu{});
    case UnaryOp::softplus: return f(Softplus{});
    case UnaryOp::square: return f(Square{});
    case UnaryOp::sqrt: return f(Sqrt{});
    case UnaryOp::reciprocal: break;
  }
  return f(Reciprocal{});
}

}  // namespace element
}  // namespace gradhpo::kernels
