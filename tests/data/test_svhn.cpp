// SVHN (format 2 .mat) without SVHN: small files in SVHN's layout, written with libmatio itself
// into a temporary folder, then read back.
#include <doctest/doctest.h>

#include <gradhpo/data/load.h>
#include <gradhpo/data/svhn.h>
#include <gradhpo/engine/error.h>

#include <matio.h>
#include <unistd.h>
#include <zlib.h>

#include "temp_dir.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

namespace data = gradhpo::data;
namespace fs = std::filesystem;
using gradhpo::Shape;

namespace {

struct TempDir : gradhpo::testing::TempDir {
  TempDir() : gradhpo::testing::TempDir("gradhpo_svhn") {}
};

// X(r, c, ch, i) of the synthetic images: asymmetric in r and c so a transpose would show.
std::uint8_t pixel(std::size_t r, std::size_t c, std::size_t ch, std::size_t i) {
  return static_cast<std::uint8_t>((r + 3 * c + 100 * ch + 11 * i) % 256);
}

struct Var {
  std::string name;
  matio_classes cls;
  matio_types type;
  std::vector<std::size_t> dims;
  std::vector<std::uint8_t> bytes;  // column-major data, dims' element type
};

Var images(std::size_t n, std::vector<std::size_t> dims = {}) {
  if (dims.empty()) dims = {32, 32, 3, n};
  Var v{"X", MAT_C_UINT8, MAT_T_UINT8, dims, {}};
  std::size_t total = 1;
  for (auto d : dims) total *= d;
  v.bytes.resize(total);
  // Column-major: r fastest, then c, then channel, then image.
  for (std::size_t k = 0; k < total; ++k) {
    const std::size_t r = k % dims[0], c = (k / dims[0]) % dims[1];
    const std::size_t ch = dims.size() > 2 ? (k / (dims[0] * dims[1])) % dims[2] : 0;
    const std::size_t i = dims.size() > 3 ? k / (dims[0] * dims[1] * dims[2]) : 0;
    v.bytes[k] = pixel(r, c, ch, i);
  }
  return v;
}

Var labels(const std::vector<double>& y, bool row = false) {
  Var v{"y", MAT_C_DOUBLE, MAT_T_DOUBLE, row ? std::vector<std::size_t>{1, y.size()} : std::vector<std::size_t>{y.size(), 1}, {}};
  v.bytes.resize(y.size() * sizeof(double));
  std::memcpy(v.bytes.data(), y.data(), v.bytes.size());
  return v;
}

void write_mat(const std::string& path, const std::vector<Var>& vars, bool compress = false) {
  mat_t* mat = Mat_CreateVer(path.c_str(), nullptr, MAT_FT_MAT5);
  REQUIRE(mat != nullptr);
  for (const Var& v : vars) {
    std::vector<std::size_t> dims = v.dims;
    matvar_t* var = Mat_VarCreate(v.name.c_str(), v.cls, v.type, static_cast<int>(dims.size()), dims.data(),
                                  const_cast<std::uint8_t*>(v.bytes.data()), MAT_F_DONT_COPY_DATA);
    REQUIRE(var != nullptr);
    REQUIRE(Mat_VarWrite(mat, var, compress ? MAT_COMPRESSION_ZLIB : MAT_COMPRESSION_NONE) == 0);
    Mat_VarFree(var);
  }
  Mat_Close(mat);
}

std::string error_of(const std::string& path) {
  try {
    data::read_svhn(path, "svhn-test");
  } catch (const gradhpo::Error& e) {
    return e.what();
  }
  return "(no error)";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("SVHN .mat: pixels land in [N, C, H, W] and label 10 becomes 0") {
  TempDir dir;
  const std::vector<double> y = {10, 1, 5, 10, 9};
  for (bool compress : {false, true}) {
    CAPTURE(compress);
    const std::string path = dir.file(compress ? "z.mat" : "u.mat");
    write_mat(path, {images(5), labels(y)}, compress);
    const data::Dataset d = data::read_svhn(path, "svhn/train");
    REQUIRE(d.images.shape() == Shape{5, 3, 32, 32});
    CHECK(d.labels == std::vector<std::int32_t>{0, 1, 5, 0, 9});
    CHECK(d.num_classes == 10);
    const float* x = d.images.data<float>();
    bool all = true;
    for (std::size_t i = 0; i < 5; ++i)
      for (std::size_t ch = 0; ch < 3; ++ch)
        for (std::size_t r = 0; r < 32; ++r)
          for (std::size_t c = 0; c < 32; ++c)
            all = all && x[((i * 3 + ch) * 32 + r) * 32 + c] == static_cast<float>(pixel(r, c, ch, i)) / 255.0f;
    CHECK(all);
    // Spot checks by hand: image 2, channel 1, row 4, column 7 is (4 + 21 + 100 + 22) = 147.
    CHECK(d.images.at(((2 * 3 + 1) * 32 + 4) * 32 + 7) * 255 == doctest::Approx(147));
    CHECK(d.images.at(((0 * 3 + 0) * 32 + 0) * 32 + 1) * 255 == doctest::Approx(3));  // column 1
    CHECK(d.images.at(((0 * 3 + 0) * 32 + 1) * 32 + 0) * 255 == doctest::Approx(1));  // row 1
  }
}

TEST_CASE("SVHN .mat: accepted variants") {
  TempDir dir;
  // y as a 1 x N row.
  write_mat(dir.file("row.mat"), {images(3), labels({2, 10, 3}, true)});
  CHECK(data::read_svhn(dir.file("row.mat"), "row").labels == std::vector<std::int32_t>{2, 0, 3});
  // One image: MATLAB stores 32 x 32 x 3 x 1 as rank 3.
  write_mat(dir.file("one.mat"), {images(1, {32, 32, 3}), labels({7})});
  const data::Dataset one = data::read_svhn(dir.file("one.mat"), "one");
  CHECK(one.images.shape() == Shape{1, 3, 32, 32});
  CHECK(one.images.at(2 * 1024 + 5 * 32 + 6) * 255 == doctest::Approx(pixel(5, 6, 2, 0)));
  // y stored before X, and an extra variable: order and extras do not matter.
  Var extra = labels({1, 2});
  extra.name = "names";
  write_mat(dir.file("order.mat"), {labels({4, 4}), extra, images(2)});
  CHECK(data::read_svhn(dir.file("order.mat"), "order").size() == 2);
}

TEST_CASE("SVHN .mat: bad files are clear errors") {
  TempDir dir;
  const std::vector<double> y3 = {1, 2, 3};

  write_mat(dir.file("noy.mat"), {images(3)});
  CHECK(contains(error_of(dir.file("noy.mat")), "no variable 'y'"));

  write_mat(dir.file("nox.mat"), {labels(y3)});
  CHECK(contains(error_of(dir.file("nox.mat")), "no variable 'X'"));

  write_mat(dir.file("dims.mat"), {images(3, {28, 28, 3, 3}), labels(y3)});
  const std::string e = error_of(dir.file("dims.mat"));
  CHECK(contains(e, "dims.mat"));
  CHECK(contains(e, "uint8 28 x 28 x 3 x 3"));
  CHECK(contains(e, "expected uint8 32 x 32 x 3 x N"));

  write_mat(dir.file("gray.mat"), {images(3, {32, 32, 1, 3}), labels(y3)});
  CHECK(contains(error_of(dir.file("gray.mat")), "uint8 32 x 32 x 1 x 3"));

  write_mat(dir.file("rank2.mat"), {images(1, {1024, 3}), labels({1})});
  CHECK(contains(error_of(dir.file("rank2.mat")), "variable 'X' is uint8 1024 x 3"));

  Var xd = images(3);  // X as double
  std::vector<double> as_double(xd.bytes.begin(), xd.bytes.end());
  xd.cls = MAT_C_DOUBLE;
  xd.type = MAT_T_DOUBLE;
  xd.bytes.resize(as_double.size() * 8);
  std::memcpy(xd.bytes.data(), as_double.data(), xd.bytes.size());
  write_mat(dir.file("xdouble.mat"), {xd, labels(y3)});
  CHECK(contains(error_of(dir.file("xdouble.mat")), "variable 'X' is double 32 x 32 x 3 x 3"));

  Var yu = labels(y3);  // y as uint8
  yu.cls = MAT_C_UINT8;
  yu.type = MAT_T_UINT8;
  yu.bytes = {1, 2, 3};
  write_mat(dir.file("yuint8.mat"), {images(3), yu});
  CHECK(contains(error_of(dir.file("yuint8.mat")), "variable 'y' is uint8 3 x 1, expected double N x 1"));

  write_mat(dir.file("count.mat"), {images(3), labels({1, 2})});
  CHECK(contains(error_of(dir.file("count.mat")), "expected 3 x 1 to match the 3 images"));

  write_mat(dir.file("ymatrix.mat"), {images(2), Var{"y", MAT_C_DOUBLE, MAT_T_DOUBLE, {2, 2}, std::vector<std::uint8_t>(32, 0)}});
  CHECK(contains(error_of(dir.file("ymatrix.mat")), "variable 'y' is double 2 x 2"));

  for (double bad : {0.0, 11.0, 2.5, -1.0}) {
    CAPTURE(bad);
    write_mat(dir.file("label.mat"), {images(3), labels({1, bad, 3})});
    CHECK(contains(error_of(dir.file("label.mat")), "label y(2) is"));
  }

  CHECK(contains(error_of(dir.file("absent.mat")), "file not found"));
  {
    std::ofstream(dir.file("text.mat")) << "this is not a MAT file, only some text long enough to pass 128 bytes "
                                           "of header and still be nothing like MATLAB's binary format at all.....";
  }
  CHECK(contains(error_of(dir.file("text.mat")), "text.mat"));

  // Truncated, both uncompressed (libmatio itself would read garbage here) and compressed.
  for (bool compress : {false, true}) {
    write_mat(dir.file("full.mat"), {images(4), labels({1, 2, 3, 4})}, compress);
    std::ifstream in(dir.file("full.mat"), std::ios::binary);
    const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), {});
    for (std::size_t cut : {bytes.size() - 1, bytes.size() - 9, bytes.size() / 2, std::size_t{200}, std::size_t{64}}) {
      CAPTURE(compress);
      CAPTURE(cut);
      std::ofstream(dir.file("cut.mat"), std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(cut));
      CHECK_THROWS_AS(data::read_svhn(dir.file("cut.mat"), "cut"), gradhpo::Error);
    }
  }
}

TEST_CASE("load_dataset(\"svhn\") reads train_32x32.mat and test_32x32.mat") {
  TempDir dir;
  fs::create_directory(dir.file("svhn"));
  write_mat(dir.file("svhn/train_32x32.mat"), {images(6), labels({1, 2, 3, 4, 5, 10})}, true);
  write_mat(dir.file("svhn/test_32x32.mat"), {images(2), labels({10, 10})}, true);
  const data::TrainTest s = data::load_dataset("svhn", dir.path);  // finds the svhn/ subfolder
  CHECK(s.folder == dir.file("svhn"));
  CHECK(s.train.size() == 6);
  CHECK(s.test.labels == std::vector<std::int32_t>{0, 0});
  CHECK(s.train.name == "svhn/train");
  fs::remove(dir.file("svhn/test_32x32.mat"));
  CHECK_THROWS_WITH_AS(data::load_dataset("svhn", dir.path), doctest::Contains("test_32x32.mat"), gradhpo::Error);
}

namespace {

std::vector<std::uint8_t> file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<std::uint8_t>((std::istreambuf_iterator<char>(in)), {});
}

void put_file(const std::string& path, const std::vector<std::uint8_t>& b) {
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

std::uint32_t le32(const std::uint8_t* p) { return p[0] | p[1] << 8 | p[2] << 16 | std::uint32_t{p[3]} << 24; }
void set_le32(std::uint8_t* p, std::uint32_t v) {
  for (int k = 0; k < 4; ++k) p[k] = static_cast<std::uint8_t>(v >> (8 * k));
}

// The file's top-level elements (tag included), after the 128-byte header, as written by
// libmatio on this little-endian machine.
std::vector<std::vector<std::uint8_t>> elements(const std::vector<std::uint8_t>& f) {
  std::vector<std::vector<std::uint8_t>> out;
  for (std::size_t off = 128; off + 8 <= f.size();) {
    const std::size_t len = 8 + le32(&f[off + 4]);
    out.emplace_back(f.begin() + static_cast<std::ptrdiff_t>(off), f.begin() + static_cast<std::ptrdiff_t>(off + len));
    off += (len + 7) / 8 * 8;
  }
  return out;
}

// Wraps an uncompressed element into a miCOMPRESSED one, as MATLAB's -v7 files do.
std::vector<std::uint8_t> compressed(const std::vector<std::uint8_t>& element) {
  uLongf n = compressBound(static_cast<uLong>(element.size()));
  std::vector<std::uint8_t> z(n);
  REQUIRE(compress(z.data(), &n, element.data(), static_cast<uLong>(element.size())) == Z_OK);
  std::vector<std::uint8_t> out(8 + n);
  set_le32(&out[0], 15);
  set_le32(&out[4], static_cast<std::uint32_t>(n));
  std::memcpy(out.data() + 8, z.data(), n);
  return out;
}

}  // namespace

TEST_CASE("SVHN .mat: headers that promise more data than the file holds, damaged zlib streams") {
  TempDir dir;
  write_mat(dir.file("plain.mat"), {images(2), labels({1, 2})});
  const auto f = file_bytes(dir.file("plain.mat"));
  const std::vector<std::uint8_t> header(f.begin(), f.begin() + 128);
  auto el = elements(f);
  REQUIRE(el.size() == 2);
  // In each miMATRIX element: tag (8), array flags (16), dimensions tag (8), then the
  // dimensions as int32: X is 32 32 3 2 (N at byte 44), y is 2 1 (N at byte 32).
  REQUIRE(le32(&el[0][44]) == 2);
  REQUIRE(le32(&el[1][32]) == 2);
  set_le32(&el[0][44], 3);
  set_le32(&el[1][32], 3);

  // Uncompressed: libmatio would return a third image and label from beyond the data.
  std::vector<std::uint8_t> g = header;
  for (const auto& e : el) g.insert(g.end(), e.begin(), e.end());
  put_file(dir.file("inflated.mat"), g);
  CHECK(contains(error_of(dir.file("inflated.mat")), "X and y claim 3 images"));

  // Compressed: libmatio inflates what there is and leaves the rest; the label pre-filled with
  // NaN gives it away.
  g = header;
  for (const auto& e : el) {
    const auto z = compressed(e);
    g.insert(g.end(), z.begin(), z.end());
  }
  put_file(dir.file("inflated_z.mat"), g);
  CHECK(contains(error_of(dir.file("inflated_z.mat")), "label y(3) is nan"));

  // A bit flipped inside a compressed stream: zlib's checksum or decoder catches it, where
  // libmatio alone would return altered pixels.
  set_le32(&el[0][44], 2);
  set_le32(&el[1][32], 2);
  const auto zx = compressed(el[0]), zy = compressed(el[1]);
  for (std::size_t at : {std::size_t{12}, zx.size() / 2, zx.size() - 3}) {
    CAPTURE(at);
    g = header;
    g.insert(g.end(), zx.begin(), zx.end());
    g.insert(g.end(), zy.begin(), zy.end());
    g[128 + at] ^= 0x08;
    put_file(dir.file("flipped.mat"), g);
    const std::string e = error_of(dir.file("flipped.mat"));
    CHECK(contains(e, "flipped.mat"));
    CHECK(e != "(no error)");
  }
  g = header;  // and the same file undamaged reads fine
  g.insert(g.end(), zx.begin(), zx.end());
  g.insert(g.end(), zy.begin(), zy.end());
  put_file(dir.file("fine.mat"), g);
  CHECK(data::read_svhn(dir.file("fine.mat"), "fine").labels == std::vector<std::int32_t>{1, 2});
}
