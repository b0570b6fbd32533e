// The device seam: what the engine asks of a backend that keeps tensors somewhere other than
// host memory (today: cuda/, when gradhpo::cuda is linked).
//
// The engine itself never includes a CUDA header. A backend fills one DeviceBackend (a table of
// free functions, like ggml's backend vtable) and registers it for its Device; the engine then
//   - allocates that device's storage through `allocate` (engine/storage.cpp caches the blocks,
//     exactly as it does host blocks, so a repeated step makes no device allocation), and
//   - at each kernel or op boundary asks `offload(op, tensors...)`: null when every tensor is on
//     the CPU (the CPU kernel runs), else the backend whose function it calls instead. That is
//     one switch per op, never per element (STYLE.md 7 and 12).
// Every entry has the contract of the CPU function of the same name (engine/kernels/math.h and
// the op files named below), so the CPU is the reference each backend is tested against.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>

#include "dual.h"
#include "kernels/element.h"
#include "kernels/conv.h"  // ConvGeometry
#include "kernels/vector.h"  // SgdUpdate, AdamUpdate
#include "tensor.h"

namespace gradhpo {

/// Pooling windows over planes of H×W: kernel×kernel taken every `stride` pixels, Ho×Wo out.
struct PoolWindow {
  std::int64_t H, W, kernel, stride, Ho, Wo;
};

struct DeviceBackend {
  const char* name;

  // ---- memory ---------------------------------------------------------------------------------
  /// A raw block of `bytes` on the device; throws gradhpo::Error on failure.
  void* (*allocate)(std::size_t bytes);
  void (*deallocate)(void* block);
  /// Copies `bytes` bytes; each side is on the device or in host memory. Returns once dst holds
  /// the data when dst is host memory (so the host may read it at once).
  void (*copy)(void* dst, bool dst_on_device, const void* src, bool src_on_device, std::size_t bytes);
  void (*fill)(Tensor& t, double value);

  // ---- value kernels: engine/kernels/math.h -----------------------------------------------------
  Tensor (*binary)(kernels::BinaryOp op, const Tensor& a, const Tensor& b);
  void (*axpy)(Tensor& acc, const Tensor& x, double alpha);
  Tensor (*affine)(const Tensor& x, double a, double b);
  Tensor (*unary)(kernels::UnaryOp op, const Tensor& x);
  Tensor (*unary_derivative)(kernels::UnaryOp op, const Tensor& x, const Tensor& y, int order);
  Tensor (*reduce_middle)(const Tensor& x, std::int64_t A, std::int64_t B, std::int64_t C, double scale);
  Tensor (*expand_middle)(const Tensor& x, std::int64_t A, std::int64_t B, std::int64_t C, double scale);
  /// C (+)= op(A) op(B), A and B viewed as 2-D row-major matrices of the given stored shapes.
  void (*gemm)(const Tensor& A, const Shape& a_shape, bool trans_a, const Tensor& B, const Shape& b_shape,
               bool trans_b, Tensor& C, bool accumulate);

  // ---- engine/ops/softmax.cpp -----------------------------------------------------------------------
  /// y = x − logsumexp(x) per row of x [B, C].
  Tensor (*log_softmax)(const Tensor& x);
  /// ẋ_k − rowsum(p ⊙ ẋ_k) for each direction of xt [K, B·C]; y is the output [B, C].
  Tensor (*log_softmax_tangent)(const Tensor& y, const Tensor& xt);
  /// The adjoint and its tangent, see log_softmax_backward in softmax.cpp. gt, yt may be
  /// undefined (zero); xb_tangent is written when defined ([K, B·C]).
  void (*log_softmax_backward)(const Tensor& y, const Tensor& g, const Tensor& gt, const Tensor& yt, Tensor& xb,
                               Tensor& xb_tangent);
  /// out[r] = x[r·C + labels[r mod B]], r < rows; and its adjoint (zeros elsewhere).
  Tensor (*gather)(const Tensor& x, const Tensor& labels, std::int64_t rows, std::int64_t C);
  Tensor (*scatter)(const Tensor& g, const Tensor& labels, std::int64_t rows, std::int64_t C);

  // ---- engine/ops/channel.cpp: the Dual functions (affine_impl, dual::channel_*) ------------------
  Dual (*channel_affine)(const Dual& x, const Dual* scale, const Dual* shift, bool with_value);
  Dual (*channel_sum)(const Dual& x);
  Dual (*channel_dot)(const Dual& a, const Dual& b);
  Dual (*channel_broadcast)(const Dual& v, const Shape& shape);

  // ---- engine/ops/conv.cpp: forward, backward_input, backward_weight ------------------------------
  Dual (*conv2d)(const Dual& x, const Dual& w, const kernels::ConvGeometry& g, bool with_value);
  Dual (*conv2d_backward_input)(const Dual& gy, const Dual& w, const kernels::ConvGeometry& g, const Shape& x_shape);
  Dual (*conv2d_backward_weight)(const Dual& gy, const Dual& x, const kernels::ConvGeometry& g, const Shape& w_shape);

  // ---- engine/ops/pool.cpp: the plane kernels, `planes` planes each ---------------------------------
  /// y and the argmax (int32, flat position in the input plane; ties to the first maximum).
  void (*max_pool)(const PoolWindow& p, std::int64_t planes, const Tensor& x, Tensor& y, Tensor& arg);
  /// out = x at the argmax of plane p mod arg_planes; and its adjoint (zeros elsewhere, added).
  void (*pool_gather)(const PoolWindow& p, std::int64_t planes, std::int64_t arg_planes, const Tensor& x,
                      const Tensor& arg, Tensor& out);
  void (*pool_scatter)(const PoolWindow& p, std::int64_t planes, std::int64_t arg_planes, const Tensor& gy,
                       const Tensor& arg, Tensor& out);
  void (*avg_pool)(const PoolWindow& p, std::int64_t planes, const Tensor& x, Tensor& y);
  void (*avg_pool_adjoint)(const PoolWindow& p, std::int64_t planes, const Tensor& gy, Tensor& xb);

  // ---- engine/ops/batchnorm.cpp: the three standardize kernels (x viewed as [N, C, R]) -----------
  void (*standardize)(const Tensor& x, double eps, Tensor& xh, Tensor& s, Tensor& mean, Tensor& var);
  /// out [K, numel] from the directions xt [K, numel].
  void (*standardize_tangent)(const Tensor& xh, const Tensor& s, const Tensor& xt, Tensor& out);
  /// gt, xt, xht may be undefined (zero); xbt is written when defined.
  void (*standardize_backward)(const Tensor& xh, const Tensor& s, const Tensor& g, const Tensor& gt, const Tensor& xt,
                               const Tensor& xht, Tensor& xb, Tensor& xbt);

  // ---- engine/kernels/vector.h: whole-vector kernels of nn's training loop and of hpo/ ----------
  /// Accumulated in double, in an order fixed by the numel alone (deterministic).
  double (*dot)(const Tensor& x, const Tensor& y);
  std::int64_t (*first_non_finite)(const Tensor& x);
  double (*max_abs)(const Tensor& x);
  void (*clamp)(Tensor& x, double lo, double hi);
  void (*lerp)(Tensor& acc, const Tensor& x, double m);
  /// decay_mask may be undefined (no mask).
  void (*sgd_update)(Tensor& w, Tensor& v, const Tensor& g, const Tensor& decay_mask, const kernels::SgdUpdate& h);
  void (*adam_update)(Tensor& w, Tensor& m, Tensor& v, const Tensor& g, const Tensor& decay_mask,
                      const kernels::AdamUpdate& h);
};

/// Installs the backend of device `d` (called once by the backend library, at load time).
void register_device_backend(Device d, const DeviceBackend* backend);
/// The backend of `d`; throws naming `op` when none is registered (the build or link has no
/// backend for that device).
const DeviceBackend& device_backend(Device d, const char* op);

namespace detail {
const DeviceBackend* offload_slow(const char* op, std::initializer_list<const Tensor*> tensors);
}

/// Null when every defined tensor is on the CPU; otherwise the backend of their one device.
/// Throws naming `op` when the tensors are on different devices.
template <class... Ts> const DeviceBackend* offload(const char* op, const Tensor& first, const Ts&... rest) {
  if (first.device() == Device::cpu && ((rest.device() == Device::cpu) && ...)) return nullptr;
  return detail::offload_slow(op, {&first, &rest...});
}

}  // namespace gradhpo
