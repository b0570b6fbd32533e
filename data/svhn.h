// Reader for SVHN cropped digits, format 2 (http://ufldl.stanford.edu/housenumbers/), through
// libmatio: `train_32x32.mat` / `test_32x32.mat` hold X, uint8 32 x 32 x 3 x N in MATLAB's
// column-major order (X(row, col, channel, image)), and y, double N x 1 with labels 1..10 where
// 10 stands for the digit 0.
#pragma once

#include <string>

#include "dataset.h"

namespace gradhpo::data {

/// The images of an SVHN .mat file as float32 [N, 3, 32, 32] in [0, 1], labels 0..9 (10 -> 0).
/// Throws Error naming the file if it is missing or not a readable MAT file, if X or y is
/// missing or has the wrong class, rank or dimensions, if the counts differ, or if a label is not
/// an integer in 1..10.
Dataset read_svhn(const std::string& path, const std::string& name);

}  // namespace gradhpo::data
