// Seeded parameter initializers: PyTorch's per-layer defaults, He/Kaiming-normal and Glorot.
//
// Every random number comes from a std::mt19937_64 (fully specified by the standard) turned
// into uniforms and normals by the formulas below, not by std::*_distribution (whose algorithms
// the standard leaves to the library): the same seed gives the same weights on every platform
// and for every thread count.
#pragma once

#include <cstdint>
#include <random>
#include <string>

#include "../engine/tensor.h"

namespace gradhpo::nn {

/// How a model's weight tensors are drawn. Batch-norm γ = 1 and β = 0 in every scheme.
enum class InitScheme : std::uint8_t {
  /// PyTorch's defaults for nn.Linear and nn.Conv2d: kaiming_uniform_(a = √5) for weights,
  /// which is U(−b, b) with b = gain·√(3 / fan_in), gain = √(2 / (1 + a²)) = √(1/3), i.e.
  /// b = 1/√fan_in; biases U(−1/√fan_in, 1/√fan_in).
  pytorch,
  /// He et al. 2015 (eq. 10), mode fan_in, ReLU gain: N(0, 2 / fan_in); biases 0.
  kaiming_normal,
  /// Glorot & Bengio 2010 (eq. 16): U(−b, b) with b = √(6 / (fan_in + fan_out)); biases 0.
  glorot_uniform,
};

/// "pytorch", "kaiming", "glorot" (also "kaiming_normal", "glorot_uniform"); throws on others.
InitScheme parse_init_scheme(const std::string& name);
const char* init_scheme_name(InitScheme s);

/// What a parameter tensor is, which decides its initializer.
enum class ParamRole : std::uint8_t { weight, bias, bn_gamma, bn_beta };

/// A uniform and normal generator over std::mt19937_64 with platform-independent formulas.
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : engine_(seed) {}
  /// U[0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  /// N(0, 1) by the Box–Muller transform (one value per pair of uniforms; the second is
  /// discarded so that the stream position does not depend on call parity).
  double normal();

 private:
  std::mt19937_64 engine_;
};

/// A seed for stream `stream` (e.g. the index of a parameter tensor) derived from `seed` by
/// SplitMix64, so that nearby (seed, stream) pairs give unrelated streams.
std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t stream);

/// Fills `t` (float32 or float64) for a tensor of the given role and fans under `scheme`.
void init_tensor(Tensor& t, ParamRole role, std::int64_t fan_in, std::int64_t fan_out, InitScheme scheme,
                 Rng& rng);

}  // namespace gradhpo::nn
