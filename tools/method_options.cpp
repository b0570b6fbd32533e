#include "method_options.h"

#include <gradhpo/engine/error.h>
#include <gradhpo/hpo/registry.h>

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

std::string offline_methods_help() {
  const hpo::Registry& r = hpo::Registry::global();
  std::string s = "Offline methods (--method NAME, --option key=value):\n";
  for (const std::string& name : r.names(hpo::MethodKind::offline)) {
    const hpo::OfflineEntry& e = r.offline(name);
    s += "  " + name + ": " + e.summary + "\n";
    for (const hpo::OptionSpec& o : e.options) s += "      " + o.name + "=<" + o.allowed() + ">: " + o.help + "\n";
  }
  return s;
}

}  // namespace gradhpo::tools
