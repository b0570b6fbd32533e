// Reader for the CIFAR-10 binary version (https://www.cs.toronto.edu/~kriz/cifar.html).
//
// No header: records of 1 label byte (0..9) then 3072 pixel bytes, the 32 x 32 R plane, then G,
// then B, each row-major. That is already [C, H, W] order, so a record converts with one pass.
// The record count is size / 3073, whatever it is (the shared test file is a 1000-record prefix).
#pragma once

#include <string>
#include <vector>

#include "dataset.h"

namespace gradhpo::data {

inline constexpr std::int64_t kCifarRecordBytes = 1 + 3 * 32 * 32;

/// The records of one or more CIFAR-10 binary files, concatenated in the order given, as a
/// Dataset with images float32 [N, 3, 32, 32] in [0, 1] and 10 classes. Throws Error naming the
/// file if one is missing, empty, not a whole number of 3073-byte records, or holds a label > 9.
Dataset read_cifar10(const std::vector<std::string>& paths, const std::string& name);

}  // namespace gradhpo::data
