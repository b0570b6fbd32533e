// Tensor: a dense, row-major (NCHW) array of up to 4 dimensions over shared storage.
//
// The engine's only value type. Kernels view a tensor's memory as Eigen::Map's; there are no
// per-element virtual calls. Copies are shallow (storage is shared); `clone()` copies the data.
// Storage comes from a caching pool (engine/storage.h), so a training step that repeats the
// same shapes does no heap allocation in steady state.
//
// A tensor lives on one Device. Host code reads a device tensor only through copies (`to`,
// `at`, `item`, `to_vector`); `data<T>()` is host memory only and throws on a device tensor, so
// a CPU kernel handed one fails loudly instead of reading device addresses. Device kernels take
// `raw()`.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "error.h"
#include "storage.h"

namespace gradhpo {

/// Element type. f32 and f64 carry values; i32 carries indices (labels, argmax positions).
enum class DType : std::uint8_t { f32, f64, i32 };

const char* dtype_name(DType d);
std::size_t dtype_size(DType d);

/// A shape of 0 to 4 extents. 0 dimensions is a scalar with one element.
class Shape {
 public:
  static constexpr int kMaxDims = 4;
  Shape() = default;
  Shape(std::initializer_list<std::int64_t> dims);
  explicit Shape(const std::vector<std::int64_t>& dims);

  int ndim() const { return ndim_; }
  std::int64_t operator[](int i) const { return d_[static_cast<std::size_t>(i)]; }
  std::int64_t& operator[](int i) { return d_[static_cast<std::size_t>(i)]; }
  std::int64_t numel() const;
  /// Product of the extents before / after axis `axis` (exclusive).
  std::int64_t outer(int axis) const;
  std::int64_t inner(int axis) const;
  std::vector<std::int64_t> dims() const { return {d_.begin(), d_.begin() + ndim_}; }
  bool operator==(const Shape& o) const;
  bool operator!=(const Shape& o) const { return !(*this == o); }
  std::string str() const;  // "[2, 3]"

 private:
  std::array<std::int64_t, kMaxDims> d_{};
  int ndim_ = 0;
};

class Tensor {
 public:
  /// An undefined tensor: no storage. In a Dual, an undefined tangent means "exactly zero".
  Tensor() = default;

  static Tensor empty(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu);
  static Tensor zeros(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu);
  static Tensor full(const Shape& shape, double value, DType dtype = DType::f32, Device device = Device::cpu);
  static Tensor scalar(double value, DType dtype = DType::f32) { return full(Shape{}, value, dtype); }
  /// Copies `values` (converted to dtype) into a new tensor; numel must match the shape.
  static Tensor from(const std::vector<double>& values, const Shape& shape, DType dtype = DType::f32);
  static Tensor from_labels(const std::vector<std::int32_t>& labels);

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  int ndim() const { return shape_.ndim(); }
  std::int64_t dim(int i) const { return shape_[i]; }
  std::int64_t numel() const { return shape_.numel(); }
  DType dtype() const { return dtype_; }
  Device device() const { return device_; }
  std::size_t nbytes() const { return static_cast<std::size_t>(numel()) * dtype_size(dtype_); }

  /// Typed pointer to the first element, in host memory. Throws if T does not match the dtype
  /// or the tensor is on a device.
  template <class T> T* data();
  template <class T> const T* data() const;
  void* raw() { return static_cast<char*>(storage_->data()) + offset_ * dtype_size(dtype_); }
  const void* raw() const {
    return static_cast<const char*>(storage_->data()) + offset_ * dtype_size(dtype_);
  }

  /// A view with another shape and the same storage (numel must agree).
  Tensor reshape(const Shape& shape) const;
  /// A view of elements [start, start + length) of the flattened tensor, as a 1-D tensor.
  Tensor flat_slice(std::int64_t start, std::int64_t length) const;
  /// A view of rows [start, start + count) along the first dimension.
  Tensor rows(std::int64_t start, std::int64_t count) const;
  Tensor clone() const;
  Tensor to(DType dtype) const;  // converting copy (or `*this` if the dtype already matches)
  /// A copy on `device` (or `*this` if it is there already): host <-> device transfers.
  Tensor to(Device device) const;
  /// True when no other tensor shares this storage (so it may be updated in place).
  bool unique() const { return storage_.use_count() == 1; }
  bool shares_storage_with(const Tensor& o) const { return storage_ == o.storage_; }

  double item() const;                  // the value of a one-element tensor
  double at(std::int64_t flat) const;   // element `flat` of the flattened tensor, as double
  std::vector<double> to_vector() const;

  void fill(double value);
  void copy_from(const Tensor& src);  // same numel and dtype; shapes may differ

 private:
  StorageRef storage_;
  std::int64_t offset_ = 0;  // in elements
  Shape shape_;
  DType dtype_ = DType::f32;
  Device device_ = Device::cpu;
};

template <class T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::f32; }
template <> constexpr DType dtype_of<double>() { return DType::f64; }
template <> constexpr DType dtype_of<std::int32_t>() { return DType::i32; }

template <class T> T* Tensor::data() {
  check_dtype_access(dtype_, dtype_of<T>(), dtype_name(dtype_), dtype_name(dtype_of<T>()));
  check_host_access(device_ == Device::cpu, device_name(device_));
  return static_cast<T*>(raw());
}
template <class T> const T* Tensor::data() const {
  check_dtype_access(dtype_, dtype_of<T>(), dtype_name(dtype_), dtype_name(dtype_of<T>()));
  check_host_access(device_ == Device::cpu, device_name(device_));
  return static_cast<const T*>(raw());
}

/// Calls `f(T{})` with T the C++ type of a floating dtype: the one place where an op's runtime
/// dtype turns into a template argument ("dispatch once per op, never per element").
template <class F> decltype(auto) dispatch_float(DType d, const char* op, F&& f) {
  switch (d) {
    case DType::f32: return f(float{});
    case DType::f64: return f(double{});
    default: throw Error(std::string(op) + ": expected a float32 or float64 tensor, got " + dtype_name(d));
  }
}

}  // namespace gradhpo
