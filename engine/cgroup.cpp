#include "cgroup.h"

#include <filesystem>
#include <fstream>
#include <sstream>

namespace gradhpo::cgroup {

namespace fs = std::filesystem;

std::string first_line(const std::string& file) {
  std::ifstream f(file);
  std::string line;
  if (f) std::getline(f, line);
  return line;
}

namespace {

/// `base`/`path` and its parents up to `base`. A path that does not exist under `base` (a
/// cgroup namespace shows the process its own group as "/") leaves `base` alone.
std::vector<std::string> chain(const fs::path& base, const std::string& path) {
  std::vector<std::string> dirs;
  std::error_code ec;
  fs::path p = base / fs::path(path).relative_path();
  if (!fs::is_directory(p, ec)) p = base;
  for (;;) {
    dirs.push_back(p.string());
    if (p == base || !p.has_parent_path() || p.parent_path() == p) break;
    p = p.parent_path();
  }
  return dirs;
}

}  // namespace

Folders folders(const std::string& controller, const std::string& root) {
  Folders out;
  const fs::path mounts = fs::path(root + "/sys/fs/cgroup");
  std::ifstream f(root + "/proc/self/cgroup");
  std::string unified_path;
  bool has_unified = false;
  std::error_code ec;
  for (std::string line; std::getline(f, line);) {
    // "id:controllers:path"; v2 is "0::path".
    const std::size_t a = line.find(':'), b = a == std::string::npos ? a : line.find(':', a + 1);
    if (b == std::string::npos) continue;
    const std::string controllers = line.substr(a + 1, b - a - 1), path = line.substr(b + 1);
    if (controllers.empty()) {
      has_unified = true;
      unified_path = path;
      continue;
    }
    std::stringstream names(controllers);
    for (std::string name; std::getline(names, name, ',');)
      if (name == controller)
        for (const fs::path& mount : {mounts / controllers, mounts / controller})
          if (fs::is_directory(mount, ec)) {
            out.dirs = chain(mount, path);
            return out;
          }
  }
  if (!has_unified) return out;
  // The unified hierarchy: at /sys/fs/cgroup (v2 only) or /sys/fs/cgroup/unified (hybrid).
  for (const fs::path& mount : {mounts, mounts / "unified"})
    if (fs::exists(mount / "cgroup.controllers", ec)) {
      out.v2 = true;
      out.dirs = chain(mount, unified_path);
      return out;
    }
  return out;
}

}  // namespace gradhpo::cgroup
