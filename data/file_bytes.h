// Whole-file reads for the dataset readers, gzip or not.
//
// A file that starts with the gzip magic number is inflated (zlib, every member checked by its
// CRC and length; bytes after the last member are an error); any other file is read as it is,
// so one reader serves `train-images-idx3-ubyte.gz` and its unpacked twin alike.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace gradhpo::data {

/// `path` if it is a regular file; otherwise the same name with ".gz" added (or removed, when
/// `path` ends in ".gz") if that one is; otherwise "".
std::string find_data_file(const std::string& path);

struct FileBytes {
  std::string path;                 ///< the file actually read (after the ".gz" fallback)
  std::vector<std::uint8_t> bytes;  ///< its content, decompressed if it was gzip
};

/// Reads the whole (decompressed) content of `path`, trying find_data_file's ".gz" fallback.
/// Throws Error naming the file when it is missing, unreadable, a corrupt or truncated gzip
/// stream (zlib's CRC and length checks catch damage inside the compressed data; the message
/// gives the decompressed position where the damage was found), or has bytes after its gzip data.
FileBytes read_file_bytes(const std::string& path);

}  // namespace gradhpo::data
