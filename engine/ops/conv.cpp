#include "conv.h"

#include "../backend.h"
#include "../kernels/conv.h"
#include "channel.h"

namespace gradhpo {
namespace {

using kernels::Banks;
using kernels::ConvGeometry;

std::string shapes(const Shape& x, const Shape& w) { return "x is " + x.str() + ", weight is " + w.str(); }

/// Checks the operands of conv2d and returns the geometry.
ConvGeometry geometry(const char* op, const Shape& x, const Shape& w, DType xd, DType wd, int stride, int padding) {
  GRADHPO_CHECK(x.ndim() == 4 && w.ndim() == 4,
          std::string(op) + ": expected x [N, C, H, W] and weight [O, C, kh, kw], got " + shapes(x, w));
  GRADHPO_CHECK(x[1] == w[1], std::string(op) + ": channel mismatch: " + shapes(x, w) + " (x has " + std::to_string(x[1]) +
                            " channels, the weight expects " + std::to_string(w[1]) + ")");
  GRADHPO_CHECK(xd == wd, std::string(op) + ": mixed dtypes: x is " + dtype_name(xd) + ", weight is " + dtype_name(wd));
  GRADHPO_CHECK(xd == DType::f32 || xd == DType::f64,
          std::string(op) + ": expected float32 or float64, got " + dtype_name(xd));
  GRADHPO_CHECK(stride >= 1 && padding >= 0, std::string(op) + ": stride must be ≥ 1 and padding ≥ 0, got stride " +
                                           std::to_string(stride) + ", padding " + std::to_string(padding) +
                                           " (" + shapes(x, w) + ")");
  try {
    return ConvGeometry::make(op, x[1], x[2], x[3], w[0], w[2], w[3], stride, padding);
  } catch (const Error& e) {
    throw Error(std::string(e.what()) + " (" + shapes(x, w) + ")");
  }
}

/// Bank views of a Dual whose tangent rows follow its value: bank 0 the value (when
/// `with_value`), then one bank per direction, `stride` elements apart.
template <class T> Banks<const T> banks(const Dual& d, bool with_value) {
  const T* v = d.value.data<T>();
  const std::int64_t n = d.value.numel();
  if (!d.has_tangent()) return Banks<const T>::one(v);
  const T* t = d.tangent.data<T>();
  if (!with_value) return Banks<const T>::uniform(t, n, d.K());
  return {v, t, n, d.K() + 1};
}
template <class T> Banks<T> out_banks(Tensor& value, Tensor& tangent, std::int64_t K) {
  const std::int64_t n = tangent.defined() ? tangent.numel() / K : value.numel();
  if (!value.defined()) return Banks<T>::uniform(tangent.data<T>(), n, K);
  if (K == 0) return Banks<T>::one(value.data<T>());
  return {value.data<T>(), tangent.data<T>(), n, K + 1};
}

// ---- y = F(x, W);  ẏ = F(ẋ, W) + F(x, Ẇ) ------------------------------------------------------
// With `with_value`, the value shares the filter-direction GEMM: banks [W; Ẇ_1..Ẇ_K].
Dual forward(const Dual& x, const Dual& w, const ConvGeometry& g, bool with_value) {
  if (const DeviceBackend* dev = offload("conv2d", x.value, w.value)) return dev->conv2d(x, w, g, with_value);
  const std::int64_t N = x.value.dim(0), K = std::max(x.K(), w.K());
  const Shape yshape{N, g.O, g.Ho, g.Wo};
  Dual y;
  if (with_value) y.value = Tensor::empty(yshape, x.value.dtype());
  if (K > 0) y.tangent = Tensor::empty(Shape{K, yshape.numel()}, x.value.dtype());
  dispatch_float(x.value.dtype(), "conv2d", [&](auto zero) {
    using T = decltype(zero);
    const T* xv = x.value.data<T>();
    bool written = false;
    // F(x, [W; Ẇ]) : value and the filter directions in one pass over the images.
    if (with_value || w.has_tangent()) {
      Tensor no_value;
      const Banks<T> ob = !w.has_tangent() ? Banks<T>::one(y.value.data<T>())
                                           : out_banks<T>(with_value ? y.value : no_value, y.tangent, K);
      kernels::conv2d_forward<T>(g, N, xv, banks<T>(w, with_value), ob, false);
      written = w.has_tangent();
    }
    // F(ẋ, W): the K·N tangent images against the filters.
    if (x.has_tangent()) {
      kernels::conv2d_forward<T>(g, K * N, x.tangent.data<T>(), Banks<const T>::one(w.value.data<T>()),
                                 Banks<T>::one(y.tangent.data<T>()), written);
      written = true;
    }
    if (K > 0 && !written) y.tangent = Tensor();
  });
  return y;
}

// ---- x̄ = Bx(ḡ, W);  x̄̇ = Bx(ġ, W) + Bx(ḡ, Ẇ) -----------------------------------------------------
Dual backward_input(const Dual& gy, const Dual& w, const ConvGeometry& g, const Shape& xshape) {
  if (const DeviceBackend* dev = offload("conv2d", gy.value, w.value)) return dev->conv2d_backward_input(gy, w, g, xshape);
  const std::int64_t N = xshape[0], K = std::max(gy.K(), w.K());
  Dual xb(Tensor::empty(xshape, gy.value.dtype()));
  if (K > 0) xb.tangent = Tensor::empty(Shape{K, xshape.numel()}, gy.value.dtype());
  dispatch_float(gy.value.dtype(), "conv2d", [&](auto zero) {
    using T = decltype(zero);
    // The value by itself, exactly as in plain mode (see backward_weight), then Bx(ḡ, Ẇ).
    kernels::conv2d_backward_input<T>(g, N, gy.value.data<T>(), Banks<const T>::one(w.value.data<T>()),
                                      Banks<T>::one(xb.value.data<T>()), false);
    if (w.has_tangent())
      kernels::conv2d_backward_input<T>(g, N, gy.value.data<T>(), banks<T>(w, false),
                                        Banks<T>::uniform(xb.tangent.data<T>(), xshape.numel(), K), false);
    if (gy.has_tangent())
      kernels::conv2d_backward_input<T>(g, K * N, gy.tangent.data<T>(), Banks<const T>::one(w.value.data<T>()),
                                        Banks<T>::one(xb.tangent.data<T>()), w.has_tangent());
  });
  return xb;
}

// ---- W̄ = Bw(ḡ, x);  W̄̇ = Bw(ġ, x) + Bw(ḡ, ẋ) -----------------------------------------------------
Dual backward_weight(const Dual& gy, const Dual& x, const ConvGeometry& g, const Shape& wshape) {
  if (const DeviceBackend* dev = offload("conv2d", gy.value, x.value))
    return dev->conv2d_backward_weight(gy, x, g, wshape);
  const std::int64_t N = x.value.dim(0), K = std::max(gy.K(), x.K());
  Dual wb(Tensor::empty(wshape, gy.value.dtype()));
  if (K > 0) wb.tangent = Tensor::empty(Shape{K, wshape.numel()}, gy.value.dtype());
  dispatch_float(gy.value.dtype(), "conv2d", [&](auto zero) {
    using T = decltype(zero);
    // The value by itself, with the very call plain mode makes: banking it with the directions
    // would change the product's shapes, thread split and blocking, hence its rounding, and a
    // forward-over-reverse pass must return the plain gradient's bits (exact reversal recomputes
    // g_t inside one). Then [ġ_1..ġ_K] against x, sharing one im2col of each image.
    kernels::conv2d_backward_weight<T>(g, N, Banks<const T>::one(gy.value.data<T>()), Banks<const T>::one(x.value.data<T>()),
                                       Banks<T>::one(wb.value.data<T>()), false);
    if (gy.has_tangent())
      kernels::conv2d_backward_weight<T>(g, N, banks<T>(gy, false), Banks<const T>::one(x.value.data<T>()),
                                         Banks<T>::uniform(wb.tangent.data<T>(), wshape.numel(), K), false);
    if (x.has_tangent())
      kernels::conv2d_backward_weight<T>(g, N, Banks<const T>::one(gy.value.data<T>()), banks<T>(x, false),
                                         Banks<T>::uniform(wb.tangent.data<T>(), wshape.numel(), K),
                                         gy.has_tangent());
  });
  return wb;
}

// ---- the primitive ------------------------------------------------------------------------------
// Node: inputs x, W; ConvPayload (stride, padding).

ConvGeometry node_geometry(const Tape& t, const Node& n) {
  const Tensor& x = t.input_value(n, 0);
  const Tensor& w = t.input_value(n, 1);
  const ConvPayload& c = n.payload_as<ConvPayload>();
  return ConvGeometry::make("conv2d", x.dim(1), x.dim(2), x.dim(3), w.dim(0), w.dim(2), w.dim(3), c.stride, c.padding);
}

Tensor conv_tangent(const Tape& t, const Node& n) {
  return forward(t.input(n, 0), t.input(n, 1), node_geometry(t, n), false).tangent;
}

void conv_backward(Tape& t, const Node& n, const Dual& gy) {
  const ConvGeometry g = node_geometry(t, n);
  if (t.needs_adjoint(n, 0)) t.accumulate(n, 0, backward_input(gy, t.input(n, 1), g, t.input_value(n, 0).shape()));
  if (t.needs_adjoint(n, 1)) t.accumulate(n, 1, backward_weight(gy, t.input(n, 0), g, t.input_value(n, 1).shape()));
}

const OpRules kConvRules = {"conv2d", conv_tangent, conv_backward, kReadsInputs};
GRADHPO_REGISTER_OPS(&kConvRules);

}  // namespace

namespace dual {

Dual conv2d(const Dual& x, const Dual& w, int stride, int padding) {
  const ConvGeometry g =
      geometry("conv2d", x.value.shape(), w.value.shape(), x.value.dtype(), w.value.dtype(), stride, padding);
  return forward(x, w, g, true);
}

Dual conv2d_backward_input(const Dual& gy, const Dual& w, const Shape& x_shape, int stride, int padding) {
  const ConvGeometry g = geometry("conv2d_backward_input", x_shape, w.value.shape(), gy.value.dtype(),
                                  w.value.dtype(), stride, padding);
  GRADHPO_CHECK(gy.value.numel() == x_shape[0] * g.out_image(),
          "conv2d_backward_input: output adjoint " + gy.value.shape().str() + " does not match the output of " +
              shapes(x_shape, w.value.shape()));
  return backward_input(gy, w, g, x_shape);
}

Dual conv2d_backward_weight(const Dual& gy, const Dual& x, const Shape& w_shape, int stride, int padding) {
  const ConvGeometry g = geometry("conv2d_backward_weight", x.value.shape(), w_shape, x.value.dtype(),
                                  gy.value.dtype(), stride, padding);
  GRADHPO_CHECK(gy.value.numel() == x.value.dim(0) * g.out_image(),
          "conv2d_backward_weight: output adjoint " + gy.value.shape().str() + " does not match the output of " +
              shapes(x.value.shape(), w_shape));
  return backward_weight(gy, x, g, w_shape);
}

}  // namespace dual

Var conv2d(const Var& x, const Var& weight, int stride, int padding) {
  Tape& t = x.tape();
  t.check(x, "conv2d");
  t.check(weight, "conv2d");
  const ConvGeometry g = geometry("conv2d", x.shape(), weight.shape(), x.dtype(), weight.dtype(), stride, padding);
  Tensor y = forward(Dual(x.value()), Dual(weight.value()), g, true).value;
  return t.record(&kConvRules, std::move(y), {x, weight}, ConvPayload{stride, padding});
}

Var conv2d(const Var& x, const Var& weight, const Var& bias, int stride, int padding) {
  const Var y = conv2d(x, weight, stride, padding);
  GRADHPO_CHECK(bias.shape().numel() == y.shape()[1] && bias.shape().ndim() == 1,
          "conv2d: bias of shape " + bias.shape().str() + " for " + std::to_string(y.shape()[1]) +
              " output channels (x is " + x.shape().str() + ", weight is " + weight.shape().str() + ")");
  return channel_bias(y, bias);
}

}  // namespace gradhpo
