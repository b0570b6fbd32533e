// Dataset: a labelled set of images in memory, the one value every loader returns.
//
// Images are float32 [N, C, H, W] (loaders scale bytes to [0, 1]); labels are N integers in
// [0, num_classes). Like Tensor, a Dataset copy is shallow: copies share the image storage.
// Functions that transform images (normalized(), subset()) return new storage.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "../engine/tensor.h"

namespace gradhpo::data {

struct Dataset {
  Tensor images;                      ///< float32 [N, C, H, W]
  std::vector<std::int32_t> labels;   ///< N labels in [0, num_classes)
  int num_classes = 0;
  std::string name;                   ///< e.g. "cifar10/train"; used in error messages

  std::int64_t size() const { return static_cast<std::int64_t>(labels.size()); }
  std::int64_t channels() const { return images.dim(1); }
  std::int64_t height() const { return images.dim(2); }
  std::int64_t width() const { return images.dim(3); }
  /// Elements of one image, C * H * W.
  std::int64_t image_numel() const { return images.shape().inner(0); }

  /// A new dataset holding records `indices` (in that order; repeats allowed) with its own
  /// image storage. Throws Error on an index outside [0, size()).
  Dataset subset(const std::vector<std::int64_t>& indices) const;
  /// The labels as an int32 tensor [N].
  Tensor label_tensor() const { return Tensor::from_labels(labels); }
  /// Throws Error unless images are float32 [N, C, H, W] with N = labels.size() and every
  /// label is in [0, num_classes).
  void check() const;
};

/// How many records carry each label: a vector of num_classes counts.
std::vector<std::int64_t> label_counts(const Dataset& d);

}  // namespace gradhpo::data
