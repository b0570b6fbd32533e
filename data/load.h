// One entry point for the standard datasets: load_dataset(name, folder) -> train and test.
//
// Where the files are looked for, in order:
//   1. `folder`, when not empty: the folder itself, then its subfolder named after the dataset;
//   2. otherwise $GRADHPO_DATA: its subfolder named after the dataset (mnist/, fashion-mnist/,
//      cifar10/, svhn/), then the folder itself;
//   3. otherwise, for fashion-mnist only, Debian's /usr/share/datasets/fashion-mnist.
// A miss throws an Error that lists every place it looked.
#pragma once

#include <string>
#include <vector>

#include "dataset.h"

namespace gradhpo::data {

struct TrainTest {
  Dataset train;
  Dataset test;
  std::string folder;               ///< where the files were found
  std::vector<std::string> files;   ///< the files read, train first
  std::string note;                 ///< what was read, e.g. "4 of 5 training batches ..."
};

/// The dataset names load_dataset accepts: "fashion-mnist", "mnist", "cifar10", "svhn".
const std::vector<std::string>& dataset_names();

/// Loads the train and test split of `name` (see the search order above). Images are float32
/// [N, C, H, W] in [0, 1]: 1 x 28 x 28 for (fashion-)mnist, 3 x 32 x 32 for cifar10 and svhn.
///   - mnist, fashion-mnist: {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]
///   - cifar10: train = data_batch_1..5.bin, whichever exist (the note says how many);
///              test = test_batch.bin, or test_batch_first1000.bin if that is what exists
///   - svhn: train_32x32.mat, test_32x32.mat
TrainTest load_dataset(const std::string& name, const std::string& folder = "");

/// The folder load_dataset would read `name` from, or throws the Error it would throw.
std::string find_dataset_folder(const std::string& name, const std::string& folder = "");

}  // namespace gradhpo::data
