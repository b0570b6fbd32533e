// The bytes of a vector of doubles or of a tensor's values (as float64): what the MPI tests
// compare across ranks and against one process, bit for bit.
#pragma once

#include <cstring>
#include <string>
#include <vector>

#include <gradhpo/engine/tensor.h>

namespace gradhpo::testing {

inline std::string bits_of(const std::vector<double>& v) {
  std::string s(v.size() * sizeof(double), '\0');
  std::memcpy(s.data(), v.data(), s.size());
  return s;
}

inline std::string bits_of(const Tensor& t) { return bits_of(t.to_vector()); }

}  // namespace gradhpo::testing
