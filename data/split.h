// Validation split carved out of a training set. The test set is never an input here: tuning
// hyperparameters on it would leak it into the result.
#pragma once

#include <cstdint>
#include <vector>

#include "dataset.h"

namespace gradhpo::data {

struct SplitIndices {
  std::vector<std::int64_t> train;  ///< ascending
  std::vector<std::int64_t> val;    ///< ascending
};

/// Chooses round(val_fraction * n) of the indices 0..n-1 uniformly at random (seeded; the same
/// seed gives the same split on every platform) for validation, the rest for training. Every
/// index lands in exactly one part. `val_fraction` must be in [0, 1) and leave at least one
/// training index. Not stratified.
SplitIndices split_indices(std::int64_t n, double val_fraction, std::uint64_t seed);

struct TrainVal {
  Dataset train;  ///< named "<name>:train"
  Dataset val;    ///< named "<name>:val"
};

/// Splits a training set with split_indices; both parts get their own image storage.
TrainVal split_train_val(const Dataset& train, double val_fraction, std::uint64_t seed);

}  // namespace gradhpo::data
