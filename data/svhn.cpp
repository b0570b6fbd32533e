#include "svhn.h"

#include <matio.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <initializer_list>
#include <limits>
#include <memory>
#include <system_error>
#include <vector>

#include "mat5_check.h"

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

// The header of variable `name` (no data yet), checked for class and rank. `ranks` are the
// accepted ranks.
VarPtr read_info(mat_t* mat, const std::string& path, const char* name, matio_classes cls,
                 std::initializer_list<int> ranks, const char* expected) {
  VarPtr info(Mat_VarReadInfo(mat, name));
  if (!info) throw Error(path + ": no variable '" + name + "' (expected " + expected + ")");
  const bool rank_ok = std::find(ranks.begin(), ranks.end(), info->rank) != ranks.end();
  if (info->class_type != cls || info->isComplex || !rank_ok || info->dims == nullptr)
    throw Error(path + ": variable '" + name + "' is " + describe(info.get()) + ", expected " + expected);
  return info;
}

// Reads all `count` elements of the variable described by `info` into `dst`, which the caller
// pre-filled: libmatio returns success even when the data ends early, leaving the rest untouched.
void read_all(mat_t* mat, const std::string& path, matvar_t* info, void* dst, std::size_t count) {
  if (count > static_cast<std::size_t>(std::numeric_limits<int>::max()))
    throw Error(path + ": variable '" + info->name + "' has " + std::to_string(count) +
                " elements, more than libmatio's linear reads take (2^31 - 1)");
  if (Mat_VarReadDataLinear(mat, info, dst, 0, 1, static_cast<int>(count)) != 0)
    throw Error(path + ": cannot read the data of variable '" + info->name + "' (file truncated or corrupt?)");
}

// Reads X and y from an opened file whose element extents were checked.
Dataset read_checked(mat_t* mat_file, const std::string& path, const std::string& name) {
  std::error_code ec;
  const char* x_expected = "uint8 32 x 32 x 3 x N images";
  const char* y_expected = "double N x 1 labels";
  // MATLAB drops trailing singleton dimensions: one image is stored as 32 x 32 x 3.
  VarPtr xi = read_info(mat_file, path, "X", MAT_C_UINT8, {3, 4}, x_expected);
  const std::size_t n = xi->rank == 4 ? xi->dims[3] : 1;
  if (xi->dims[0] != 32 || xi->dims[1] != 32 || xi->dims[2] != 3 || n == 0)
    throw Error(path + ": variable 'X' is " + describe(xi.get()) + ", expected " + x_expected + " with N > 0");
  VarPtr yi = read_info(mat_file, path, "y", MAT_C_DOUBLE, {2}, y_expected);
  // SVHN stores y as N x 1; a 1 x N row vector holds the same values in the same order.
  if (!((yi->dims[0] == n && yi->dims[1] == 1) || (yi->dims[0] == 1 && yi->dims[1] == n)))
    throw Error(path + ": variable 'y' is " + describe(yi.get()) + ", expected " + std::to_string(n) +
                " x 1 to match the " + std::to_string(n) + " images in X");

  // libmatio trusts the dimensions in a variable's header and reports no short data. So check
  // that the file can hold what the headers promise before allocating (all of it for
  // uncompressed data, at most deflate's maximum ratio of 1032:1 for compressed data), and
  // pre-fill the labels with NaN, which no successful read leaves behind and the label check
  // rejects. read_svhn has verified the compressed streams end to end.
  constexpr std::size_t kImage = 32 * 32 * 3;
  const auto file_size = static_cast<std::size_t>(std::filesystem::file_size(path, ec));
  const bool plain = Mat_GetVersion(mat_file) == MAT_FT_MAT5 && xi->compression == MAT_COMPRESSION_NONE &&
                     yi->compression == MAT_COMPRESSION_NONE;
  const std::size_t capacity = plain ? file_size : 1032 * file_size;
  if (ec || n > capacity / (kImage + 8))
    throw Error(path + ": X and y claim " + std::to_string(n) + " images (" + std::to_string(n * (kImage + 8)) +
                " bytes of data) but the " + std::to_string(file_size) + "-byte " +
                (plain ? "uncompressed" : "compressed") + " file cannot hold that much");
  std::vector<double> y(n, std::numeric_limits<double>::quiet_NaN());
  read_all(mat_file, path, yi.get(), y.data(), n);

  Dataset d;
  d.name = name;
  d.num_classes = 10;
  d.labels.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    const double v = y[i];
    if (!(v >= 1 && v <= 10) || v != std::floor(v))
      throw Error(path + ": label y(" + std::to_string(i + 1) + ") is " + std::to_string(v) +
                  ", expected an integer in 1..10 (10 meaning the digit 0)");
    d.labels[i] = static_cast<std::int32_t>(v) % 10;
  }
  std::vector<std::uint8_t> x(n * kImage);
  read_all(mat_file, path, xi.get(), x.data(), x.size());

  // X(r, c, ch, i) sits at r + 32 * (c + 32 * (ch + 3 * i)); we want [i][ch][r][c]. Each 32 x 32
  // plane is a transpose: read it column by column (contiguous) and scatter into rows.
  d.images = Tensor::empty(Shape{static_cast<std::int64_t>(n), 3, 32, 32});
  const std::uint8_t* src = x.data();
  float* dst = d.images.data<float>();
  for (std::size_t plane = 0; plane < n * 3; ++plane) {
    const std::uint8_t* s = src + plane * 1024;
    float* o = dst + plane * 1024;
    for (int c = 0; c < 32; ++c)
      for (int r = 0; r < 32; ++r) o[r * 32 + c] = static_cast<float>(s[c * 32 + r]) / 255.0f;
  }
  return d;
}

}  // namespace

Dataset read_svhn(const std::string& path, const std::string& name) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw Error(path + (std::filesystem::exists(path, ec) ? ": not a regular file" : ": file not found"));
  MatPtr mat(Mat_Open(path.c_str(), MAT_ACC_RDONLY));
  if (!mat) throw Error(path + ": not a MAT file that libmatio can open (expected SVHN format 2)");
  std::vector<Mat5Element> elements;
  switch (Mat_GetVersion(mat.get())) {
    case MAT_FT_MAT5: elements = mat5_elements(path); break;
    case MAT_FT_MAT73: break;  // HDF5 checks the file's extent itself
    default: throw Error(path + ": MAT v4 file; SVHN format 2 is a MAT v5 (or v7.3) file");
  }
  // Verify the compressed streams end to end before libmatio inflates them. It costs one more
  // inflate of the file, but libmatio then only ever sees data that passed zlib's checksum: it
  // would not notice damage itself, and it leaks memory on some corrupt streams.
  for (const Mat5Element& e : elements)
    if (e.compressed) check_compressed_element(path, e);
  return read_checked(mat.get(), path, name);
}

}  // namespace gradhpo::data
