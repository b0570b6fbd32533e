#include "file_bytes.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <system_error>

#include "../engine/error.h"

namespace gradhpo::data {
namespace {

namespace fs = std::filesystem;

bool is_file(const std::string& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec);
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

struct GzCloser {
  void operator()(gzFile_s* f) const { gzclose(f); }
};

}  // namespace

std::string find_data_file(const std::string& path) {
  if (path.empty()) return "";
  if (is_file(path)) return path;
  const std::string other = ends_with(path, ".gz") ? path.substr(0, path.size() - 3) : path + ".gz";
  if (!other.empty() && is_file(other)) return other;
  return "";
}

FileBytes read_file_bytes(const std::string& path) {
  FileBytes out;
  out.path = find_data_file(path);
  if (out.path.empty()) {
    std::error_code ec;
    if (fs::exists(path, ec)) throw Error(path + ": not a regular file");
    const std::string other = ends_with(path, ".gz") ? path.substr(0, path.size() - 3) : path + ".gz";
    throw Error(path + ": file not found (also tried " + other + ")");
  }
  const std::string& p = out.path;

  std::error_code ec;
  const auto disk_size = static_cast<std::size_t>(fs::file_size(p, ec));
  errno = 0;
  std::unique_ptr<gzFile_s, GzCloser> f(gzopen(p.c_str(), "rb"));
  if (!f) throw Error(p + ": cannot open: " + (errno ? std::strerror(errno) : "out of memory"));
  gzbuffer(f.get(), 1 << 18);

  // Grow geometrically: a gzip file's true size is only known once it is inflated (the trailer's
  // ISIZE is mod 2^32 and may itself be damaged, so it is not trusted for allocation).
  std::vector<std::uint8_t>& buf = out.bytes;
  buf.resize(std::max<std::size_t>(ec ? 0 : disk_size, 1 << 16) + 1);
  std::size_t have = 0;
  bool failed = false;
  int read_errno = 0;
  for (;;) {
    if (have == buf.size()) buf.resize(buf.size() * 2);
    const std::size_t want = std::min<std::size_t>(buf.size() - have, std::size_t{1} << 30);
    const int got = gzread(f.get(), buf.data() + have, static_cast<unsigned>(want));
    if (got < 0) {  // described by gzerror below
      failed = true;
      read_errno = errno;
      break;
    }
    if (got == 0) break;
    have += static_cast<std::size_t>(got);
  }
  // gzread stops quietly at a premature end of a gzip stream; gzerror then says Z_BUF_ERROR.
  int code = Z_OK;
  const char* msg = gzerror(f.get(), &code);
  if (failed || (code != Z_OK && code != Z_STREAM_END)) {
    // zlib's messages start with "<path>: "; drop it, the path leads our message already.
    std::string why = msg ? msg : "unknown zlib error";
    if (why.rfind(p + ": ", 0) == 0) why.erase(0, p.size() + 2);
    throw Error(p + (code == Z_ERRNO ? ": read error after " : ": corrupt or truncated gzip data after ") +
                std::to_string(have) + " decompressed bytes: " + (code == Z_ERRNO ? std::strerror(read_errno) : why));
  }
  buf.resize(have);  // no shrink_to_fit: the buffer is short-lived and a copy would cost more
  return out;
}

}  // namespace gradhpo::data
