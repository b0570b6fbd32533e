#include "conv_plan.h"

#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <map>
#include <mutex>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conv_dnnl.h"
#include "plan_path.h"

namespace gradhpo::kernels {
namespace {

std::string default_path() { return machine_plan_path("conv-plan", cpu_model() + " | oneDNN " + dnnl_conv::version()); }

// key -> choice: a line's last word is the choice, the words before it the key.
void read_into(const std::string& path, std::map<std::string, std::string>& map) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const auto space = line.find_last_of(' ');
    if (space == std::string::npos || space == 0 || space + 1 == line.size()) continue;
    map.insert_or_assign(line.substr(0, space), line.substr(space + 1));
  }
}

void warn_once(const std::string& why, const std::string& fallback) {
  static std::once_flag once;
  std::call_once(once, [&] {
    std::fprintf(stderr, "gradhpo: %s; convolutions it does not list run with %s (GRADHPO_CONV_PLAN sets the file)\n",
                 why.c_str(), fallback.c_str());
  });
}

// Under the file's lock: its choice for key, else measured and written. "" on failure.
std::string locked_choice(const std::string& path, const std::string& key,
                          const std::function<std::string()>& measure, std::string& why) {
  if (!make_parent_dirs(path)) {
    why = "cannot create the folder of the convolution plan file " + path + ": " + std::strerror(errno);
    return "";
  }
  const std::string lock_path = path + ".lock";
  const int lock = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock < 0) {
    why = "cannot open " + lock_path + ": " + std::strerror(errno);
    return "";
  }
  while (::flock(lock, LOCK_EX) != 0 && errno == EINTR) {
  }
  std::map<std::string, std::string> file;
  read_into(path, file);
  std::string choice;
  if (auto it = file.find(key); it != file.end()) {
    choice = it->second;
  } else {
    try {
      choice = measure();
    } catch (const std::exception& e) {
      why = std::string("planning a convolution failed: ") + e.what();
    }
    if (!choice.empty()) file.emplace(key, choice);
    const std::string tmp = path + ".tmp." + std::to_string(::getpid());
    bool ok = !choice.empty();
    if (ok) {
      std::ofstream out(tmp, std::ios::trunc);
      out << "# gradhpo convolution plan: which implementation runs each case on this machine (delete the file to plan again)\n"
          << "# " << cpu_model() << " | oneDNN " << dnnl_conv::version() << "\n"
          << "# kernel C H W O kh kw stride pad dtype choice\n";
      for (const auto& [k, c] : file) out << k << ' ' << c << '\n';
      out.flush();
      ok = static_cast<bool>(out);
    }
    if (choice.empty()) {
    } else if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
      why = "cannot write the convolution plan file " + path + ": " + std::strerror(errno);
      std::remove(tmp.c_str());
      choice.clear();
    }
  }
  ::flock(lock, LOCK_UN);
  ::close(lock);
  return choice;
}

}  // namespace

std::string conv_plan_path() {
  static const std::string path = [] {
    const char* env = std::getenv("GRADHPO_CONV_PLAN");
    return env && *env ? std::string(env) : default_path();
  }();
  return path;
}

std::string plan_file_choice(const std::string& path, const std::string& key, const std::string& fallback,
                             const std::function<std::string()>& measure) {
  static std::mutex mutex;
  static std::map<std::string, std::string> known;  // "<path>\n<key>" -> choice, this process's
  std::lock_guard<std::mutex> guard(mutex);
  const std::string slot = path + '\n' + key;
  if (auto it = known.find(slot); it != known.end()) return it->second;
  std::string why = "no convolution plan file (neither GRADHPO_CONV_PLAN, XDG_CACHE_HOME nor HOME is set)";
  std::string choice;
  if (!path.empty()) choice = locked_choice(path, key, measure, why);
  if (choice.empty()) {
    warn_once(why, fallback);
    choice = fallback;
  }
  known.emplace(slot, choice);
  return choice;
}

}  // namespace gradhpo::kernels
