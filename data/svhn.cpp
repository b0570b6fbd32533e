#include "svhn.h"

#include <matio.h>

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <system_error>


namespace gradhpo::data {
namespace {

struct MatClose {
  void operator()(mat_t* m) const { Mat_Close(m); }
};
struct VarFree {
  void operator()(matvar_t* v) const { Mat_VarFree(v); }
};
using MatPtr = std::unique_ptr<mat_t, MatClose>;
using VarPtr = std::unique_ptr<matvar_t, VarFree>;

const char* class_name(matio_classes c) {
  switch (c) {
    case MAT_C_EMPTY: return "empty";
    case MAT_C_CELL: return "cell";
    case MAT_C_STRUCT: return "struct";
    case MAT_C_OBJECT: return "object";
    case MAT_C_CHAR: return "char";
    case MAT_C_SPARSE: return "sparse";
    case MAT_C_DOUBLE: return "double";
    case MAT_C_SINGLE: return "single";
    case MAT_C_INT8: return "int8";
    case MAT_C_UINT8: return "uint8";
    case MAT_C_INT16: return "int16";
    case MAT_C_UINT16: return "uint16";
    case MAT_C_INT32: return "int32";
    case MAT_C_UINT32: return "uint32";
    case MAT_C_INT64: return "int64";
    case MAT_C_UINT64: return "uint64";
    case MAT_C_FUNCTION: return "function";
    case MAT_C_OPAQUE: return "opaque";
  }
  return "unknown";
}

std::string dims_str(const matvar_t* v) {
  if (v->rank <= 0 || v->dims == nullptr) return "(no dimensions)";
  std::string s;
  for (int i = 0; i < v->rank; ++i) s += (i ? " x " : "") + std::to_string(v->dims[i]);
  return s;
}

std::string describe(const matvar_t* v) {
  return std::string(v->isComplex ? "complex " : "") + class_name(v->class_type) + " " + dims_str(v);
}

// Reads variable `name` after checking its class from the header alone (so a wrong variable is
// rejected before its data is read). `ranks` are the accepted ranks.
VarPtr read_var(mat_t* mat, const std::string& path, const char* name, matio_classes cls,
                std::initializer_list<int> ranks, const char* expected) {
  VarPtr info(Mat_VarReadInfo(mat, name));
  if (!info) throw Error(path + ": no variable '" + name + "' (expected " + expected + ")");
  const bool rank_ok = std::find(ranks.begin(), ranks.end(), info->rank) != ranks.end();
  if (info->class_type != cls || info->isComplex || !rank_ok || info->dims == nullptr)
    throw Error(path + ": variable '" + name + "' is " + describe(info.get()) + ", expected " + expected);
  VarPtr var(Mat_VarRead(mat, name));
  if (!var || var->data == nullptr)
    throw Error(path + ": cannot read the data of variable '" + name + "' (file truncated or corrupt?)");
  if (var->class_type != cls || var->isComplex || var->rank != info->rank || var->dims == nullptr ||
      std::memcmp(var->dims, info->dims, sizeof(size_t) * static_cast<std::size_t>(info->rank)) != 0)
    throw Error(path + ": variable '" + name + "' reads back as " + describe(var.get()) + ", expected " +
                expected);
  return var;
}

// libmatio reads an uncompressed variable with fread and does not notice a short read, so a
// truncated file would come back with uninitialised pixels. Before reading, walk the top-level
// element tags of a v5 file (a 128-byte header, then per element a tag {u32 type, u32 byte count}
// and its data, padded to 8 bytes unless compressed) and check that each lies inside the file.
// This is a length check only; the variables themselves are decoded by libmatio.
void check_mat5_extent(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw Error(path + ": cannot open");
  const auto size = static_cast<std::uint64_t>(in.tellg());
  unsigned char header[128];
  in.seekg(0);
  if (size < 128 || !in.read(reinterpret_cast<char*>(header), 128))
    throw Error(path + ": truncated MAT header: " + std::to_string(size) + " bytes, expected at least 128");
  bool little;
  if (header[126] == 'I' && header[127] == 'M') little = true;
  else if (header[126] == 'M' && header[127] == 'I') little = false;
  else throw Error(path + ": MAT v5 header has no endian indicator 'IM' or 'MI' at byte 126");
  auto u32 = [little](const unsigned char* p) {
    return little ? (std::uint32_t{p[3]} << 24 | std::uint32_t{p[2]} << 16 | std::uint32_t{p[1]} << 8 | p[0])
                  : (std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 | std::uint32_t{p[2]} << 8 | p[3]);
  };
  constexpr std::uint32_t kCompressed = 15;  // miCOMPRESSED: zlib data, not padded
  std::uint64_t offset = 128;
  while (offset + 8 <= size) {
    unsigned char tag[8];
    in.seekg(static_cast<std::streamoff>(offset));
    if (!in.read(reinterpret_cast<char*>(tag), 8)) throw Error(path + ": read error at byte " + std::to_string(offset));
    const std::uint32_t type = u32(tag);
    // A small data element (type in the low 16 bits) packs its data inside the tag.
    const std::uint64_t bytes = (type >> 16) ? 0 : u32(tag + 4);
    if (offset + 8 + bytes > size)
      throw Error(path + ": truncated MAT file: the element at byte " + std::to_string(offset) + " needs " +
                  std::to_string(8 + bytes) + " bytes, only " + std::to_string(size - offset) + " remain");
    // The padding of the last uncompressed element may be missing without losing data.
    offset += 8 + (type == kCompressed ? bytes : (bytes + 7) / 8 * 8);
  }
  if (offset < size)
    throw Error(path + ": truncated MAT file: " + std::to_string(size - offset) +
                " bytes at the end are too short for an element tag (8 bytes)");
}

}  // namespace

Dataset read_svhn(const std::string& path, const std::string& name) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw Error(path + (std::filesystem::exists(path, ec) ? ": not a regular file" : ": file not found"));
  MatPtr mat(Mat_Open(path.c_str(), MAT_ACC_RDONLY));
  if (!mat) throw Error(path + ": not a MAT file that libmatio can open (expected SVHN format 2)");
  switch (Mat_GetVersion(mat.get())) {
    case MAT_FT_MAT5: check_mat5_extent(path); break;
    case MAT_FT_MAT73: break;  // HDF5 checks the file's extent itself
    default: throw Error(path + ": MAT v4 file; SVHN format 2 is a MAT v5 (or v7.3) file");
  }

  const char* x_expected = "uint8 32 x 32 x 3 x N images";
  const char* y_expected = "double N x 1 labels";
  // MATLAB drops trailing singleton dimensions: one image is stored as 32 x 32 x 3.
  VarPtr x = read_var(mat.get(), path, "X", MAT_C_UINT8, {3, 4}, x_expected);
  const std::size_t n = x->rank == 4 ? x->dims[3] : 1;
  if (x->dims[0] != 32 || x->dims[1] != 32 || x->dims[2] != 3 || n == 0)
    throw Error(path + ": variable 'X' is " + describe(x.get()) + ", expected " + x_expected + " with N > 0");
  VarPtr y = read_var(mat.get(), path, "y", MAT_C_DOUBLE, {2}, y_expected);
  // SVHN stores y as N x 1; a 1 x N row vector holds the same values in the same order.
  if (!((y->dims[0] == n && y->dims[1] == 1) || (y->dims[0] == 1 && y->dims[1] == n)))
    throw Error(path + ": variable 'y' is " + describe(y.get()) + ", expected " + std::to_string(n) +
                " x 1 to match the " + std::to_string(n) + " images in X");
  constexpr std::size_t kImage = 32 * 32 * 3;
  if (x->data_size != 1 || x->nbytes < n * kImage || y->data_size != 8 || y->nbytes < n * 8)
    throw Error(path + ": libmatio returned less data than the dimensions of X and y promise");

  Dataset d;
  d.name = name;
  d.num_classes = 10;
  d.labels.resize(n);
  const auto* yv = static_cast<const double*>(y->data);
  for (std::size_t i = 0; i < n; ++i) {
    const double v = yv[i];
    if (!(v >= 1 && v <= 10) || v != std::floor(v))
      throw Error(path + ": label y(" + std::to_string(i + 1) + ") is " + std::to_string(v) +
                  ", expected an integer in 1..10 (10 meaning the digit 0)");
    d.labels[i] = static_cast<std::int32_t>(v) % 10;
  }

  // X(r, c, ch, i) sits at r + 32 * (c + 32 * (ch + 3 * i)); we want [i][ch][r][c]. Each 32 x 32
  // plane is a transpose: read it column by column (contiguous) and scatter into rows.
  d.images = Tensor::empty(Shape{static_cast<std::int64_t>(n), 3, 32, 32});
  const auto* src = static_cast<const std::uint8_t*>(x->data);
  float* dst = d.images.data<float>();
  for (std::size_t plane = 0; plane < n * 3; ++plane) {
    const std::uint8_t* s = src + plane * 1024;
    float* o = dst + plane * 1024;
    for (int c = 0; c < 32; ++c)
      for (int r = 0; r < 32; ++r) o[r * 32 + c] = static_cast<float>(s[c * 32 + r]) / 255.0f;
  }
  return d;
}

}  // namespace gradhpo::data
