#include "idx.h"

#include <cstdio>

#include "file_bytes.h"
#include "pixels.h"

namespace gradhpo::data {
namespace {

constexpr std::uint32_t kImagesMagic = 0x00000803;  // type 0x08 = unsigned byte, 3 dimensions
constexpr std::uint32_t kLabelsMagic = 0x00000801;  // type 0x08 = unsigned byte, 1 dimension

std::uint32_t be32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}

std::string hex32(std::uint32_t v) {
  char s[16];
  std::snprintf(s, sizeof s, "0x%08X", static_cast<unsigned>(v));
  return s;
}

// Checks the magic number and header length; returns the header's 32-bit fields after the magic.
std::vector<std::uint32_t> parse_header(const FileBytes& f, std::uint32_t magic, int ndims,
                                        const char* what) {
  const std::size_t header = 4 + 4 * static_cast<std::size_t>(ndims);
  if (f.bytes.size() < header)
    throw Error(f.path + ": truncated IDX header: expected " + std::to_string(header) +
                " bytes for an " + what + " file, the file has " + std::to_string(f.bytes.size()));
  const std::uint32_t got = be32(f.bytes.data());
  if (got != magic)
    throw Error(f.path + ": wrong IDX magic number: expected " + hex32(magic) + " (" + what +
                "), got " + hex32(got));
  std::vector<std::uint32_t> dims(static_cast<std::size_t>(ndims));
  for (int i = 0; i < ndims; ++i) dims[static_cast<std::size_t>(i)] = be32(f.bytes.data() + 4 + 4 * i);
  if (dims[0] == 0) throw Error(f.path + ": IDX header says the file holds 0 records");
  return dims;
}

// The body must be exactly `records * record_bytes` bytes: shorter is truncation, longer means
// the header's count is wrong. Dimensions are < 2^32, so the product fits in 64 bits only after
// checking; compare by division to avoid overflow.
void check_body(const FileBytes& f, std::size_t header, std::uint64_t records,
                std::uint64_t record_bytes, const std::string& layout) {
  const std::uint64_t body = f.bytes.size() - header;
  if (record_bytes == 0 || body % record_bytes != 0 || body / record_bytes != records)
    throw Error(f.path + ": IDX body has " + std::to_string(body) + " bytes, header says " + layout +
                (record_bytes != 0 && body / record_bytes < records
                     ? " (file truncated: room for " + std::to_string(body / record_bytes) + " records)"
                     : ""));
}

}  // namespace

Tensor read_idx_images(const std::string& path) {
  const FileBytes f = read_file_bytes(path);
  const auto dims = parse_header(f, kImagesMagic, 3, "images");
  const std::uint64_t n = dims[0], rows = dims[1], cols = dims[2];
  if (rows == 0 || cols == 0)
    throw Error(f.path + ": IDX header gives empty images of " + std::to_string(rows) + " x " +
                std::to_string(cols) + " pixels");
  check_body(f, 16, n, rows * cols,
             std::to_string(n) + " images of " + std::to_string(rows) + " x " + std::to_string(cols) +
                 " = " + std::to_string(n) + " x " + std::to_string(rows * cols) + " bytes");
  Tensor images = Tensor::empty(Shape{static_cast<std::int64_t>(n), 1, static_cast<std::int64_t>(rows),
                                      static_cast<std::int64_t>(cols)});
  bytes_to_unit_float(f.bytes.data() + 16, images.data<float>(), static_cast<std::size_t>(n * rows * cols));
  return images;
}

std::vector<std::int32_t> read_idx_labels(const std::string& path, int num_classes) {
  require(num_classes >= 1 && num_classes <= 256,
          "read_idx_labels: num_classes must be in 1..256 for byte labels, got " + std::to_string(num_classes));
  const FileBytes f = read_file_bytes(path);
  const auto dims = parse_header(f, kLabelsMagic, 1, "labels");
  const std::uint64_t n = dims[0];
  check_body(f, 8, n, 1, std::to_string(n) + " labels of 1 byte");
  std::vector<std::int32_t> labels(static_cast<std::size_t>(n));
  const std::uint8_t* body = f.bytes.data() + 8;
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (body[i] >= num_classes)
      throw Error(f.path + ": label " + std::to_string(i) + " is " + std::to_string(body[i]) +
                  ", expected 0.." + std::to_string(num_classes - 1));
    labels[i] = body[i];
  }
  return labels;
}

Dataset load_idx(const std::string& images_path, const std::string& labels_path, int num_classes,
                 const std::string& name, std::int64_t rows, std::int64_t cols) {
  Dataset d;
  d.name = name;
  d.num_classes = num_classes;
  d.images = read_idx_images(images_path);
  if ((rows > 0 && d.images.dim(2) != rows) || (cols > 0 && d.images.dim(3) != cols))
    throw Error(images_path + ": wrong image size for " + name + ": expected " + std::to_string(rows) +
                " x " + std::to_string(cols) + ", got " + std::to_string(d.images.dim(2)) + " x " +
                std::to_string(d.images.dim(3)));
  d.labels = read_idx_labels(labels_path, num_classes);
  if (d.size() != d.images.dim(0))
    throw Error(name + ": image and label counts differ: " + images_path + " holds " +
                std::to_string(d.images.dim(0)) + " images, " + labels_path + " holds " +
                std::to_string(d.size()) + " labels");
  return d;
}

}  // namespace gradhpo::data
