#include "method_options.h"

#include <gradhpo/engine/error.h>

namespace gradhpo::tools {

std::map<std::string, std::string> option_texts(const std::vector<std::string>& items, const std::string& flag) {
  std::map<std::string, std::string> out;
  for (const std::string& item : items) {
    const std::size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0) throw Error(flag + ": '" + item + "' is not key=value");
    out[item.substr(0, eq)] = item.substr(eq + 1);
  }
  return out;
}

}  // namespace gradhpo::tools
