// MNIST and CIFAR-10 from the shared data folder (GRADHPO_SHARED_DATA), when it exists.
//
// Label counts are those of /work/shared/data/README.md (computed there by verify.py); labels
// and pixels of single records were read from the raw bytes with Python, not with this loader.
#include <doctest/doctest.h>

#include <gradhpo/data/cifar10.h>
#include <gradhpo/data/load.h>
#include <gradhpo/engine/storage.h>

#include <filesystem>
#include <string>

namespace data = gradhpo::data;
using gradhpo::Shape;

namespace {

// The shared folder's subfolder `sub`, or "" (with a MESSAGE) when it is not available.
std::string shared(const std::string& sub) {
#ifdef GRADHPO_SHARED_DATA
  const std::string dir = std::string(GRADHPO_SHARED_DATA) + "/" + sub;
  std::error_code ec;
  if (std::filesystem::is_directory(dir, ec)) return dir;
  MESSAGE("skipped: shared data folder " << dir << " is absent");
#else
  MESSAGE("skipped: GRADHPO_SHARED_DATA is not defined for this build (" << sub << ")");
#endif
  return "";
}

std::vector<std::int64_t> counts(const data::Dataset& d, std::int64_t begin, std::int64_t end) {
  std::vector<std::int64_t> c(10, 0);
  for (std::int64_t i = begin; i < end; ++i) ++c[static_cast<std::size_t>(d.labels[static_cast<std::size_t>(i)])];
  return c;
}

// Channel `c` of pixel (row, col) of image i of a [N, 3, 32, 32] tensor, back in bytes.
double byte_at(const data::Dataset& d, std::int64_t i, std::int64_t c, std::int64_t row, std::int64_t col) {
  return d.images.at(((i * 3 + c) * 32 + row) * 32 + col) * 255.0;
}

}  // namespace

TEST_CASE("MNIST from the shared folder: counts and labels") {
  const std::string dir = shared("mnist");
  if (dir.empty()) return;
  const data::TrainTest m = data::load_dataset("mnist", dir);
  CHECK(m.train.images.shape() == Shape{60000, 1, 28, 28});
  CHECK(m.test.images.shape() == Shape{10000, 1, 28, 28});
  CHECK(data::label_counts(m.train) ==
        std::vector<std::int64_t>{5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949});
  CHECK(data::label_counts(m.test) ==
        std::vector<std::int64_t>{980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009});
  CHECK(std::vector<std::int32_t>(m.train.labels.begin(), m.train.labels.begin() + 10) ==
        std::vector<std::int32_t>{5, 0, 4, 1, 9, 2, 1, 3, 1, 4});
  CHECK(std::vector<std::int32_t>(m.test.labels.begin(), m.test.labels.begin() + 10) ==
        std::vector<std::int32_t>{7, 2, 1, 0, 4, 1, 4, 9, 5, 9});
  // Train image 0, row 14: thirteen zeros, then 81, 240, 253.
  CHECK(m.train.images.at(14 * 28 + 12) == 0.0f);
  CHECK(m.train.images.at(14 * 28 + 13) * 255.0 == doctest::Approx(81));
  CHECK(m.train.images.at(14 * 28 + 14) * 255.0 == doctest::Approx(240));
  gradhpo::pool_release_cached();
}

TEST_CASE("CIFAR-10 from the shared folder: batches, counts, RGB plane order") {
  const std::string dir = shared("cifar10");
  if (dir.empty()) return;
  const data::TrainTest c = data::load_dataset("cifar10", dir);
  MESSAGE(c.note);
  // The shared folder holds data_batch_1..4 and the 1000-record test prefix.
  CHECK(c.files.size() == 5);
  CHECK(c.note.find("read 4 of 5 training batches") != std::string::npos);
  CHECK(c.train.images.shape() == Shape{40000, 3, 32, 32});
  CHECK(c.test.images.shape() == Shape{1000, 3, 32, 32});
  CHECK(c.test.name == "cifar10/test_first1000");

  CHECK(counts(c.train, 0, 10000) == std::vector<std::int64_t>{1005, 974, 1032, 1016, 999, 937, 1030, 1001, 1025, 981});
  CHECK(counts(c.train, 10000, 20000) == std::vector<std::int64_t>{984, 1007, 1010, 995, 1010, 988, 1008, 1026, 987, 985});
  CHECK(counts(c.train, 20000, 30000) == std::vector<std::int64_t>{994, 1042, 965, 997, 990, 1029, 978, 1015, 961, 1029});
  CHECK(counts(c.train, 30000, 40000) == std::vector<std::int64_t>{1003, 963, 1041, 976, 1004, 1021, 1004, 981, 1024, 983});
  CHECK(data::label_counts(c.test) == std::vector<std::int64_t>{103, 89, 100, 103, 90, 86, 112, 102, 106, 109});

  // Record 0 of data_batch_1 (a frog, label 6): pixel (0, 0) is R 59, G 62, B 63 and pixel
  // (5, 17) is R 97, G 63, B 32 -- distinct per channel, so a plane mix-up would show.
  CHECK(c.train.labels[0] == 6);
  CHECK(byte_at(c.train, 0, 0, 0, 0) == doctest::Approx(59));
  CHECK(byte_at(c.train, 0, 1, 0, 0) == doctest::Approx(62));
  CHECK(byte_at(c.train, 0, 2, 0, 0) == doctest::Approx(63));
  CHECK(byte_at(c.train, 0, 0, 5, 17) == doctest::Approx(97));
  CHECK(byte_at(c.train, 0, 1, 5, 17) == doctest::Approx(63));
  CHECK(byte_at(c.train, 0, 2, 5, 17) == doctest::Approx(32));
  // Last record of data_batch_4 (label 8): R(10, 20) = 133. Checks the batch concatenation.
  CHECK(c.train.labels[39999] == 8);
  CHECK(byte_at(c.train, 39999, 0, 10, 20) == doctest::Approx(133));
  // Test prefix: first labels 3 8 8 0 6 6 1 6 3 1; last record label 8 with B(31, 31) = 131.
  CHECK(std::vector<std::int32_t>(c.test.labels.begin(), c.test.labels.begin() + 10) ==
        std::vector<std::int32_t>{3, 8, 8, 0, 6, 6, 1, 6, 3, 1});
  CHECK(c.test.labels[999] == 8);
  CHECK(byte_at(c.test, 999, 2, 31, 31) == doctest::Approx(131));
  gradhpo::pool_release_cached();
}

TEST_CASE("CIFAR-10 reader takes any whole number of records") {
  const std::string dir = shared("cifar10");
  if (dir.empty()) return;
  const data::Dataset t = data::read_cifar10({dir + "/test_batch_first1000.bin"}, "prefix");
  CHECK(t.size() == 1000);
  // The same file twice: records concatenate in the order given.
  const data::Dataset tt = data::read_cifar10({dir + "/test_batch_first1000.bin", dir + "/test_batch_first1000.bin"}, "twice");
  CHECK(tt.size() == 2000);
  CHECK(tt.labels[1000] == t.labels[0]);
  CHECK(tt.images.at(1000 * 3072 + 5) == t.images.at(5));
}
