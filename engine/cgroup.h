// The control groups (cgroup v2 and v1) whose limits apply to this process: the folders where
// its memory and CPU limits are read (hpo/resources.h: memory; threads.h: cores).
#pragma once

#include <string>
#include <vector>

namespace gradhpo::cgroup {

/// The folders of one controller that limit this process, innermost first, up to the
/// hierarchy's root (a parent's limit binds its children too).
struct Folders {
  bool v2 = false;                ///< cgroup v2 (memory.max, cpu.max) rather than v1 (memory.limit_in_bytes, cpu.cfs_quota_us)
  std::vector<std::string> dirs;  ///< empty: no hierarchy of this controller is mounted
};

/// The folders of `controller` ("memory" or "cpu"), found from /proc/self/cgroup and the
/// mounts under /sys/fs/cgroup (a v1 hierarchy of the controller wins over the unified one,
/// which then has no such controller). `root` is prefixed to both paths (tests use a fake tree).
Folders folders(const std::string& controller, const std::string& root = "");

/// The first line of a file without its newline; "" when it cannot be read.
std::string first_line(const std::string& file);

}  // namespace gradhpo::cgroup
