#include "load.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <system_error>

#include "cifar10.h"
#include "file_bytes.h"
#include "idx.h"
#include "svhn.h"

namespace gradhpo::data {
namespace {

constexpr const char* kFashionDefault = "/usr/share/datasets/fashion-mnist";

std::string join(const std::string& dir, const std::string& file) {
  return (std::filesystem::path(dir) / file).string();
}

bool is_dir(const std::string& path) {
  std::error_code ec;
  return std::filesystem::is_directory(path, ec);
}

std::string canonical_name(const std::string& name) {
  std::string n = name;
  std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  const auto& names = dataset_names();
  if (std::find(names.begin(), names.end(), n) == names.end()) {
    std::string list;
    for (const auto& k : names) list += (list.empty() ? "" : ", ") + k;
    throw Error("load_dataset: unknown dataset '" + name + "', expected one of " + list);
  }
  return n;
}

// The files whose presence marks a folder as holding `name` (any one of them suffices; a
// missing partner then fails with a precise "file not found").
std::vector<std::string> marker_files(const std::string& name) {
  if (name == "mnist" || name == "fashion-mnist")
    return {"train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz"};  // ".gz" optional
  if (name == "cifar10")
    return {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
            "data_batch_5.bin", "test_batch.bin", "test_batch_first1000.bin"};
  return {"train_32x32.mat", "test_32x32.mat"};
}

bool holds(const std::string& dir, const std::string& name) {
  if (!is_dir(dir)) return false;
  for (const auto& f : marker_files(name))
    if (!find_data_file(join(dir, f)).empty()) return true;
  return false;
}

TrainTest load_idx_pair(const std::string& name, const std::string& dir) {
  TrainTest r;
  const auto path = [&](const char* f) { return join(dir, f); };
  r.train = load_idx(path("train-images-idx3-ubyte.gz"), path("train-labels-idx1-ubyte.gz"), 10,
                     name + "/train", 28, 28);
  r.test = load_idx(path("t10k-images-idx3-ubyte.gz"), path("t10k-labels-idx1-ubyte.gz"), 10,
                    name + "/test", 28, 28);
  for (const char* f : {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"})
    r.files.push_back(find_data_file(path(f)));
  r.note = name + ": " + std::to_string(r.train.size()) + " train and " + std::to_string(r.test.size()) +
           " test images of 28 x 28";
  return r;
}

TrainTest load_cifar10(const std::string& dir) {
  TrainTest r;
  std::vector<std::string> batches;
  std::string which;
  for (int k = 1; k <= 5; ++k) {
    const std::string f = find_data_file(join(dir, "data_batch_" + std::to_string(k) + ".bin"));
    if (f.empty()) continue;
    batches.push_back(f);
    which += (which.empty() ? "" : ", ") + std::to_string(k);
  }
  if (batches.empty()) throw Error("cifar10: no training batch data_batch_1..5.bin in " + dir);
  std::string test = find_data_file(join(dir, "test_batch.bin"));
  const bool prefix = test.empty();
  if (prefix) test = find_data_file(join(dir, "test_batch_first1000.bin"));
  if (test.empty())
    throw Error("cifar10: no test file in " + dir + " (looked for test_batch.bin and test_batch_first1000.bin)");
  r.train = read_cifar10(batches, "cifar10/train");
  r.test = read_cifar10({test}, prefix ? "cifar10/test_first" : "cifar10/test");
  if (prefix) r.test.name += std::to_string(r.test.size());
  r.files = batches;
  r.files.push_back(test);
  r.note = "cifar10: read " + std::to_string(batches.size()) + " of 5 training batches (data_batch_" + which +
           ", " + std::to_string(r.train.size()) + " images); test from " +
           std::filesystem::path(test).filename().string() + " (" + std::to_string(r.test.size()) + " images" +
           (prefix ? ", a prefix of the official test set, not the full test set)" : ")");
  return r;
}

TrainTest load_svhn(const std::string& dir) {
  TrainTest r;
  r.files = {join(dir, "train_32x32.mat"), join(dir, "test_32x32.mat")};
  r.train = read_svhn(r.files[0], "svhn/train");
  r.test = read_svhn(r.files[1], "svhn/test");
  r.note = "svhn: " + std::to_string(r.train.size()) + " train and " + std::to_string(r.test.size()) +
           " test images (cropped digits, format 2; extra_32x32.mat is not read)";
  return r;
}

}  // namespace

const std::vector<std::string>& dataset_names() {
  static const std::vector<std::string> names = {"fashion-mnist", "mnist", "cifar10", "svhn"};
  return names;
}

std::string find_dataset_folder(const std::string& name_in, const std::string& folder) {
  const std::string name = canonical_name(name_in);
  std::vector<std::string> looked;
  auto try_dir = [&](const std::string& dir) {
    looked.push_back(dir);
    return holds(dir, name);
  };
  if (!folder.empty()) {
    if (try_dir(folder)) return folder;
    if (try_dir(join(folder, name))) return join(folder, name);
  } else {
    const char* env = std::getenv("GRADHPO_DATA");
    if (env != nullptr && *env != '\0') {
      const std::string root = env;
      if (try_dir(join(root, name))) return join(root, name);
      if (try_dir(root)) return root;
    }
    if (name == "fashion-mnist" && try_dir(kFashionDefault)) return kFashionDefault;
  }
  std::string where;
  for (const auto& d : looked) where += "\n  " + d;
  const char* env = std::getenv("GRADHPO_DATA");
  std::string how = folder.empty() ? std::string("\n$GRADHPO_DATA is ") +
                                         (env != nullptr && *env != '\0' ? "set" : "not set") +
                                         "; pass a folder or set GRADHPO_DATA to a folder holding the files "
                                         "or a '" + name + "/' subfolder"
                                   : std::string();
  std::string files;
  for (const auto& f : marker_files(name)) files += (files.empty() ? "" : ", ") + f;
  throw Error("load_dataset(\"" + name + "\"): no " + name + " files (" + files + ") found; looked in:" +
              (where.empty() ? std::string("\n  (nowhere)") : where) + how);
}

TrainTest load_dataset(const std::string& name_in, const std::string& folder) {
  const std::string name = canonical_name(name_in);
  const std::string dir = find_dataset_folder(name, folder);
  TrainTest r = name == "cifar10" ? load_cifar10(dir) : name == "svhn" ? load_svhn(dir) : load_idx_pair(name, dir);
  r.folder = dir;
  r.train.check();
  r.test.check();
  if (r.train.images.shape().inner(0) != r.test.images.shape().inner(0) ||
      r.train.channels() != r.test.channels() || r.train.height() != r.test.height())
    throw Error("load_dataset(\"" + name + "\"): train images are " + r.train.images.shape().str() +
                " but test images are " + r.test.images.shape().str());
  return r;
}

}  // namespace gradhpo::data
