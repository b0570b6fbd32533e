#include "cifar10.h"

#include "file_bytes.h"
#include "pixels.h"

namespace gradhpo::data {

Dataset read_cifar10(const std::vector<std::string>& paths, const std::string& name) {
  require(!paths.empty(), "read_cifar10(" + name + "): no files given");
  constexpr std::int64_t kPixels = kCifarRecordBytes - 1;
  // Read and check every file before allocating the images, so a bad file costs no big copy.
  std::vector<FileBytes> files;
  files.reserve(paths.size());
  std::int64_t total = 0;
  for (const std::string& p : paths) {
    files.push_back(read_file_bytes(p));
    const FileBytes& f = files.back();
    const auto size = static_cast<std::int64_t>(f.bytes.size());
    if (size == 0) throw Error(f.path + ": empty file, expected CIFAR-10 records of 3073 bytes");
    if (size % kCifarRecordBytes != 0)
      throw Error(f.path + ": size " + std::to_string(size) + " bytes is not a multiple of the " +
                  "CIFAR-10 record size 3073 (" + std::to_string(size / kCifarRecordBytes) +
                  " whole records and " + std::to_string(size % kCifarRecordBytes) + " bytes left over)");
    const std::int64_t n = size / kCifarRecordBytes;
    for (std::int64_t i = 0; i < n; ++i) {
      const std::uint8_t label = f.bytes[static_cast<std::size_t>(i * kCifarRecordBytes)];
      if (label > 9)
        throw Error(f.path + ": record " + std::to_string(i) + " (byte offset " +
                    std::to_string(i * kCifarRecordBytes) + ") has label " + std::to_string(label) +
                    ", expected 0..9");
    }
    total += n;
  }

  Dataset d;
  d.name = name;
  d.num_classes = 10;
  d.images = Tensor::empty(Shape{total, 3, 32, 32});
  d.labels.resize(static_cast<std::size_t>(total));
  float* dst = d.images.data<float>();
  std::int64_t r = 0;
  for (FileBytes& f : files) {
    const std::int64_t n = static_cast<std::int64_t>(f.bytes.size()) / kCifarRecordBytes;
    for (std::int64_t i = 0; i < n; ++i, ++r) {
      const std::uint8_t* rec = f.bytes.data() + i * kCifarRecordBytes;
      d.labels[static_cast<std::size_t>(r)] = rec[0];
      bytes_to_unit_float(rec + 1, dst + r * kPixels, kPixels);
    }
    f.bytes = {};  // release each file's bytes as soon as it is converted
  }
  return d;
}

}  // namespace gradhpo::data
