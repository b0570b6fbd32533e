// Fashion-MNIST as installed by Debian's dataset-fashion-mnist package.
//
// The expected values were read from the files with Python's gzip module (raw bytes, not this
// loader): labels of the first records, per-class counts and a few pixels.
#include <doctest/doctest.h>

#include <gradhpo/data/idx.h>
#include <gradhpo/data/load.h>
#include <gradhpo/engine/error.h>
#include <gradhpo/engine/storage.h>

#include <algorithm>
#include <chrono>
#include <filesystem>

namespace data = gradhpo::data;
using gradhpo::Shape;

namespace {

const char* const kFolder = "/usr/share/datasets/fashion-mnist";

bool have_fashion() {
  std::error_code ec;
  if (std::filesystem::is_directory(kFolder, ec)) return true;
  MESSAGE("skipped: " << kFolder << " is absent (apt-get install dataset-fashion-mnist)");
  return false;
}

// Pixel (row, col) of image i of a [N, 1, 28, 28] tensor, back in bytes.
double byte_at(const data::Dataset& d, std::int64_t i, std::int64_t row, std::int64_t col) {
  return d.images.at(i * 784 + row * 28 + col) * 255.0;
}

}  // namespace

TEST_CASE("Fashion-MNIST from the Debian package: sizes, labels, pixels") {
  if (!have_fashion()) return;
  const auto t0 = std::chrono::steady_clock::now();
  const data::TrainTest fm = data::load_dataset("fashion-mnist", kFolder);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  MESSAGE("Fashion-MNIST 60000 + 10000 images loaded in " << seconds << " s");

  const data::Dataset& tr = fm.train;
  const data::Dataset& te = fm.test;
  CHECK(tr.images.shape() == Shape{60000, 1, 28, 28});
  CHECK(te.images.shape() == Shape{10000, 1, 28, 28});
  CHECK(tr.size() == 60000);
  CHECK(te.size() == 10000);
  CHECK(tr.num_classes == 10);
  CHECK(tr.name == "fashion-mnist/train");
  CHECK(fm.folder == kFolder);
  CHECK(fm.files.size() == 4);

  CHECK(std::vector<std::int32_t>(tr.labels.begin(), tr.labels.begin() + 10) ==
        std::vector<std::int32_t>{9, 0, 0, 3, 0, 2, 7, 2, 5, 5});
  CHECK(std::vector<std::int32_t>(te.labels.begin(), te.labels.begin() + 10) ==
        std::vector<std::int32_t>{9, 2, 1, 1, 6, 1, 4, 6, 5, 7});
  CHECK(data::label_counts(tr) == std::vector<std::int64_t>(10, 6000));
  CHECK(data::label_counts(te) == std::vector<std::int64_t>(10, 1000));

  const float* x = tr.images.data<float>();
  const auto [lo, hi] = std::minmax_element(x, x + tr.images.numel());
  CHECK(*lo == 0.0f);
  CHECK(*hi == 1.0f);

  // Bytes at (row, col), from Python: train image 0 row 10 starts its 13 zeros then 193, 228.
  CHECK(byte_at(tr, 0, 10, 12) == doctest::Approx(0));
  CHECK(byte_at(tr, 0, 10, 13) == doctest::Approx(193));
  CHECK(byte_at(tr, 0, 10, 14) == doctest::Approx(228));
  CHECK(byte_at(tr, 0, 14, 14) == doctest::Approx(217));
  CHECK(byte_at(tr, 1, 5, 4) == doctest::Approx(116));
  CHECK(byte_at(te, 9999, 14, 11) == doctest::Approx(128));
  CHECK(tr.images.at(13 + 10 * 28) == 193.0f / 255.0f);  // exactly b / 255

  tr.check();
  te.check();
  gradhpo::pool_release_cached();  // hand the 220 MB back before the next test case
}

TEST_CASE("IDX files are found with or without the .gz in the name") {
  if (!have_fashion()) return;
  const std::string base = std::string(kFolder) + "/t10k-labels-idx1-ubyte";
  const auto a = data::read_idx_labels(base, 10);
  const auto b = data::read_idx_labels(base + ".gz", 10);
  CHECK(a.size() == 10000);
  CHECK(a == b);
  CHECK(a[9] == 7);
  CHECK_THROWS_AS(data::read_idx_labels(base, 5), gradhpo::Error);  // labels 5..9 out of range
}
