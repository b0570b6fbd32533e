#include "run_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

namespace gradhpo::hpo {

namespace {

std::string errno_text() { return std::strerror(errno); }

std::string folder_of(const std::string& path) {
  const std::size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::atomic<std::int64_t> commits{0};
// −1: not yet read from the environment.
std::atomic<std::int64_t> fault_at{-1};

std::int64_t fault_point() {
  std::int64_t n = fault_at.load();
  if (n >= 0) return n;
  n = 0;
  if (const char* env = std::getenv("GRADHPO_FAULT_AT_COMMIT")) n = std::strtoll(env, nullptr, 10);
  fault_at.store(n < 0 ? 0 : n);
  return fault_at.load();
}

}  // namespace

void fail_at_commit(std::int64_t n) { fault_at.store(n < 0 ? 0 : n); }
std::int64_t commits_made() { return commits.load(); }

void commit_file(const std::string& path, const std::string& bytes) {
  const std::int64_t n = ++commits;
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  require(fd >= 0, "cannot write '" + tmp + "': " + errno_text());
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t w = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      const std::string why = errno_text();
      ::close(fd);
      ::unlink(tmp.c_str());
      throw Error("writing '" + tmp + "' failed (disk full?): " + why);
    }
    done += static_cast<std::size_t>(w);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    const std::string why = errno_text();
    ::unlink(tmp.c_str());
    throw Error("cannot flush '" + tmp + "' to disk: " + why);
  }
  // The widest window a crash can hit: the new bytes complete beside the old file, not renamed.
  if (n == fault_point()) ::raise(SIGKILL);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = errno_text();
    ::unlink(tmp.c_str());
    throw Error("cannot rename '" + tmp + "' to '" + path + "': " + why);
  }
  // The rename is durable only once the folder's entry is on disk.
  const std::string folder = folder_of(path);
  const int dir = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  require(dir >= 0, "cannot open the folder '" + folder + "' of '" + path + "' to flush it: " + errno_text());
  const bool synced = ::fsync(dir) == 0;
  const std::string why = synced ? "" : errno_text();
  ::close(dir);
  require(synced, "cannot flush the folder '" + folder + "' of '" + path + "' to disk: " + why);
}

void write_file_atomically(const std::string& path, const std::string& bytes) { commit_file(path, bytes); }

// ---- folders ---------------------------------------------------------------------------------------

bool holds_run(const std::string& folder) {
  namespace fs = std::filesystem;
  std::error_code ec;
  return fs::exists(fs::path(folder) / kRunStateFile, ec) || fs::exists(fs::path(folder) / "checkpoint.bin", ec);
}

void check_run_folder(const std::string& folder, FolderUse use, const std::string& flag) {
  namespace fs = std::filesystem;
  require(!folder.empty(), flag + ": the run folder is empty");
  std::error_code ec;
  const bool exists = fs::exists(folder, ec);
  if (use == FolderUse::resume) {
    require(exists, flag + " " + folder + ": there is no such folder to resume (start a run there with --out)");
    require(fs::exists(fs::path(folder) / kRunStateFile, ec),
            flag + " " + folder + ": the folder holds no run to resume (no " + kRunStateFile + ")" +
                (fs::exists(fs::path(folder) / "checkpoint.bin", ec)
                     ? "; its checkpoint.bin is an older build's, which this build cannot continue"
                     : ""));
  }
  if (exists) {
    require(fs::is_directory(folder, ec), flag + " " + folder + ": exists and is not a folder");
    if (use == FolderUse::fresh)
      require(!holds_run(folder), flag + " " + folder + ": the folder already holds a run; continue it with --resume " +
                                      folder + ", replace it with --overwrite, or choose another folder");
  } else {
    fs::create_directories(folder, ec);
    require(!ec && fs::is_directory(folder, ec),
            flag + " " + folder + ": cannot create the run folder: " + (ec ? ec.message() : "not a folder"));
  }
  // Writable: a file made and removed (access(2) would say yes to root on a read-only mount).
  std::string probe = folder + "/.gradhpo-probe-XXXXXX";
  const int fd = ::mkstemp(probe.data());
  require(fd >= 0, flag + " " + folder + ": the run folder is not writable: " + errno_text());
  ::close(fd);
  ::unlink(probe.c_str());
}

// ---- the store -------------------------------------------------------------------------------------

RunStore RunStore::create(const std::string& folder, const std::string& command, const std::string& config_json,
                          FolderUse use, const std::string& flag) {
  require(use != FolderUse::resume, "RunStore::create: a resumed run is opened with RunStore::open");
  check_run_folder(folder, use, flag);
  RunRecord record;
  record.command = command;
  record.config_json = config_json;
  RunStore store(folder, std::move(record));
  store.commit({});
  return store;
}

RunStore RunStore::open(const std::string& folder, const std::string& command, const std::string& flag) {
  check_run_folder(folder, FolderUse::resume, flag);
  const std::string path = folder + "/" + kRunStateFile;
  std::ifstream f(path, std::ios::binary);
  require(static_cast<bool>(f), "cannot open state file '" + path + "'");
  RunRecord record =
      run_record_from_bytes(std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>()), path);
  // Temporary files of a commit the kill interrupted: never read, removed.
  for (const auto& entry : std::filesystem::directory_iterator(folder))
    if (entry.is_regular_file() && entry.path().extension() == ".tmp") std::filesystem::remove(entry.path());
  require(record.command == command, flag + " " + folder + ": the folder holds a run of `gradhpo " + record.command +
                                         "`, not of `gradhpo " + command + "`");
  return RunStore(folder, std::move(record));
}

const std::string& RunStore::get(const std::string& section) const {
  const auto it = record_.sections.find(section);
  require(it != record_.sections.end(), "run store " + folder_ + ": no section '" + section + "'");
  return it->second;
}

std::vector<std::string> RunStore::sections(const std::string& prefix) const {
  std::vector<std::string> out;
  for (const auto& [name, bytes] : record_.sections)
    if (name.compare(0, prefix.size(), prefix) == 0) out.push_back(name);
  return out;
}

void RunStore::commit(const std::map<std::string, std::string>& changes) { commit(changes, record_.config_json); }

void RunStore::commit(const std::map<std::string, std::string>& changes, const std::string& config_json) {
  RunRecord next = record_;
  next.config_json = config_json;
  for (const auto& [name, bytes] : changes) next.sections[name] = bytes;
  commit_file(file(kRunStateFile), run_record_bytes(next));
  record_ = std::move(next);  // only once it is on disk
}

void RunStore::write_derived(const std::string& name, const std::string& text) const {
  std::ifstream f(file(name), std::ios::binary);
  if (f && std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>()) == text) return;
  commit_file(file(name), text);
}

std::string numbered_section(const std::string& prefix, std::size_t k) {
  char digits[24];
  std::snprintf(digits, sizeof digits, "%06zu", k);
  return prefix + digits;
}

}  // namespace gradhpo::hpo
