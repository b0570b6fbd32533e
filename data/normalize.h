// Per-channel standardization: statistics from the training part, applied to every dataset.
#pragma once

#include <vector>

#include "../engine/tensor.h"
#include "dataset.h"

namespace gradhpo::data {

struct ChannelStats {
  std::vector<double> mean;  ///< one per channel
  std::vector<double> std;   ///< population standard deviation, one per channel
};

/// Mean and standard deviation of each channel of float32 images [N, C, H, W] over all N*H*W
/// values. Sequential sums in double: the result does not depend on the thread count.
/// Throws Error when a channel is constant (zero deviation cannot be divided by).
ChannelStats channel_stats(const Tensor& images);
inline ChannelStats channel_stats(const Dataset& d) { return channel_stats(d.images); }

/// images[:, c] = (images[:, c] - mean[c]) / std[c], in place. Any [N, C, H, W] with C matching.
void normalize_inplace(Tensor& images, const ChannelStats& stats);

/// A normalized copy of `d` (its own storage; `d` and its shallow copies are left unchanged).
Dataset normalized(const Dataset& d, const ChannelStats& stats);

}  // namespace gradhpo::data
