// Byte-to-float conversion shared by the dataset readers.
#pragma once

#include <cstddef>
#include <cstdint>

namespace gradhpo::data {

/// dst[i] = src[i] / 255, so pixel bytes 0..255 become floats in [0, 1]. Division (not a
/// multiply by 1/255) keeps every value exactly the correctly rounded b / 255.
inline void bytes_to_unit_float(const std::uint8_t* src, float* dst, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) dst[i] = static_cast<float>(src[i]) / 255.0f;
}

}  // namespace gradhpo::data
