// Reader for the IDX format of MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/).
//
// Big-endian header: magic 0x00000803 (unsigned bytes, 3 dims) then count, rows, cols for
// images; magic 0x00000801 then count for labels; then one byte per pixel or label. Files may be
// gzip-compressed or not, named with or without ".gz" (see file_bytes.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "../engine/tensor.h"
#include "dataset.h"

namespace gradhpo::data {

/// The images of an IDX image file as float32 [N, 1, rows, cols] scaled to [0, 1].
/// Throws Error (naming the file) on a wrong magic number, a truncated header, zero images or
/// a body whose size is not count * rows * cols bytes.
Tensor read_idx_images(const std::string& path);

/// The labels of an IDX label file; each must be below `num_classes`.
std::vector<std::int32_t> read_idx_labels(const std::string& path, int num_classes);

/// One split (images + labels files) as a Dataset. The two counts must agree. When
/// `rows`/`cols` are positive the images must have that size (28 x 28 for MNIST).
Dataset load_idx(const std::string& images_path, const std::string& labels_path, int num_classes,
                 const std::string& name, std::int64_t rows = 0, std::int64_t cols = 0);

}  // namespace gradhpo::data
