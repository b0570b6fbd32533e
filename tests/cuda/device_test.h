// What the device suites share: f on the CPU and on the GPU in float64 (relative difference
// ≤ 1e-12) and float32 (≤ 1e-5), every mode (tests/engine/device_compare.h).
#pragma once

#include "../engine/device_compare.h"

namespace gradhpo::testing {

constexpr double kTolF64 = 1e-12;
constexpr double kTolF32 = 1e-5;

inline void compare_on_gpu(const std::string& what, const DeviceFn& f, const Shape& w_shape, const Shape& lam_shape,
                           double lo = -1.0, double hi = 1.0, double tol64 = kTolF64, double tol32 = kTolF32) {
  compare_devices(what, f, w_shape, lam_shape, DType::f64, Device::cuda, tol64, lo, hi);
  compare_devices(what, f, w_shape, lam_shape, DType::f32, Device::cuda, tol32, lo, hi);
}

}  // namespace gradhpo::testing
