#include "batches.h"

#include <algorithm>
#include <cstring>
#include <random>

#include "random.h"

namespace gradhpo::data {

BatchIterator::BatchIterator(const Dataset& data, std::int64_t batch_size, std::uint64_t seed, bool shuffle,
                             bool drop_last)
    : data_(data), batch_size_(batch_size), seed_(seed), shuffle_(shuffle), drop_last_(drop_last) {
  require(batch_size >= 1, "BatchIterator: batch_size must be at least 1, got " + std::to_string(batch_size));
  require(data.images.defined() && data.images.dtype() == DType::f32 && data.images.ndim() == 4 &&
              data.images.dim(0) == data.size(),
          "BatchIterator('" + data.name + "'): expected float32 images [N, C, H, W] with N = " +
              std::to_string(data.size()) + " labels");
  require(data.size() >= 1, "BatchIterator('" + data.name + "'): the dataset is empty");
  start_epoch(0);
}

std::int64_t BatchIterator::batches_per_epoch() const {
  const std::int64_t n = data_.size();
  return drop_last_ ? n / batch_size_ : (n + batch_size_ - 1) / batch_size_;
}

void BatchIterator::start_epoch(std::int64_t epoch) {
  require(epoch >= 0, "BatchIterator::start_epoch: epoch must be >= 0, got " + std::to_string(epoch));
  epoch_ = epoch;
  pos_ = 0;
  order_.resize(static_cast<std::size_t>(data_.size()));
  for (std::size_t i = 0; i < order_.size(); ++i) order_[i] = static_cast<std::int64_t>(i);
  if (shuffle_) {
    std::mt19937_64 rng(derive_seed(seed_, static_cast<std::uint64_t>(epoch)));
    shuffle_in_place(order_, rng);
  }
}

bool BatchIterator::next(Batch& out) {
  const std::int64_t n = data_.size();
  const std::int64_t b = std::min(batch_size_, n - pos_);
  if (b <= 0 || (drop_last_ && b < batch_size_)) return false;

  Shape shape = data_.images.shape();
  shape[0] = b;
  if (!(out.x.defined() && out.x.unique() && out.x.dtype() == DType::f32 && out.x.shape() == shape))
    out.x = Tensor::empty(shape, DType::f32);
  out.y.resize(static_cast<std::size_t>(b));
  out.indices.assign(order_.begin() + pos_, order_.begin() + pos_ + b);

  const std::int64_t row = data_.image_numel();
  const float* src = data_.images.data<float>();
  float* dst = out.x.data<float>();
  for (std::int64_t i = 0; i < b; ++i) {
    const std::int64_t r = out.indices[static_cast<std::size_t>(i)];
    std::memcpy(dst + i * row, src + r * row, static_cast<std::size_t>(row) * sizeof(float));
    out.y[static_cast<std::size_t>(i)] = data_.labels[static_cast<std::size_t>(r)];
  }
  pos_ += b;
  return true;
}

}  // namespace gradhpo::data
