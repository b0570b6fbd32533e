#include "init.h"

#include <cmath>
#include <numbers>
#include <string>

namespace gradhpo::nn {

InitScheme parse_init_scheme(const std::string& name) {
  if (name == "pytorch" || name == "default") return InitScheme::pytorch;
  if (name == "kaiming" || name == "kaiming_normal" || name == "he") return InitScheme::kaiming_normal;
  if (name == "glorot" || name == "glorot_uniform" || name == "xavier") return InitScheme::glorot_uniform;
  throw Error("init: unknown scheme '" + name + "' (expected pytorch, kaiming or glorot)");
}

const char* init_scheme_name(InitScheme s) {
  switch (s) {
    case InitScheme::pytorch: return "pytorch";
    case InitScheme::kaiming_normal: return "kaiming";
    case InitScheme::glorot_uniform: return "glorot";
  }
  return "?";
}

double Rng::normal() {
  const double u1 = 1.0 - uniform();  // in (0, 1]: log is finite
  const double u2 = uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t stream) {
  std::uint64_t z = seed + 0x9E3779B97F4A7C15ULL * (stream + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

void init_tensor(Tensor& t, ParamRole role, std::int64_t fan_in, std::int64_t fan_out, InitScheme scheme, Rng& rng) {
  require(fan_in > 0 && fan_out > 0, "init_tensor: fans must be positive, got fan_in " + std::to_string(fan_in) +
                                         ", fan_out " + std::to_string(fan_out));
  const std::int64_t n = t.numel();
  dispatch_float(t.dtype(), "init_tensor", [&](auto zero) {
    using T = decltype(zero);
    T* p = t.data<T>();
    auto fill_with = [&](auto draw) {
      for (std::int64_t i = 0; i < n; ++i) p[i] = static_cast<T>(draw());
    };
    switch (role) {
      case ParamRole::bn_gamma: fill_with([] { return 1.0; }); return;
      case ParamRole::bn_beta: fill_with([] { return 0.0; }); return;
      case ParamRole::bias:
        if (scheme == InitScheme::pytorch) {
          const double b = 1.0 / std::sqrt(static_cast<double>(fan_in));
          fill_with([&] { return rng.uniform(-b, b); });
        } else {
          fill_with([] { return 0.0; });
        }
        return;
      case ParamRole::weight:
        switch (scheme) {
          case InitScheme::pytorch: {
            const double b = 1.0 / std::sqrt(static_cast<double>(fan_in));
            fill_with([&] { return rng.uniform(-b, b); });
            return;
          }
          case InitScheme::kaiming_normal: {
            const double s = std::sqrt(2.0 / static_cast<double>(fan_in));
            fill_with([&] { return s * rng.normal(); });
            return;
          }
          case InitScheme::glorot_uniform: {
            const double b = std::sqrt(6.0 / static_cast<double>(fan_in + fan_out));
            fill_with([&] { return rng.uniform(-b, b); });
            return;
          }
        }
    }
  });
}

}  // namespace gradhpo::nn
