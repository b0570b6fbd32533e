#include "mat5_check.h"

#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <vector>

#include "../engine/error.h"

namespace gradhpo::data {
namespace {

constexpr std::uint32_t kCompressed = 15;  // miCOMPRESSED: a zlib stream holding one element

struct Reader {
  std::ifstream in;
  bool little = true;
  std::uint64_t size = 0;
  std::uint32_t u32(const unsigned char* p) const {
    return little ? (std::uint32_t{p[3]} << 24 | std::uint32_t{p[2]} << 16 | std::uint32_t{p[1]} << 8 | p[0])
                  : (std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 | std::uint32_t{p[2]} << 8 | p[3]);
  }
};

// Opens `path` and reads the 128-byte header, which fixes the byte order.
Reader open_mat5(const std::string& path) {
  Reader r;
  r.in.open(path, std::ios::binary | std::ios::ate);
  if (!r.in) throw Error(path + ": cannot open");
  r.size = static_cast<std::uint64_t>(r.in.tellg());
  unsigned char header[128];
  r.in.seekg(0);
  if (r.size < 128 || !r.in.read(reinterpret_cast<char*>(header), 128))
    throw Error(path + ": truncated MAT header: " + std::to_string(r.size) + " bytes, expected at least 128");
  if (header[126] == 'I' && header[127] == 'M') r.little = true;
  else if (header[126] == 'M' && header[127] == 'I') r.little = false;
  else throw Error(path + ": MAT v5 header has no endian indicator 'IM' or 'MI' at byte 126");
  return r;
}

}  // namespace

void check_compressed_element(const std::string& path, const Mat5Element& e) {
  Reader r = open_mat5(path);
  const std::uint64_t offset = e.offset, bytes = e.bytes;
  r.in.seekg(static_cast<std::streamoff>(offset + 8));
  const std::string where = path + ": compressed element at byte " + std::to_string(offset);
  std::vector<unsigned char> in(std::size_t{1} << 20), out(std::size_t{1} << 20);
  z_stream zs{};
  if (inflateInit(&zs) != Z_OK) throw Error(where + ": zlib inflateInit failed");
  unsigned char tag[8];
  std::uint64_t produced = 0, left = bytes;
  int ret = Z_OK;
  while (ret != Z_STREAM_END) {
    if (zs.avail_in == 0) {
      if (left == 0) break;
      const auto chunk = static_cast<std::size_t>(std::min<std::uint64_t>(left, in.size()));
      if (!r.in.read(reinterpret_cast<char*>(in.data()), static_cast<std::streamsize>(chunk))) {
        inflateEnd(&zs);
        throw Error(where + ": read error");
      }
      left -= chunk;
      zs.next_in = in.data();
      zs.avail_in = static_cast<uInt>(chunk);
    }
    zs.next_out = out.data();
    zs.avail_out = static_cast<uInt>(out.size());
    ret = inflate(&zs, Z_NO_FLUSH);
    const std::size_t got = out.size() - zs.avail_out;
    for (std::size_t i = 0; i < got && produced + i < 8; ++i) tag[produced + i] = out[i];
    produced += got;
    if (ret != Z_OK && ret != Z_STREAM_END && ret != Z_BUF_ERROR) {
      const std::string msg = zs.msg ? zs.msg : "error " + std::to_string(ret);
      inflateEnd(&zs);
      throw Error(where + " is corrupt: zlib: " + msg);
    }
    if (ret == Z_BUF_ERROR && zs.avail_in == 0 && left == 0) break;  // input exhausted
  }
  const std::uint64_t unused = zs.avail_in + left;
  inflateEnd(&zs);
  if (ret != Z_STREAM_END)
    throw Error(where + " is truncated or corrupt: its zlib stream does not end within its " +
                std::to_string(bytes) + " bytes");
  // Up to 7 bytes of padding after the stream are tolerated (some writers align elements);
  // the stream's checksum and the length check below already vouch for its content.
  if (unused > 7)
    throw Error(where + ": " + std::to_string(unused) + " bytes follow the end of its zlib stream");
  if (produced < 8) throw Error(where + " inflates to " + std::to_string(produced) + " bytes, not even a tag");
  const std::uint32_t type = r.u32(tag);
  const std::uint64_t expect = (type >> 16) ? 8 : 8 + std::uint64_t{r.u32(tag + 4)};
  if (produced != expect)
    throw Error(where + " inflates to " + std::to_string(produced) + " bytes, its element tag says " +
                std::to_string(expect));
}

std::vector<Mat5Element> mat5_elements(const std::string& path) {
  Reader r = open_mat5(path);
  std::vector<Mat5Element> elements;
  std::uint64_t offset = 128;
  while (offset + 8 <= r.size) {
    unsigned char tag[8];
    r.in.seekg(static_cast<std::streamoff>(offset));
    if (!r.in.read(reinterpret_cast<char*>(tag), 8)) throw Error(path + ": read error at byte " + std::to_string(offset));
    const std::uint32_t type = r.u32(tag);
    // A small data element (type in the low 16 bits) packs its data inside the tag.
    const std::uint64_t bytes = (type >> 16) ? 0 : r.u32(tag + 4);
    if (offset + 8 + bytes > r.size)
      throw Error(path + ": truncated MAT file: the element at byte " + std::to_string(offset) + " needs " +
                  std::to_string(8 + bytes) + " bytes, only " + std::to_string(r.size - offset) + " remain");
    elements.push_back({offset, bytes, type == kCompressed});
    // The padding of the last uncompressed element may be missing without losing data.
    offset += 8 + (type == kCompressed ? bytes : (bytes + 7) / 8 * 8);
  }
  if (offset < r.size)
    throw Error(path + ": truncated MAT file: " + std::to_string(r.size - offset) +
                " bytes at the end are too short for an element tag (8 bytes)");
  return elements;
}

}  // namespace gradhpo::data
