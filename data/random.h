// Seeded randomness that gives the same numbers on every platform.
//
// std::mt19937_64 is fully specified by the standard, but std::uniform_int_distribution and
// std::shuffle are not (libstdc++ and libc++ turn the same engine output into different
// numbers). Splits, batch orders and augmentations must be reproducible from a seed alone, so
// these few helpers define the mapping exactly. Nothing here depends on the thread count.
#pragma once

#include <cstdint>
#include <random>
#include <utility>
#include <vector>

namespace gradhpo::data {

/// A uniform integer in [0, n), n > 0, by rejection sampling (unbiased).
inline std::uint64_t uniform_below(std::mt19937_64& rng, std::uint64_t n) {
  // Accept values below the largest multiple of n that fits in 2^64; the rest would bias.
  const std::uint64_t limit = ~std::uint64_t{0} - (~std::uint64_t{0} % n + 1) % n;
  std::uint64_t v;
  do v = rng(); while (v > limit);
  return v % n;
}

/// A fair coin from the top bit of one engine output.
inline bool coin(std::mt19937_64& rng) { return (rng() >> 63) != 0; }

/// Fisher-Yates shuffle, in place.
template <class T> void shuffle_in_place(std::vector<T>& v, std::mt19937_64& rng) {
  for (std::size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[uniform_below(rng, i)]);
}

/// A seed for stream `stream` (e.g. an epoch number) derived from `seed` with SplitMix64, so
/// that nearby (seed, stream) pairs give unrelated engines.
inline std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t stream) {
  std::uint64_t z = seed + 0x9E3779B97F4A7C15ULL * (stream + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

}  // namespace gradhpo::data
