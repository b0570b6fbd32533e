#include "file_bytes.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
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

}  // namespace

std::string find_data_file(const std::string& path) {
  if (path.empty()) return "";
  if (is_file(path)) return path;
  const std::string other = ends_with(path, ".gz") ? path.substr(0, path.size() - 3) : path + ".gz";
  if (!other.empty() && is_file(other)) return other;
  return "";
}

namespace {

// The raw bytes of a file, or an Error naming it.
std::vector<std::uint8_t> read_raw(const std::string& p) {
  errno = 0;
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(p.c_str(), "rb"), &std::fclose);
  if (!f) throw Error(p + ": cannot open: " + (errno ? std::strerror(errno) : "unknown error"));
  std::error_code ec;
  const auto disk_size = static_cast<std::size_t>(fs::file_size(p, ec));
  std::vector<std::uint8_t> raw(ec ? std::size_t{1} << 16 : disk_size + 1);
  std::size_t have = 0;
  for (;;) {
    if (have == raw.size()) raw.resize(raw.size() * 2);
    const std::size_t got = std::fread(raw.data() + have, 1, raw.size() - have, f.get());
    have += got;
    if (got == 0) break;
  }
  if (std::ferror(f.get())) throw Error(p + ": read error after " + std::to_string(have) + " bytes: " + std::strerror(errno));
  raw.resize(have);
  return raw;
}

bool at_gzip_magic(const std::vector<std::uint8_t>& b, std::size_t at) {
  return b.size() >= at + 2 && b[at] == 0x1f && b[at + 1] == 0x8b;
}

// Inflates every gzip member of `in` (concatenated members are one stream, as gzip -d reads
// them). Anything else after a member is an error, and every error names the decompressed
// position where it was found (for a CRC mismatch: the end of that member's data).
std::vector<std::uint8_t> gunzip(const std::string& p, const std::vector<std::uint8_t>& in) {
  z_stream zs{};
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) throw Error(p + ": zlib inflateInit2 failed");
  struct End {
    z_stream* zs;
    ~End() { inflateEnd(zs); }
  } end{&zs};
  // The last member's ISIZE (its size mod 2^32) sizes the buffer when it is plausible (deflate
  // expands at most ~1032:1); it may be damaged or wrapped, so the buffer still grows if needed.
  const std::size_t n = in.size();
  const std::size_t isize = n >= 4 ? (std::size_t{in[n - 1]} << 24 | std::size_t{in[n - 2]} << 16 |
                                      std::size_t{in[n - 3]} << 8 | in[n - 4])
                                   : 0;
  const bool plausible = isize >= n / 2 && isize / 1100 <= n;
  std::vector<std::uint8_t> out(std::max<std::size_t>(plausible ? isize + 1 : 4 * n, 1 << 16));
  constexpr std::size_t kChunk = std::size_t{1} << 30;  // z_stream counts in 32 bits
  std::size_t used = 0, produced = 0;
  auto fail = [&](const std::string& why) {
    throw Error(p + ": corrupt or truncated gzip data after " + std::to_string(produced) + " decompressed bytes: " + why);
  };
  for (;;) {
    if (produced == out.size()) out.resize(out.size() * 2);
    zs.next_in = const_cast<Bytef*>(in.data() + used);
    zs.avail_in = static_cast<uInt>(std::min(in.size() - used, kChunk));
    zs.next_out = out.data() + produced;
    zs.avail_out = static_cast<uInt>(std::min(out.size() - produced, kChunk));
    const uInt in_before = zs.avail_in, out_before = zs.avail_out;
    const int ret = inflate(&zs, Z_NO_FLUSH);
    used += in_before - zs.avail_in;
    produced += out_before - zs.avail_out;
    if (ret == Z_STREAM_END) {
      if (used == in.size()) break;
      if (!at_gzip_magic(in, used))
        throw Error(p + ": " + std::to_string(in.size() - used) + " bytes after the end of the gzip data (" +
                    std::to_string(produced) + " decompressed bytes); not a gzip member");
      if (inflateReset(&zs) != Z_OK) fail("zlib inflateReset failed");
      continue;
    }
    if (ret == Z_OK) continue;
    if (ret == Z_BUF_ERROR && used == in.size()) fail("unexpected end of file");
    if (ret == Z_BUF_ERROR) continue;  // no room for output: the buffer grows
    fail(zs.msg ? zs.msg : ret == Z_MEM_ERROR ? "out of memory" : "zlib error " + std::to_string(ret));
  }
  out.resize(produced);  // no shrink_to_fit: the buffer is short-lived and a copy would cost more
  return out;
}

}  // namespace

FileBytes read_file_bytes(const std::string& path) {
  FileBytes out;
  out.path = find_data_file(path);
  if (out.path.empty()) {
    std::error_code ec;
    if (fs::exists(path, ec)) throw Error(path + ": not a regular file");
    const std::string other = ends_with(path, ".gz") ? path.substr(0, path.size() - 3) : path + ".gz";
    throw Error(path + ": file not found (also tried " + other + ")");
  }
  std::vector<std::uint8_t> raw = read_raw(out.path);
  // A file without the gzip magic number is read as it is (so is its unpacked twin).
  out.bytes = at_gzip_magic(raw, 0) ? gunzip(out.path, raw) : std::move(raw);
  return out;
}

}  // namespace gradhpo::data
