#include "cpu.h"

#include <unistd.h>

#include <cstdlib>
#include <string>

#include "../error.h"

namespace gradhpo::kernels {

int env_choice(const char* name, std::initializer_list<const char*> choices) {
  const char* env = std::getenv(name);
  const std::string v = env ? env : "";
  if (v.empty() || v == "auto") return 0;
  std::string expected;  // "a, b or auto"
  int index = 1;
  for (const char* c : choices) {
    if (v == c) return index;
    expected += std::string(c) + (index < static_cast<int>(choices.size()) ? ", " : " or auto");
    ++index;
  }
  throw Error(std::string(name) + ": expected " + expected + ", got '" + v + "'");
}

std::int64_t l2_cache_bytes() {
  static const std::int64_t bytes = [] {
    const long l2 = ::sysconf(_SC_LEVEL2_CACHE_SIZE);
    return l2 > 0 ? std::int64_t{l2} : std::int64_t{256 * 1024};  // unknown: assume a small L2
  }();
  return bytes;
}

}  // namespace gradhpo::kernels
