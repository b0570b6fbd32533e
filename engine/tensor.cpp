#include "tensor.h"

#include <algorithm>
#include <cstring>
#include <sstream>

#include "backend.h"

namespace gradhpo {

const char* dtype_name(DType d) {
  switch (d) {
    case DType::f32: return "float32";
    case DType::f64: return "float64";
    case DType::i32: return "int32";
  }
  return "?";
}

std::size_t dtype_size(DType d) { return d == DType::f64 ? 8 : 4; }

namespace {
template <class Dims> void fill_shape(std::array<std::int64_t, Shape::kMaxDims>& d, int& ndim, const Dims& dims) {
  GRADHPO_CHECK(dims.size() <= static_cast<std::size_t>(Shape::kMaxDims),
                "Shape: at most 4 dimensions are supported, got " + std::to_string(dims.size()));
  std::size_t i = 0;
  for (const std::int64_t e : dims) {
    GRADHPO_CHECK(e >= 0, "Shape: negative extent " + std::to_string(e));
    d[i++] = e;
  }
  ndim = static_cast<int>(dims.size());
}
}  // namespace

Shape::Shape(std::initializer_list<std::int64_t> dims) { fill_shape(d_, ndim_, dims); }

Shape::Shape(const std::vector<std::int64_t>& dims) { fill_shape(d_, ndim_, dims); }

std::int64_t Shape::numel() const { return outer(ndim_); }

std::int64_t Shape::outer(int axis) const {
  std::int64_t n = 1;
  for (int i = 0; i < axis; ++i) n *= d_[static_cast<std::size_t>(i)];
  return n;
}

std::int64_t Shape::inner(int axis) const {
  std::int64_t n = 1;
  for (int i = axis + 1; i < ndim_; ++i) n *= d_[static_cast<std::size_t>(i)];
  return n;
}

bool Shape::operator==(const Shape& o) const {
  if (ndim_ != o.ndim_) return false;
  for (int i = 0; i < ndim_; ++i)
    if ((*this)[i] != o[i]) return false;
  return true;
}

std::string Shape::str() const {
  std::ostringstream s;
  s << '[';
  for (int i = 0; i < ndim_; ++i) s << (i ? ", " : "") << (*this)[i];
  s << ']';
  return s.str();
}

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  Tensor t;
  t.shape_ = shape;
  t.dtype_ = dtype;
  t.device_ = device;
  t.storage_ = Storage::allocate(static_cast<std::size_t>(shape.numel()) * dtype_size(dtype), device);
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) { return full(shape, 0.0, dtype, device); }

Tensor Tensor::full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  t.fill(value);
  return t;
}

Tensor Tensor::from(const std::vector<double>& values, const Shape& shape, DType dtype) {
  GRADHPO_CHECK(static_cast<std::int64_t>(values.size()) == shape.numel(),
          "Tensor::from: " + std::to_string(values.size()) + " values for shape " + shape.str() +
              " (" + std::to_string(shape.numel()) + " elements)");
  Tensor t = empty(shape, dtype);
  switch (dtype) {
    case DType::f32: std::copy(values.begin(), values.end(), t.data<float>()); break;
    case DType::f64: std::copy(values.begin(), values.end(), t.data<double>()); break;
    case DType::i32: std::copy(values.begin(), values.end(), t.data<std::int32_t>()); break;
  }
  return t;
}

Tensor Tensor::from_labels(const std::vector<std::int32_t>& labels) {
  Tensor t = empty(Shape{static_cast<std::int64_t>(labels.size())}, DType::i32);
  std::copy(labels.begin(), labels.end(), t.data<std::int32_t>());
  return t;
}

Tensor Tensor::reshape(const Shape& shape) const {
  GRADHPO_CHECK(defined(), "reshape: undefined tensor");
  GRADHPO_CHECK(shape.numel() == numel(), "reshape: cannot view " + shape_.str() + " (" +
                                        std::to_string(numel()) + " elements) as " + shape.str());
  Tensor t = *this;
  t.shape_ = shape;
  return t;
}

Tensor Tensor::flat_slice(std::int64_t start, std::int64_t length) const {
  GRADHPO_CHECK(start >= 0 && length >= 0 && start + length <= numel(),
          "flat_slice: range [" + std::to_string(start) + ", " + std::to_string(start + length) +
              ") outside a tensor of " + std::to_string(numel()) + " elements");
  Tensor t = *this;
  t.offset_ += start;
  t.shape_ = Shape{length};
  return t;
}

Tensor Tensor::rows(std::int64_t start, std::int64_t count) const {
  GRADHPO_CHECK(ndim() >= 1 && start >= 0 && count >= 0 && start + count <= dim(0),
          "rows: range [" + std::to_string(start) + ", " + std::to_string(start + count) +
              ") outside the first dimension of " + shape_.str());
  Tensor t = *this;
  const std::int64_t row = ndim() >= 1 ? shape_.inner(0) : 1;
  t.offset_ += start * row;
  t.shape_[0] = count;
  return t;
}

Tensor Tensor::clone() const {
  if (!defined()) return {};
  Tensor t = empty(shape_, dtype_, device_);
  t.copy_from(*this);
  return t;
}

Tensor Tensor::to(Device device) const {
  if (!defined() || device == device_) return *this;
  Tensor t = empty(shape_, dtype_, device);
  const Device remote = device == Device::cpu ? device_ : device;
  device_backend(remote, "Tensor::to").copy(t.raw(), device != Device::cpu, raw(), device_ != Device::cpu, nbytes());
  return t;
}

Tensor Tensor::to(DType dtype) const {
  if (dtype == dtype_) return *this;
  // A dtype conversion of a device tensor goes through the host: it is for setup (loading
  // data, casting parameters), never inside a step.
  if (device_ != Device::cpu) return to(Device::cpu).to(dtype).to(device_);
  Tensor t = empty(shape_, dtype);
  const std::int64_t n = numel();
  auto convert = [&](auto* dst) {
    using D = std::remove_pointer_t<decltype(dst)>;
    switch (dtype_) {
      case DType::f32: { const float* s = data<float>(); for (std::int64_t i = 0; i < n; ++i) dst[i] = static_cast<D>(s[i]); break; }
      case DType::f64: { const double* s = data<double>(); for (std::int64_t i = 0; i < n; ++i) dst[i] = static_cast<D>(s[i]); break; }
      case DType::i32: { const std::int32_t* s = data<std::int32_t>(); for (std::int64_t i = 0; i < n; ++i) dst[i] = static_cast<D>(s[i]); break; }
    }
  };
  switch (dtype) {
    case DType::f32: convert(t.data<float>()); break;
    case DType::f64: convert(t.data<double>()); break;
    case DType::i32: convert(t.data<std::int32_t>()); break;
  }
  return t;
}

double Tensor::at(std::int64_t flat) const {
  GRADHPO_CHECK(defined() && flat >= 0 && flat < numel(),
          "Tensor::at: index " + std::to_string(flat) + " outside " + shape_.str());
  if (device_ != Device::cpu) return flat_slice(flat, 1).to(Device::cpu).at(0);
  switch (dtype_) {
    case DType::f32: return data<float>()[flat];
    case DType::f64: return data<double>()[flat];
    case DType::i32: return data<std::int32_t>()[flat];
  }
  return 0;
}

double Tensor::item() const {
  GRADHPO_CHECK(defined() && numel() == 1,
          "Tensor::item: expected a one-element tensor, got shape " + shape_.str());
  return at(0);
}

std::vector<double> Tensor::to_vector() const {
  if (device_ != Device::cpu) return to(Device::cpu).to_vector();
  std::vector<double> v(static_cast<std::size_t>(numel()));
  for (std::int64_t i = 0; i < numel(); ++i) v[static_cast<std::size_t>(i)] = at(i);
  return v;
}

void Tensor::fill(double value) {
  if (const DeviceBackend* dev = offload("Tensor::fill", *this)) return dev->fill(*this, value);
  const std::int64_t n = numel();
  switch (dtype_) {
    case DType::f32: std::fill_n(data<float>(), n, static_cast<float>(value)); break;
    case DType::f64: std::fill_n(data<double>(), n, value); break;
    case DType::i32: std::fill_n(data<std::int32_t>(), n, static_cast<std::int32_t>(value)); break;
  }
}

void Tensor::copy_from(const Tensor& src) {
  GRADHPO_CHECK(src.numel() == numel() && src.dtype() == dtype(),
          "Tensor::copy_from: destination " + shape_.str() + " " + dtype_name(dtype_) +
              ", source " + src.shape().str() + " " + dtype_name(src.dtype()));
  if (device_ != Device::cpu || src.device_ != Device::cpu) {
    const Device remote = device_ != Device::cpu ? device_ : src.device_;
    device_backend(remote, "Tensor::copy_from")
        .copy(raw(), device_ != Device::cpu, src.raw(), src.device_ != Device::cpu, nbytes());
    return;
  }
  std::memcpy(raw(), src.raw(), nbytes());
}

}  // namespace gradhpo
