// Mini-batches over a Dataset, shuffled from a seed.
//
// The order of epoch e is a function of (seed, e) only: restarting at epoch e reproduces it
// exactly, whatever happened before (no hidden engine state carried between epochs).
#pragma once

#include <cstdint>
#include <vector>

#include "dataset.h"

namespace gradhpo::data {

struct Batch {
  Tensor x;                           ///< float32 [B, C, H, W]
  std::vector<std::int32_t> y;        ///< B labels
  std::vector<std::int64_t> indices;  ///< the dataset rows in the batch (per-example weights)

  std::int64_t size() const { return static_cast<std::int64_t>(y.size()); }
  /// The labels as an int32 tensor [B].
  Tensor y_tensor() const { return Tensor::from_labels(y); }
};

class BatchIterator {
 public:
  /// Batches of `batch_size` records of `data` (held by shallow copy: the images are shared).
  /// With `shuffle`, each epoch visits the records in a seeded random order; otherwise in
  /// dataset order. With `drop_last`, a final batch smaller than batch_size is skipped.
  /// Starts at epoch 0.
  BatchIterator(const Dataset& data, std::int64_t batch_size, std::uint64_t seed, bool shuffle = true,
                bool drop_last = false);

  /// Rewinds to the first batch of epoch `epoch` (>= 0).
  void start_epoch(std::int64_t epoch);
  /// Fills `out` with the next batch of the current epoch, or returns false when the epoch is
  /// over. `out.x` is reused when it has the right shape and nothing else shares it.
  bool next(Batch& out);

  std::int64_t epoch() const { return epoch_; }
  std::int64_t batch_size() const { return batch_size_; }
  std::int64_t batches_per_epoch() const;
  /// The record order of the current epoch.
  const std::vector<std::int64_t>& order() const { return order_; }

 private:
  Dataset data_;
  std::int64_t batch_size_;
  std::uint64_t seed_;
  bool shuffle_, drop_last_;
  std::int64_t epoch_ = 0;
  std::int64_t pos_ = 0;
  std::vector<std::int64_t> order_;
};

}  // namespace gradhpo::data
