// A machine-independent count of the arithmetic the engine has done: the multiply-adds of every
// matrix product (m·n·k per GEMM, kernels/gemm.h) and of every convolution (its products, also
// when a direct kernel computes them without calling the GEMM, kernels/conv.cpp), and one unit
// per element of the elementwise kernels (add, multiply, unary functions, axpy, the optimizer
// updates). Comparisons (hpo/search/budget.h) charge methods in this count, expressed in
// plain-training-step equivalents, so that a budget means the same on every machine.
//
// Process-wide totals, counted with relaxed atomics (exact: every kernel adds its own count
// once, whatever thread it runs on); a reader takes differences of two snapshots.
#pragma once

#include <cstdint>

namespace gradhpo {

struct WorkCount {
  std::int64_t multiply_adds = 0;  ///< GEMM and convolution multiply-adds
  std::int64_t elementwise = 0;    ///< elements the elementwise kernels touched
  /// One number: a multiply-add and an elementwise operation count the same.
  double total() const { return static_cast<double>(multiply_adds) + static_cast<double>(elementwise); }
  WorkCount operator-(const WorkCount& o) const { return {multiply_adds - o.multiply_adds, elementwise - o.elementwise}; }
  WorkCount operator+(const WorkCount& o) const { return {multiply_adds + o.multiply_adds, elementwise + o.elementwise}; }
};

/// The totals since the process started.
WorkCount work_count();

/// Kernels' hooks.
void count_multiply_adds(std::int64_t n);
void count_elementwise(std::int64_t n);

}  // namespace gradhpo
