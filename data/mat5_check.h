// Integrity checks of a MATLAB v5 file's top-level elements, for use around libmatio's reads.
//
// libmatio trusts lengths and does not report short data: an uncompressed variable cut short by
// truncation comes back with uninitialised bytes, and a compressed one is inflated only as far as
// its dimensions ask, so damage caught by zlib's Adler-32 checksum at the end of the stream goes
// unnoticed. This check covers exactly that gap and nothing more: it walks the top-level element
// tags (a 128-byte header, then per element {u32 type, u32 byte count} and the data, padded to 8
// bytes unless compressed), checks that each element lies inside the file, and inflates every
// compressed element to its end, checking the stream and its length. It does not decode
// variables; that is libmatio's job.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace gradhpo::data {

struct Mat5Element {
  std::uint64_t offset = 0;  ///< of its tag, in bytes from the start of the file
  std::uint64_t bytes = 0;   ///< of data after the tag
  bool compressed = false;   ///< miCOMPRESSED: the data is a zlib stream
};

/// The top-level elements of a MAT v5 file. Throws Error naming `path` if the header is cut
/// short or an element reaches past the end of the file.
std::vector<Mat5Element> mat5_elements(const std::string& path);

/// Inflates compressed element `e` to its end. Throws Error naming `path` unless it is one
/// complete zlib stream (Adler-32 checked) whose output is as long as its inner tag says.
void check_compressed_element(const std::string& path, const Mat5Element& e);

}  // namespace gradhpo::data
