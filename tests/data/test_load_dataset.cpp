// Where load_dataset looks for files: an explicit folder, then $GRADHPO_DATA (its subfolder named
// after the dataset, then itself), then the Debian default for fashion-mnist.
#include "temp_dir.h"
#include <doctest/doctest.h>

#include <gradhpo/data/load.h>
#include <gradhpo/engine/error.h>

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

namespace data = gradhpo::data;
namespace fs = std::filesystem;

namespace {

struct TempDir : gradhpo::testing::TempDir {
  TempDir() : gradhpo::testing::TempDir("gradhpo_load") {}
};

// Sets (or unsets, with nullopt) GRADHPO_DATA for the lifetime of the guard.
class DataEnv {
 public:
  explicit DataEnv(const std::optional<std::string>& value) {
    if (const char* old = std::getenv("GRADHPO_DATA")) old_ = old;
    if (value) setenv("GRADHPO_DATA", value->c_str(), 1);
    else unsetenv("GRADHPO_DATA");
  }
  ~DataEnv() {
    if (old_) setenv("GRADHPO_DATA", old_->c_str(), 1);
    else unsetenv("GRADHPO_DATA");
  }

 private:
  std::optional<std::string> old_;
};

void put_be32(std::vector<unsigned char>& b, std::uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<unsigned char>(v >> s));
}

// A complete, tiny MNIST-layout folder: n train and n test images of 28 x 28, labels i % 10.
void write_idx_folder(const std::string& dir, std::uint32_t n, unsigned char fill) {
  fs::create_directories(dir);
  for (const char* split : {"train", "t10k"}) {
    std::vector<unsigned char> img, lab;
    put_be32(img, 0x803);
    put_be32(img, n);
    put_be32(img, 28);
    put_be32(img, 28);
    img.resize(img.size() + n * 784, fill);
    put_be32(lab, 0x801);
    put_be32(lab, n);
    for (std::uint32_t i = 0; i < n; ++i) lab.push_back(static_cast<unsigned char>(i % 10));
    std::ofstream(dir + "/" + split + "-images-idx3-ubyte", std::ios::binary)
        .write(reinterpret_cast<const char*>(img.data()), static_cast<std::streamsize>(img.size()));
    std::ofstream(dir + "/" + split + "-labels-idx1-ubyte", std::ios::binary)
        .write(reinterpret_cast<const char*>(lab.data()), static_cast<std::streamsize>(lab.size()));
  }
}

std::string error_of(const std::string& name, const std::string& folder = "") {
  try {
    data::find_dataset_folder(name, folder);
  } catch (const gradhpo::Error& e) {
    return e.what();
  }
  return "(no error)";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("load_dataset: an explicit folder, or its subfolder named after the dataset") {
  TempDir dir;
  write_idx_folder(dir.file("mnist"), 3, 255);
  const DataEnv env(dir.file("elsewhere"));  // must not be consulted when a folder is given
  CHECK(data::find_dataset_folder("mnist", dir.file("mnist")) == dir.file("mnist"));
  CHECK(data::find_dataset_folder("mnist", dir.path) == dir.file("mnist"));
  CHECK(data::find_dataset_folder("MNIST", dir.path) == dir.file("mnist"));  // names ignore case

  const data::TrainTest m = data::load_dataset("mnist", dir.path);
  CHECK(m.folder == dir.file("mnist"));
  CHECK(m.train.size() == 3);
  CHECK(m.test.labels == std::vector<std::int32_t>{0, 1, 2});
  CHECK(m.train.images.at(100) == 1.0f);
  CHECK(m.train.name == "mnist/train");
  CHECK(m.files.size() == 4);

  const std::string e = error_of("cifar10", dir.path);
  CHECK(contains(e, "no cifar10 files"));
  CHECK(contains(e, dir.path));
  CHECK(contains(e, dir.file("cifar10")));
  CHECK_FALSE(contains(e, "elsewhere"));
}

TEST_CASE("load_dataset: GRADHPO_DATA, subfolder first, then the folder itself") {
  TempDir dir;
  write_idx_folder(dir.file("root/mnist"), 2, 10);
  write_idx_folder(dir.file("root"), 5, 20);  // files directly in the root too
  {
    const DataEnv env(dir.file("root"));
    CHECK(data::find_dataset_folder("mnist") == dir.file("root/mnist"));
    // fashion-mnist has no subfolder here: the root's IDX files are taken as its files.
    CHECK(data::find_dataset_folder("fashion-mnist") == dir.file("root"));
    CHECK(data::load_dataset("mnist").train.size() == 2);
  }
  {
    const DataEnv env(dir.file("root/mnist"));  // a folder holding the files
    CHECK(data::find_dataset_folder("mnist") == dir.file("root/mnist"));
  }
  {
    const DataEnv env(dir.file("missing"));
    const std::string e = error_of("svhn");
    CHECK(contains(e, "no svhn files (train_32x32.mat, test_32x32.mat) found; looked in:"));
    CHECK(contains(e, dir.file("missing/svhn")));
    CHECK(contains(e, "$GRADHPO_DATA is set"));
  }
  {
    const DataEnv env(std::nullopt);
    const std::string e = error_of("cifar10");
    CHECK(contains(e, "$GRADHPO_DATA is not set"));
    CHECK(contains(e, "(nowhere)"));
  }
  {
    const DataEnv env(std::string(""));  // empty means unset
    CHECK(contains(error_of("mnist"), "$GRADHPO_DATA is not set"));
    CHECK(contains(error_of("mnist"), "(nowhere)"));
  }
}

TEST_CASE("load_dataset: fashion-mnist falls back to the Debian package folder") {
  const DataEnv env(std::nullopt);
  std::error_code ec;
  if (fs::is_directory("/usr/share/datasets/fashion-mnist", ec)) {
    CHECK(data::find_dataset_folder("fashion-mnist") == "/usr/share/datasets/fashion-mnist");
  } else {
    CHECK(contains(error_of("fashion-mnist"), "/usr/share/datasets/fashion-mnist"));
  }
  // Other datasets have no default folder.
  CHECK(contains(error_of("mnist"), "(nowhere)"));
}

TEST_CASE("load_dataset: unknown names list the known ones") {
  const std::string e = error_of("imagenet");
  CHECK(contains(e, "unknown dataset 'imagenet'"));
  CHECK(contains(e, "fashion-mnist, mnist, cifar10, svhn"));
  CHECK_THROWS_AS(data::load_dataset("cifar100"), gradhpo::Error);
  CHECK(data::dataset_names().size() == 4);
}
