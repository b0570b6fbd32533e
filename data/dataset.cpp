#include "dataset.h"

#include <cstring>

namespace gradhpo::data {

void Dataset::check() const {
  const std::string who = "dataset '" + name + "': ";
  require(images.defined(), who + "images are undefined");
  require(images.dtype() == DType::f32 && images.ndim() == 4,
          who + "expected float32 images [N, C, H, W], got " + dtype_name(images.dtype()) + " " +
              images.shape().str());
  require(images.dim(0) == size(), who + "images hold " + std::to_string(images.dim(0)) +
                                       " records but there are " + std::to_string(size()) +
                                       " labels");
  require(num_classes > 0, who + "num_classes must be positive, got " + std::to_string(num_classes));
  for (std::size_t i = 0; i < labels.size(); ++i)
    require(labels[i] >= 0 && labels[i] < num_classes,
            who + "label " + std::to_string(i) + " is " + std::to_string(labels[i]) +
                ", expected 0.." + std::to_string(num_classes - 1));
}

Dataset Dataset::subset(const std::vector<std::int64_t>& indices) const {
  require(images.defined() && images.dtype() == DType::f32 && images.ndim() == 4 &&
              images.dim(0) == size(),
          "Dataset::subset('" + name + "'): expected float32 images [N, C, H, W] with N = " +
              std::to_string(size()) + " labels, got " +
              (images.defined() ? std::string(dtype_name(images.dtype())) + " " + images.shape().str()
                                : std::string("undefined images")));
  const std::int64_t n = size();
  for (std::size_t i = 0; i < indices.size(); ++i)
    require(indices[i] >= 0 && indices[i] < n,
            "Dataset::subset('" + name + "'): index " + std::to_string(indices[i]) + " at position " +
                std::to_string(i) + " is outside [0, " + std::to_string(n) + ")");
  Dataset out;
  out.num_classes = num_classes;
  out.name = name;
  Shape shape = images.shape();
  shape[0] = static_cast<std::int64_t>(indices.size());
  out.images = Tensor::empty(shape, DType::f32);
  out.labels.resize(indices.size());
  const std::int64_t row = image_numel();
  const float* src = images.data<float>();
  float* dst = out.images.data<float>();
  for (std::size_t i = 0; i < indices.size(); ++i) {
    std::memcpy(dst + static_cast<std::int64_t>(i) * row, src + indices[i] * row,
                static_cast<std::size_t>(row) * sizeof(float));
    out.labels[i] = labels[static_cast<std::size_t>(indices[i])];
  }
  return out;
}

std::vector<std::int64_t> label_counts(const Dataset& d) {
  std::vector<std::int64_t> counts(static_cast<std::size_t>(d.num_classes > 0 ? d.num_classes : 0), 0);
  for (std::size_t i = 0; i < d.labels.size(); ++i) {
    const std::int32_t y = d.labels[i];
    require(y >= 0 && y < d.num_classes, "label_counts('" + d.name + "'): label " + std::to_string(i) +
                                             " is " + std::to_string(y) + ", expected 0.." +
                                             std::to_string(d.num_classes - 1));
    ++counts[static_cast<std::size_t>(y)];
  }
  return counts;
}

}  // namespace gradhpo::data
