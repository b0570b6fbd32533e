#include "softmax.h"

#include <cmath>

#include "../backend.h"
#include "../kernels/cpu.h"
#include "elementwise.h"
#include "reduce.h"

namespace gradhpo {
namespace {

void require_matrix(const char* op, const Shape& s) {
  GRADHPO_CHECK(s.ndim() == 2, std::string(op) + ": expected [batch, classes], got " + s.str());
}

// ---- log_softmax: y = x − logsumexp(x) per row ------------------------------------------------
//   tangent:  ẏ = ẋ − Σ_j p_j ẋ_j,   p = exp(y)
//   adjoint:  x̄ = ḡ − p Σ_j ḡ_j
//   and the adjoint's own tangent (forward-over-reverse): ġ − ṗ s − p ṡ with s = Σ ḡ,
//   ṡ = Σ ġ, ṗ = p ⊙ ẏ.

template <class T> void log_softmax_rows(const T* x, T* y, std::int64_t B, std::int64_t C) {
  for (std::int64_t i = 0; i < B; ++i) {
    const T* xi = x + i * C;
    T* yi = y + i * C;
    T m = xi[0];
    for (std::int64_t j = 1; j < C; ++j) m = std::max(m, xi[j]);
    T s = 0;
    for (std::int64_t j = 0; j < C; ++j) s += std::exp(xi[j] - m);
    const T lse = m + std::log(s);
    for (std::int64_t j = 0; j < C; ++j) yi[j] = xi[j] - lse;
  }
}

// out_k = ẋ_k − rowsum(p ⊙ ẋ_k) for each direction k.
template <class T> void log_softmax_tangent_rows(const T* y, const T* xt, T* out, std::int64_t K, std::int64_t B,
                                                 std::int64_t C) {
  for (std::int64_t k = 0; k < K; ++k)
    for (std::int64_t i = 0; i < B; ++i) {
      const T* yi = y + i * C;
      const T* ti = xt + (k * B + i) * C;
      T* oi = out + (k * B + i) * C;
      T s = 0;
      for (std::int64_t j = 0; j < C; ++j) s += std::exp(yi[j]) * ti[j];
      for (std::int64_t j = 0; j < C; ++j) oi[j] = ti[j] - s;
    }
}

Tensor log_softmax_tangent(const Tape& t, const Node& n) {
  const Tensor& xt = t.node_at(t.input_id(n, 0)).tangent;
  if (const DeviceBackend* dev = offload("log_softmax", n.value, xt)) return dev->log_softmax_tangent(n.value, xt);
  return kernels::log_softmax_tangent(n.value, xt);
}

void log_softmax_backward(Tape& t, const Node& n, const Dual& g) {
  if (!t.needs_adjoint(n, 0)) return;
  const Dual y = t.output(n);
  const std::int64_t B = n.value.dim(0), C = n.value.dim(1);
  const Device device = n.value.device();
  Dual xb(Tensor::empty(n.value.shape(), n.value.dtype(), device));
  const std::int64_t K = std::max(g.K(), y.K());
  if (K > 0) xb.tangent = Tensor::empty(Shape{K, B * C}, n.value.dtype(), device);
  if (const DeviceBackend* dev = offload("log_softmax", y.value, g.value, g.tangent, y.tangent)) {
    dev->log_softmax_backward(y.value, g.value, g.tangent, y.tangent, xb.value, xb.tangent);
    return t.accumulate(n, 0, std::move(xb));
  }
  kernels::log_softmax_backward(y.value, g.value, g.tangent, y.tangent, xb.value, xb.tangent);
  t.accumulate(n, 0, std::move(xb));
}

const OpRules kLogSoftmaxRules = {"log_softmax", log_softmax_tangent, log_softmax_backward, kReadsOutput};

// ---- pick: y_i = x[i, l_i];  ẏ_k,i = ẋ_k[i, l_i];  x̄[i, l_i] += ḡ_i ---------------------------
// Node: input x; PickPayload (the labels l, on x's device).

Tensor pick_tangent(const Tape& t, const Node& n) {
  const Tensor& xt = t.node_at(t.input_id(n, 0)).tangent;
  const std::int64_t K = xt.dim(0), B = n.value.numel(), C = t.input_value(n, 0).dim(1);
  return kernels::pick_gather(xt, n.payload_as<PickPayload>().labels, K * B, C).reshape(Shape{K, B});
}

void pick_backward(Tape& t, const Node& n, const Dual& g) {
  if (!t.needs_adjoint(n, 0)) return;
  const std::int64_t B = n.value.numel(), C = t.input_value(n, 0).dim(1);
  const Tensor& labels = n.payload_as<PickPayload>().labels;
  Dual xb(kernels::pick_scatter(g.value, labels, B, C));
  if (g.has_tangent()) xb.tangent = kernels::pick_scatter(g.tangent, labels, g.K() * B, C).reshape(Shape{g.K(), B * C});
  t.accumulate(n, 0, std::move(xb));
}

const OpRules kPickRules = {"pick", pick_tangent, pick_backward, 0};
GRADHPO_REGISTER_OPS(&kLogSoftmaxRules, &kPickRules);

}  // namespace

// ---- the CPU kernels (the device seam's reference, engine/backend.h) ----------------------------

namespace kernels {

Tensor log_softmax(const Tensor& x) {
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  dispatch_float(x.dtype(), "log_softmax", [&](auto zero) {
    using T = decltype(zero);
    log_softmax_rows(x.data<T>(), y.data<T>(), x.shape()[0], x.shape()[1]);
  });
  return y;
}

Tensor log_softmax_tangent(const Tensor& y, const Tensor& xt) {
  const std::int64_t K = xt.dim(0), B = y.dim(0), C = y.dim(1);
  Tensor out = Tensor::empty(Shape{K, B * C}, y.dtype());
  dispatch_float(y.dtype(), "log_softmax", [&](auto zero) {
    using T = decltype(zero);
    log_softmax_tangent_rows(y.data<T>(), xt.data<T>(), out.data<T>(), K, B, C);
  });
  return out;
}

void log_softmax_backward(const Tensor& y, const Tensor& g, const Tensor& gt, const Tensor& yt, Tensor& xb,
                          Tensor& xbt) {
  const std::int64_t B = y.dim(0), C = y.dim(1);
  const std::int64_t K = xbt.defined() ? xbt.dim(0) : 0;
  dispatch_float(y.dtype(), "log_softmax", [&](auto zero) {
    using T = decltype(zero);
    const T* py = y.data<T>();
    const T* pg = g.data<T>();
    T* px = xb.data<T>();
    for (std::int64_t i = 0; i < B; ++i) {
      T s = 0;
      for (std::int64_t j = 0; j < C; ++j) s += pg[i * C + j];
      for (std::int64_t j = 0; j < C; ++j) px[i * C + j] = pg[i * C + j] - std::exp(py[i * C + j]) * s;
      for (std::int64_t k = 0; k < K; ++k) {
        T* ot = xbt.data<T>() + (k * B + i) * C;
        const T* pgt = gt.defined() ? gt.data<T>() + (k * B + i) * C : nullptr;
        const T* pyt = yt.defined() ? yt.data<T>() + (k * B + i) * C : nullptr;
        T sdot = 0;
        if (pgt)
          for (std::int64_t j = 0; j < C; ++j) sdot += pgt[j];
        for (std::int64_t j = 0; j < C; ++j) {
          const T p = std::exp(py[i * C + j]);
          T v = -p * sdot;                 // − p ṡ
          if (pgt) v += pgt[j];            // + ġ
          if (pyt) v -= p * pyt[j] * s;    // − ṗ s
          ot[j] = v;
        }
      }
    }
  });
}

Tensor pick_gather(const Tensor& x, const Tensor& labels, std::int64_t rows, std::int64_t C) {
  if (const DeviceBackend* dev = offload("pick", x, labels)) return dev->gather(x, labels, rows, C);
  Tensor out = Tensor::empty(Shape{rows}, x.dtype());
  const std::int32_t* l = labels.data<std::int32_t>();
  const std::int64_t B = labels.numel();
  dispatch_float(x.dtype(), "pick", [&](auto zero) {
    using T = decltype(zero);
    for (std::int64_t r = 0; r < rows; ++r) out.data<T>()[r] = x.data<T>()[r * C + l[r % B]];
  });
  return out;
}

Tensor pick_scatter(const Tensor& g, const Tensor& labels, std::int64_t rows, std::int64_t C) {
  if (const DeviceBackend* dev = offload("pick", g, labels)) return dev->scatter(g, labels, rows, C);
  Tensor out = Tensor::zeros(Shape{rows * C}, g.dtype());
  const std::int32_t* l = labels.data<std::int32_t>();
  const std::int64_t B = labels.numel();
  dispatch_float(g.dtype(), "pick", [&](auto zero) {
    using T = decltype(zero);
    for (std::int64_t r = 0; r < rows; ++r) out.data<T>()[r * C + l[r % B]] = g.data<T>()[r];
  });
  return out;
}

}  // namespace kernels

Var log_softmax(const Var& logits) {
  Tape& t = logits.tape();
  t.check(logits, "log_softmax");
  require_matrix("log_softmax", logits.shape());
  if (const DeviceBackend* dev = offload("log_softmax", logits.value()))
    return t.record(&kLogSoftmaxRules, dev->log_softmax(logits.value()), {logits});
  return t.record(&kLogSoftmaxRules, kernels::log_softmax(logits.value()), {logits});
}

Var pick(const Var& x, const Tensor& labels) {
  Tape& t = x.tape();
  t.check(x, "pick");
  require_matrix("pick", x.shape());
  const std::int64_t B = x.shape()[0], C = x.shape()[1];
  GRADHPO_CHECK(labels.defined() && labels.dtype() == DType::i32,
          "pick: labels must be an int32 tensor, got " + std::string(labels.defined() ? dtype_name(labels.dtype()) : "none"));
  GRADHPO_CHECK(labels.numel() == B, "pick: " + std::to_string(labels.numel()) + " labels for a batch of " +
                                   std::to_string(B) + " rows (" + x.shape().str() + ")");
  // Labels are checked on the host (a copy of B integers when they live on a device) and used
  // on the logits' device (a copy when they do not live there).
  const Tensor host_labels = labels.to(Device::cpu);
  const std::int32_t* l = host_labels.data<std::int32_t>();
  for (std::int64_t i = 0; i < B; ++i)
    GRADHPO_CHECK(l[i] >= 0 && l[i] < C, "pick: label " + std::to_string(l[i]) + " at row " + std::to_string(i) +
                                       " is outside [0, " + std::to_string(C) + ")");
  const Tensor device_labels = labels.to(x.device());
  return t.record(&kPickRules, kernels::pick_gather(x.value(), device_labels, B, C), {x}, PickPayload{device_labels});
}

Var cross_entropy_per_example(const Var& logits, const Tensor& labels) {
  return affine(pick(log_softmax(logits), labels), -1.0, 0.0);
}

Var cross_entropy(const Var& logits, const Tensor& labels) { return mean(cross_entropy_per_example(logits, labels)); }

}  // namespace gradhpo
