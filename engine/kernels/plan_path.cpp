#include "plan_path.h"

#include <sys/stat.h>

#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>

namespace gradhpo::kernels {

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) {
        std::string m = line.substr(colon + 1);
        m.erase(0, m.find_first_not_of(' '));
        return m;
      }
    }
  return "unknown CPU";
}

std::string machine_plan_path(const std::string& stem, const std::string& identity) {
  std::string dir;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg == '/') dir = xdg;
  else if (const char* home = std::getenv("HOME"); home && *home) dir = std::string(home) + "/.cache";
  else return "";
  // The CPU model, readable, and a hash of everything the plan depends on.
  std::uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (unsigned char c : identity) h = (h ^ c) * 1099511628211ull;
  std::string model;
  for (char c : cpu_model()) model += std::isalnum(static_cast<unsigned char>(c)) ? c : '-';
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return dir + "/gradhpo/" + stem + "-" + model.substr(0, 60) + "-" + hex + ".txt";
}

bool make_parent_dirs(const std::string& path) {
  for (std::size_t i = 1; i < path.size(); ++i)
    if (path[i] == '/' && ::mkdir(path.substr(0, i).c_str(), 0755) != 0 && errno != EEXIST) return false;
  return true;
}

}  // namespace gradhpo::kernels
