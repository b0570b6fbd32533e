// Finite differences: the independent reference that every derivative in gradhpo is checked
// against (by the tests, and by the demo in front of the user).
//
// Central differences with one step of Richardson extrapolation,
//     D(h) = (g(h) − g(−h)) / 2h,    D = (4 D(h/2) − D(h)) / 3,
// whose truncation error is O(h⁴): with h = 1e-3 in float64 both truncation and rounding stay
// near 1e-12, so a 1e-6 relative tolerance separates a right rule from one that is off by a
// sign or a factor of 2 by many orders of magnitude.
#pragma once

#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

namespace gradhpo::fd {

/// d/dt g(t) at t = 0 for a vector-valued g.
inline std::vector<double> derivative(const std::function<std::vector<double>(double)>& g, double h = 1e-3) {
  auto central = [&](double s) {
    std::vector<double> p = g(s);
    const std::vector<double> m = g(-s);
    for (std::size_t i = 0; i < p.size(); ++i) p[i] = (p[i] - m[i]) / (2 * s);
    return p;
  };
  std::vector<double> d1 = central(h);
  const std::vector<double> d2 = central(h / 2);
  for (std::size_t i = 0; i < d1.size(); ++i) d1[i] = (4 * d2[i] - d1[i]) / 3;
  return d1;
}

/// d/dt f(t) at t = 0 for a scalar f.
inline double derivative(const std::function<double(double)>& f, double h = 1e-3) {
  return derivative([&](double t) { return std::vector<double>{f(t)}; }, h)[0];
}

/// x + a y.
inline std::vector<double> axpy(const std::vector<double>& x, double a, const std::vector<double>& y) {
  std::vector<double> r(x);
  for (std::size_t i = 0; i < r.size(); ++i) r[i] += a * y[i];
  return r;
}

inline double norm(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x * x;
  return std::sqrt(s);
}

/// ‖a − b‖ / max(‖a‖, ‖b‖, floor): norm-wise relative error; the floor only matters when both
/// are (nearly) zero.
inline double rel_error(const std::vector<double>& a, const std::vector<double>& b, double floor = 1e-10) {
  double d = 0;
  for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i) d += (a[i] - b[i]) * (a[i] - b[i]);
  if (a.size() != b.size()) return INFINITY;
  return std::sqrt(d) / std::max({norm(a), norm(b), floor});
}

}  // namespace gradhpo::fd
