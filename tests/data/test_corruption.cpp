// Bad input to the IDX and CIFAR-10 readers: every case is a gradhpo::Error naming the file and
// the problem, never a crash and never a partial dataset. Small files are written here byte by
// byte (an encoder independent of the reader), plus prefixes of the real files when present.
#include <doctest/doctest.h>

#include <gradhpo/data/cifar10.h>
#include <gradhpo/data/file_bytes.h>
#include <gradhpo/data/idx.h>
#include <gradhpo/data/load.h>
#include <gradhpo/data/svhn.h>
#include <gradhpo/engine/error.h>

#include <matio.h>
#include <unistd.h>
#include <zlib.h>

#include "temp_dir.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <vector>

namespace data = gradhpo::data;
namespace fs = std::filesystem;
using Bytes = std::vector<std::uint8_t>;
using gradhpo::Shape;

namespace {

struct TempDir : gradhpo::testing::TempDir {
  TempDir() : gradhpo::testing::TempDir("gradhpo_corrupt") {}
};

void write_file(const std::string& path, const Bytes& b) {
  // Unlink first: on ext4, truncating and rewriting a file forces a flush to disk on close
  // (auto_da_alloc), which made hundreds of rewrites take seconds.
  std::error_code ec;
  fs::remove(path, ec);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  REQUIRE(out.good());
}

Bytes read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes((std::istreambuf_iterator<char>(in)), {});
}

void write_gz(const std::string& path, const Bytes& b) {
  std::error_code ec;
  fs::remove(path, ec);
  gzFile f = gzopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  REQUIRE(gzwrite(f, b.data(), static_cast<unsigned>(b.size())) == static_cast<int>(b.size()));
  REQUIRE(gzclose(f) == Z_OK);
}

void put_be32(Bytes& b, std::uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<std::uint8_t>(v >> s));
}

// An IDX image file: n images of rows x cols, pixel (i, k) = (i * 31 + k) % 256.
Bytes idx_images(std::uint32_t n, std::uint32_t rows = 28, std::uint32_t cols = 28, std::uint32_t magic = 0x803) {
  Bytes b;
  put_be32(b, magic);
  put_be32(b, n);
  put_be32(b, rows);
  put_be32(b, cols);
  for (std::uint32_t i = 0; i < n; ++i)
    for (std::uint32_t k = 0; k < rows * cols; ++k) b.push_back(static_cast<std::uint8_t>((i * 31 + k) % 256));
  return b;
}

Bytes idx_labels(const Bytes& labels, std::uint32_t magic = 0x801) {
  Bytes b;
  put_be32(b, magic);
  put_be32(b, static_cast<std::uint32_t>(labels.size()));
  b.insert(b.end(), labels.begin(), labels.end());
  return b;
}

// CIFAR-10 records with the given labels; pixel k of record i = (i + 7 * k) % 256.
Bytes cifar(const Bytes& labels) {
  Bytes b;
  for (std::size_t i = 0; i < labels.size(); ++i) {
    b.push_back(labels[i]);
    for (std::size_t k = 0; k < 3072; ++k) b.push_back(static_cast<std::uint8_t>((i + 7 * k) % 256));
  }
  return b;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const gradhpo::Error& e) {
    return e.what();
  }
  return "(no error)";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("IDX: good files, gzip or not, with or without .gz in the name") {
  TempDir dir;
  write_file(dir.file("img"), idx_images(3, 4, 5));
  write_gz(dir.file("img2.gz"), idx_images(3, 4, 5));
  const gradhpo::Tensor a = data::read_idx_images(dir.file("img"));
  CHECK(a.shape() == Shape{3, 1, 4, 5});
  CHECK(a.at(2 * 20 + 7) == static_cast<float>((2 * 31 + 7) % 256) / 255.0f);
  CHECK(data::read_idx_images(dir.file("img2")).to_vector() == a.to_vector());    // adds .gz
  CHECK(data::read_idx_images(dir.file("img.gz")).to_vector() == a.to_vector());  // drops .gz
  write_gz(dir.file("lab.gz"), idx_labels({3, 1, 4}));
  const data::Dataset d = data::load_idx(dir.file("img"), dir.file("lab"), 10, "tiny");
  CHECK(d.labels == std::vector<std::int32_t>{3, 1, 4});
  CHECK(d.name == "tiny");
}

TEST_CASE("IDX: each kind of damage is a clear error") {
  TempDir dir;
  const auto images_error = [&](const Bytes& b) {
    write_file(dir.file("x-images"), b);
    return error_of([&] { data::read_idx_images(dir.file("x-images")); });
  };
  const auto labels_error = [&](const Bytes& b) {
    write_file(dir.file("x-labels"), b);
    return error_of([&] { data::read_idx_labels(dir.file("x-labels"), 10); });
  };

  std::string e = error_of([&] { data::read_idx_images(dir.file("missing-images")); });
  CHECK(contains(e, "missing-images: file not found"));
  CHECK(contains(error_of([&] { data::read_idx_images(dir.path); }), "not a regular file"));

  e = images_error(idx_images(2, 28, 28, 0x801));
  CHECK(contains(e, "x-images"));
  CHECK(contains(e, "wrong IDX magic number: expected 0x00000803 (images), got 0x00000801"));
  CHECK(contains(labels_error(idx_images(2)), "expected 0x00000801 (labels), got 0x00000803"));
  // A gzip magic number with nothing valid after it.
  CHECK(contains(images_error(Bytes{0x1f, 0x8b, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}),
                 "x-images: corrupt or truncated gzip data after 0 decompressed bytes: unknown compression method"));

  Bytes b = idx_images(2);
  b.resize(10);
  CHECK(contains(images_error(b), "truncated IDX header: expected 16 bytes"));
  CHECK(contains(images_error(Bytes{}), "truncated IDX header"));
  CHECK(contains(labels_error(Bytes{0, 0, 8, 1, 0}), "truncated IDX header: expected 8 bytes"));

  b = idx_images(5);
  b.resize(b.size() - 400);
  e = images_error(b);
  CHECK(contains(e, "5 images of 28 x 28"));
  CHECK(contains(e, "file truncated: room for 4 records"));
  b = idx_labels({1, 2, 3});
  b.pop_back();
  CHECK(contains(labels_error(b), "file truncated"));

  b = idx_images(5);
  b.push_back(0);  // one byte too many: the header's count is wrong
  CHECK(contains(images_error(b), "IDX body has 3921 bytes, header says 5 images"));
  CHECK(contains(images_error(idx_images(0)), "holds 0 records"));
  CHECK(contains(images_error(idx_images(2, 0, 28)), "empty images"));
  b = idx_images(2);
  b[4] = 0xFF;  // count 0xFF000002: must fail on size before trying to allocate 200 GB
  CHECK(contains(images_error(b), "file truncated"));

  e = labels_error(idx_labels({1, 2, 10, 3}));
  CHECK(contains(e, "x-labels: label 2 is 10, expected 0..9"));

  write_file(dir.file("i5"), idx_images(5));
  write_file(dir.file("l4"), idx_labels({1, 2, 3, 4}));
  e = error_of([&] { data::load_idx(dir.file("i5"), dir.file("l4"), 10, "pair"); });
  CHECK(contains(e, "image and label counts differ"));
  CHECK(contains(e, "i5 holds 5 images"));
  CHECK(contains(e, "l4 holds 4 labels"));

  e = error_of([&] { data::load_idx(dir.file("i5"), dir.file("l4"), 10, "pair", 32, 32); });
  CHECK(contains(e, "wrong image size for pair: expected 32 x 32, got 28 x 28"));
}

TEST_CASE("gzip: corrupt and truncated streams are errors") {
  TempDir dir;
  write_gz(dir.file("good.gz"), idx_images(20));
  const Bytes gz = read_file(dir.file("good.gz"));
  REQUIRE(gz.size() > 100);

  Bytes cut = gz;
  cut.resize(gz.size() / 2);
  write_file(dir.file("cut.gz"), cut);
  std::string e = error_of([&] { data::read_idx_images(dir.file("cut.gz")); });
  CHECK(contains(e, "cut.gz: corrupt or truncated gzip data"));

  cut = gz;
  cut.resize(gz.size() - 4);  // only the length trailer missing
  write_file(dir.file("cut.gz"), cut);
  CHECK(contains(error_of([&] { data::read_idx_images(dir.file("cut.gz")); }), "gzip"));

  Bytes bad = gz;
  bad[gz.size() / 2] ^= 0x55;  // inside the deflate stream: a data error or a CRC mismatch
  write_file(dir.file("bad.gz"), bad);
  e = error_of([&] { data::read_idx_images(dir.file("bad.gz")); });
  CHECK(contains(e, "bad.gz"));
  CHECK(contains(e, "gzip"));

  bad = gz;
  bad[gz.size() - 6] ^= 0x01;  // the stored CRC-32
  write_file(dir.file("crc.gz"), bad);
  CHECK(contains(error_of([&] { data::read_file_bytes(dir.file("crc.gz")); }), "incorrect data check"));
}

TEST_CASE("gzip: a CRC mismatch names the position where it is found, the end of the data") {
  TempDir dir;
  const Bytes plain = idx_images(300);  // 235 216 bytes: more than one read of the compressed size
  write_gz(dir.file("good.gz"), plain);
  Bytes bad = read_file(dir.file("good.gz"));
  bad[bad.size() - 6] ^= 0x01;  // the stored CRC-32
  write_file(dir.file("crc.gz"), bad);
  const std::string e = error_of([&] { data::read_file_bytes(dir.file("crc.gz")); });
  CHECK(contains(e, "after " + std::to_string(plain.size()) + " decompressed bytes: incorrect data check"));
}

TEST_CASE("gzip: bytes after the gzip data are an error, a second gzip member is read on") {
  TempDir dir;
  const Bytes plain = idx_images(3, 4, 5);
  write_gz(dir.file("one.gz"), plain);
  const Bytes gz = read_file(dir.file("one.gz"));
  for (const Bytes& tail : {Bytes{0}, Bytes{'j', 'u', 'n', 'k'}, Bytes(100, 0)}) {
    Bytes extra = gz;
    extra.insert(extra.end(), tail.begin(), tail.end());
    write_file(dir.file("extra.gz"), extra);
    const std::string e = error_of([&] { data::read_idx_images(dir.file("extra.gz")); });
    CHECK(contains(e, "extra.gz: " + std::to_string(tail.size()) + " bytes after the end of the gzip data"));
  }
  // gzip -d reads concatenated members as one stream: so does the reader.
  write_gz(dir.file("half.gz"), Bytes(plain.begin() + 10, plain.end()));
  write_gz(dir.file("head.gz"), Bytes(plain.begin(), plain.begin() + 10));
  Bytes two = read_file(dir.file("head.gz"));
  const Bytes second = read_file(dir.file("half.gz"));
  two.insert(two.end(), second.begin(), second.end());
  write_file(dir.file("two.gz"), two);
  CHECK(data::read_file_bytes(dir.file("two.gz")).bytes == plain);
}

TEST_CASE("CIFAR-10: good records and each kind of damage") {
  TempDir dir;
  write_file(dir.file("b.bin"), cifar({3, 9, 0}));
  const data::Dataset d = data::read_cifar10({dir.file("b.bin")}, "tiny");
  CHECK(d.images.shape() == Shape{3, 3, 32, 32});
  CHECK(d.labels == std::vector<std::int32_t>{3, 9, 0});
  // Record 1, channel 2 (blue), row 3, column 4 is pixel byte k = 2048 + 100 of the record.
  CHECK(d.images.at(((1 * 3 + 2) * 32 + 3) * 32 + 4) == static_cast<float>((1 + 7 * 2148) % 256) / 255.0f);

  Bytes b = cifar({1, 2});
  b.pop_back();
  write_file(dir.file("short.bin"), b);
  std::string e = error_of([&] { data::read_cifar10({dir.file("short.bin")}, "x"); });
  CHECK(contains(e, "short.bin: size 6145 bytes is not a multiple of the CIFAR-10 record size 3073"));
  CHECK(contains(e, "1 whole records and 3072 bytes left over"));

  write_file(dir.file("empty.bin"), {});
  CHECK(contains(error_of([&] { data::read_cifar10({dir.file("empty.bin")}, "x"); }), "empty.bin: empty file"));

  write_file(dir.file("label.bin"), cifar({1, 10, 2}));
  e = error_of([&] { data::read_cifar10({dir.file("label.bin")}, "x"); });
  CHECK(contains(e, "label.bin: record 1 (byte offset 3073) has label 10, expected 0..9"));

  // One bad file among good ones fails the whole read: no partial dataset.
  e = error_of([&] { data::read_cifar10({dir.file("b.bin"), dir.file("missing.bin")}, "x"); });
  CHECK(contains(e, "missing.bin: file not found"));
  CHECK_THROWS_AS(data::read_cifar10({}, "x"), gradhpo::Error);
}

TEST_CASE("load_dataset: wrong image size and incomplete folders are errors") {
  TempDir dir;
  write_file(dir.file("train-images-idx3-ubyte"), idx_images(4, 20, 20));
  write_file(dir.file("train-labels-idx1-ubyte"), idx_labels({1, 2, 3, 4}));
  write_file(dir.file("t10k-images-idx3-ubyte"), idx_images(2, 20, 20));
  write_file(dir.file("t10k-labels-idx1-ubyte"), idx_labels({1, 2}));
  std::string e = error_of([&] { data::load_dataset("mnist", dir.path); });
  CHECK(contains(e, "wrong image size for mnist/train: expected 28 x 28, got 20 x 20"));

  write_file(dir.file("train-images-idx3-ubyte"), idx_images(4));
  write_file(dir.file("t10k-images-idx3-ubyte"), idx_images(2));
  const data::TrainTest ok = data::load_dataset("mnist", dir.path);
  CHECK(ok.train.size() == 4);
  CHECK(ok.test.size() == 2);
  fs::remove(dir.file("t10k-labels-idx1-ubyte"));
  e = error_of([&] { data::load_dataset("mnist", dir.path); });
  CHECK(contains(e, "t10k-labels-idx1-ubyte.gz: file not found"));

  write_file(dir.file("data_batch_2.bin"), cifar({1, 2}));
  e = error_of([&] { data::load_dataset("cifar10", dir.path); });
  CHECK(contains(e, "no test file"));
  write_file(dir.file("test_batch.bin"), cifar({5}));
  write_file(dir.file("test_batch_first1000.bin"), cifar({6, 6}));
  const data::TrainTest c = data::load_dataset("cifar10", dir.path);
  CHECK(c.train.size() == 2);
  CHECK(c.test.labels == std::vector<std::int32_t>{5});  // the full test file wins over the prefix
  CHECK(contains(c.note, "read 1 of 5 training batches (data_batch_2"));
  fs::remove(dir.file("test_batch.bin"));
  CHECK(data::load_dataset("cifar10", dir.path).test.name == "cifar10/test_first2");
}

namespace {

// A mutated copy of `b`: truncated, bytes overwritten (anywhere or in the first 16 bytes) or
// random bytes appended. `kind` says which, for the caller's expectations.
Bytes mutate(const Bytes& b, std::mt19937_64& rng, int& kind) {
  Bytes m = b;
  kind = static_cast<int>(rng() % 4);
  switch (kind) {
    case 0:
      m.resize(rng() % b.size());
      break;
    case 1:
      for (int k = 1 + static_cast<int>(rng() % 4); k > 0; --k) m[rng() % m.size()] ^= static_cast<std::uint8_t>(1 + rng() % 255);
      break;
    case 2:
      for (int k = 1 + static_cast<int>(rng() % 2); k > 0; --k)
        m[rng() % std::min<std::size_t>(16, m.size())] = static_cast<std::uint8_t>(rng());
      break;
    default:
      for (int k = 1 + static_cast<int>(rng() % 4000); k > 0; --k) m.push_back(static_cast<std::uint8_t>(rng()));
  }
  return m;
}

struct Tally {
  int loaded = 0, errors = 0, other = 0;
};

// Runs `load` and sorts the outcome: a consistent result, a gradhpo::Error, or anything else
// (which fails the test). A crash would end the test run.
void attempt(Tally& t, const std::function<void()>& load) {
  try {
    load();
    ++t.loaded;
  } catch (const gradhpo::Error&) {
    ++t.errors;
  } catch (const std::exception& e) {
    ++t.other;
    FAIL_CHECK("not a gradhpo::Error: " << e.what());
  }
}

bool unit_range(const gradhpo::Tensor& t) {
  const float* x = t.data<float>();
  return std::all_of(x, x + t.numel(), [](float v) { return v >= 0.0f && v <= 1.0f; });
}

// The first `bytes` decompressed bytes of a real gzip file, read with zlib directly.
Bytes gz_prefix(const std::string& path, std::size_t bytes) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (f == nullptr) return {};
  Bytes b(bytes);
  const int got = gzread(f, b.data(), static_cast<unsigned>(bytes));
  gzclose(f);
  b.resize(got > 0 ? static_cast<std::size_t>(got) : 0);
  return b;
}

}  // namespace

TEST_CASE("fuzz: truncated and corrupted IDX, gzip and CIFAR files load consistently or throw") {
  TempDir dir;
  std::mt19937_64 rng(20240601);

  // Sources: small files written here, and real headers and pixels when the files exist.
  std::vector<std::pair<std::string, Bytes>> idx_sources = {{"synthetic", idx_images(6)}};
  const Bytes real = gz_prefix("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", 16 + 6 * 784);
  if (real.size() == 16 + 6 * 784) {
    Bytes r = real;
    r[4] = r[5] = r[6] = 0;
    r[7] = 6;  // the real header with its count cut to the 6 images kept
    idx_sources.push_back({"fashion-mnist prefix", r});
  } else {
    MESSAGE("Fashion-MNIST absent: fuzzing synthetic IDX files only");
  }
  const Bytes labels = idx_labels({9, 0, 0, 3, 0, 2});
  write_file(dir.file("labels"), labels);

  Tally t;
  for (const auto& [what, src] : idx_sources) {
    CAPTURE(what);
    for (int i = 0; i < 150; ++i) {
      int kind = 0;
      const Bytes m = mutate(src, rng, kind);
      const bool gz = i % 2 == 1;
      if (gz) write_gz(dir.file("images"), m);
      else write_file(dir.file("images"), m);
      // The mutated file paired with good labels; a consistent load keeps the counts equal.
      attempt(t, [&] {
        const data::Dataset d = data::load_idx(dir.file("images"), dir.file("labels"), 10, "fuzz");
        CHECK(d.images.dim(0) == 6);
        CHECK(d.images.numel() == static_cast<std::int64_t>(m.size()) - 16);
        CHECK(unit_range(d.images));
        CHECK(kind != 0);  // a truncated IDX file never loads
      });
    }
  }
  // Damaged gzip streams: truncations always fail, flipped bytes nearly always (CRC-32).
  write_gz(dir.file("whole.gz"), idx_images(6));
  const Bytes gz = read_file(dir.file("whole.gz"));
  for (int i = 0; i < 150; ++i) {
    int kind = 0;
    const Bytes m = mutate(gz, rng, kind);
    write_file(dir.file("damaged.gz"), m);
    attempt(t, [&] {
      const gradhpo::Tensor x = data::read_idx_images(dir.file("damaged.gz"));
      CHECK(x.shape() == Shape{6, 1, 28, 28});
      CHECK(kind != 0);
    });
  }
  // Labels files.
  for (int i = 0; i < 100; ++i) {
    int kind = 0;
    write_file(dir.file("damaged-labels"), mutate(labels, rng, kind));
    attempt(t, [&] {
      const auto y = data::read_idx_labels(dir.file("damaged-labels"), 10);
      CHECK(std::all_of(y.begin(), y.end(), [](std::int32_t v) { return v >= 0 && v < 10; }));
      CHECK(kind != 0);
    });
  }
  // CIFAR-10: synthetic records and, when present, the first records of the real test file.
  std::vector<Bytes> cifar_sources = {cifar({0, 5, 9})};
  const std::string real_cifar = std::string(
#ifdef GRADHPO_SHARED_DATA
      GRADHPO_SHARED_DATA
#else
      "/nonexistent"
#endif
      ) + "/cifar10/test_batch_first1000.bin";
  {
    std::ifstream in(real_cifar, std::ios::binary);
    Bytes head(3 * 3073);
    if (in.read(reinterpret_cast<char*>(head.data()), static_cast<std::streamsize>(head.size())))
      cifar_sources.push_back(head);
  }
  for (const Bytes& src : cifar_sources)
    for (int i = 0; i < 150; ++i) {
      int kind = 0;
      const Bytes m = mutate(src, rng, kind);
      write_file(dir.file("damaged.bin"), m);
      attempt(t, [&] {
        const data::Dataset d = data::read_cifar10({dir.file("damaged.bin")}, "fuzz");
        CHECK(d.size() * 3073 == static_cast<std::int64_t>(m.size()));
        CHECK(d.images.shape() == Shape{d.size(), 3, 32, 32});
        CHECK(unit_range(d.images));
        d.check();
      });
    }
  MESSAGE("fuzz: " << t.loaded << " mutated files loaded consistently, " << t.errors << " rejected");
  CHECK(t.other == 0);
  CHECK(t.errors > 0);
  CHECK(t.loaded > 0);  // bytes flipped in the pixels of a raw file are undetectable, and fine
}

TEST_CASE("fuzz: truncated and corrupted SVHN .mat files load consistently or throw") {
  TempDir dir;
  std::mt19937_64 rng(7);
  Tally t;
  for (bool compress : {false, true}) {
    // A 2-image SVHN-layout file written with libmatio.
    const std::string path = dir.file("src.mat");
    {
      mat_t* mat = Mat_CreateVer(path.c_str(), nullptr, MAT_FT_MAT5);
      REQUIRE(mat != nullptr);
      std::vector<std::uint8_t> x(32 * 32 * 3 * 2);
      for (std::size_t k = 0; k < x.size(); ++k) x[k] = static_cast<std::uint8_t>(k * 13);
      std::vector<double> y = {3, 10};
      std::size_t dx[4] = {32, 32, 3, 2}, dy[2] = {2, 1};
      matvar_t* vx = Mat_VarCreate("X", MAT_C_UINT8, MAT_T_UINT8, 4, dx, x.data(), MAT_F_DONT_COPY_DATA);
      matvar_t* vy = Mat_VarCreate("y", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, dy, y.data(), MAT_F_DONT_COPY_DATA);
      const matio_compression c = compress ? MAT_COMPRESSION_ZLIB : MAT_COMPRESSION_NONE;
      REQUIRE(Mat_VarWrite(mat, vx, c) == 0);
      REQUIRE(Mat_VarWrite(mat, vy, c) == 0);
      Mat_VarFree(vx);
      Mat_VarFree(vy);
      Mat_Close(mat);
    }
    const Bytes src = read_file(path);
    for (int i = 0; i < 100; ++i) {
      int kind = 0;
      Bytes m = mutate(src, rng, kind);
      if (kind == 2) {  // aim at the variable tags and headers after the 128-byte text header
        m = src;
        m[128 + rng() % 64] ^= static_cast<std::uint8_t>(1 + rng() % 255);
      }
      write_file(dir.file("damaged.mat"), m);
      attempt(t, [&] {
        const data::Dataset d = data::read_svhn(dir.file("damaged.mat"), "fuzz");
        CHECK(d.images.shape() == Shape{d.size(), 3, 32, 32});
        CHECK(unit_range(d.images));
        CHECK(kind != 0);
        d.check();
      });
    }
  }
  MESSAGE("mat fuzz: " << t.loaded << " loaded, " << t.errors << " rejected");
  CHECK(t.other == 0);
}
