// The one exception type of gradhpo. Messages say what went wrong, where (the op or file), and
// what was expected versus what was got, e.g.
//   "matmul: inner dimensions differ: a is [3, 4], b is [5, 2]".
#pragma once

#include <stdexcept>
#include <string>

namespace gradhpo {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

/// Throws Error(message) unless `ok`. The message is built even when `ok` holds, so hot paths
/// use GRADHPO_CHECK instead.
inline void require(bool ok, const std::string& message) {
  if (!ok) throw Error(message);
}

}  // namespace gradhpo

/// Throws gradhpo::Error(message...) unless `cond`; the message expression is evaluated only on
/// failure, so a check on a hot path costs a branch and never a string allocation.
#define GRADHPO_CHECK(cond, ...)                                  \
  do {                                                            \
    if (!(cond)) throw ::gradhpo::Error(__VA_ARGS__);             \
  } while (0)

namespace gradhpo {

template <class D>
inline void check_dtype_access(D have, D want, const char* have_name, const char* want_name) {
  if (have != want)
    throw Error(std::string("Tensor::data: tensor holds ") + have_name + ", accessed as " + want_name);
}

inline void check_host_access(bool on_host, const char* device) {
  if (!on_host)
    throw Error(std::string("Tensor::data: the tensor is on ") + device +
                ", host code cannot read it (an op without a kernel for that device, or operands on "
                "different devices; Tensor::to(Device::cpu) copies it back)");
}

}  // namespace gradhpo
