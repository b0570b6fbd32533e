#include "cpu.h"

#include <unistd.h>

namespace gradhpo::kernels {

std::int64_t l2_cache_bytes() {
  static const std::int64_t bytes = [] {
    const long l2 = ::sysconf(_SC_LEVEL2_CACHE_SIZE);
    return l2 > 0 ? std::int64_t{l2} : std::int64_t{256 * 1024};  // unknown: assume a small L2
  }();
  return bytes;
}

}  // namespace gradhpo::kernels
