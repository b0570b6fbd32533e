#include "split.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "random.h"

namespace gradhpo::data {

SplitIndices split_indices(std::int64_t n, double val_fraction, std::uint64_t seed) {
  require(n >= 1, "split_indices: need at least one record, got " + std::to_string(n));
  require(val_fraction >= 0 && val_fraction < 1,
          "split_indices: val_fraction must be in [0, 1), got " + std::to_string(val_fraction));
  const auto n_val = static_cast<std::int64_t>(std::llround(val_fraction * static_cast<double>(n)));
  require(n_val < n, "split_indices: val_fraction " + std::to_string(val_fraction) + " of " +
                         std::to_string(n) + " records leaves no training records");
  std::vector<std::int64_t> perm(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) perm[static_cast<std::size_t>(i)] = i;
  std::mt19937_64 rng(seed);
  shuffle_in_place(perm, rng);
  SplitIndices s;
  s.val.assign(perm.begin(), perm.begin() + n_val);
  s.train.assign(perm.begin() + n_val, perm.end());
  // Ascending order keeps each part in the source's order (and its memory access sequential).
  std::sort(s.val.begin(), s.val.end());
  std::sort(s.train.begin(), s.train.end());
  return s;
}

TrainVal split_train_val(const Dataset& train, double val_fraction, std::uint64_t seed) {
  const SplitIndices s = split_indices(train.size(), val_fraction, seed);
  TrainVal out{train.subset(s.train), train.subset(s.val)};
  out.train.name = train.name + ":train";
  out.val.name = train.name + ":val";
  return out;
}

}  // namespace gradhpo::data
