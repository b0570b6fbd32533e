#include "optim_step.h"

#include <string>

#include "../work_count.h"
#include "cpu.h"
#include "optim_element.h"

namespace gradhpo::kernels {
namespace {

/// A [1] or [P] hyperparameter read at parameter i.
template <class T> struct PerParameter {
  explicit PerParameter(const Tensor& t) : p(t.data<T>()), stride(t.numel() == 1 ? 0 : 1) {}
  T operator[](std::int64_t i) const { return p[i * stride]; }
  const T* p;
  std::int64_t stride;
};

bool fits(const Tensor& h, const Tensor& w) {
  return h.defined() && h.dtype() == w.dtype() && h.device() == Device::cpu && (h.numel() == 1 || h.numel() == w.numel());
}

}  // namespace

bool sgd_step_applies(const Tensor& w, const Tensor& lr, const Tensor& momentum, const Tensor& weight_decay) {
  return w.device() == Device::cpu && (w.dtype() == DType::f32 || w.dtype() == DType::f64) && fits(lr, w) &&
         fits(momentum, w) && fits(weight_decay, w);
}

void sgd_step_into(const Tensor& w, const Tensor& v, const Tensor& g, const Tensor& lr, const Tensor& momentum,
                   const Tensor& weight_decay, Tensor& w_out, Tensor& v_out) {
  GRADHPO_CHECK(sgd_step_applies(w, lr, momentum, weight_decay) && v.numel() == w.numel() && g.numel() == w.numel() &&
                    v.dtype() == w.dtype() && g.dtype() == w.dtype() && v.device() == Device::cpu && g.device() == Device::cpu,
                "sgd_step_into: w, v, g of one numel and dtype on the CPU, hyperparameters of numel 1 or " +
                    std::to_string(w.numel()) + ", got " + w.shape().str() + ", " + v.shape().str() + ", " + g.shape().str());
  const std::int64_t n = w.numel();
  count_elementwise(6 * n);  // the six ops the formula records: as many as the tape would count
  w_out = Tensor::empty(w.shape(), w.dtype());
  v_out = Tensor::empty(v.shape(), v.dtype());
  dispatch_float(w.dtype(), "sgd_step_into", [&](auto zero) {
    using T = decltype(zero);
    const T *pw = w.data<T>(), *pv = v.data<T>(), *pg = g.data<T>();
    T *ow = w_out.data<T>(), *ov = v_out.data<T>();
    const PerParameter<T> a(lr), b(momentum), m(weight_decay);
    parallel_chunks(n, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t i = begin; i < end; ++i) {
        T wi = pw[i], vi = pv[i];
        optimizer::sgd(wi, vi, pg[i], a[i], b[i], m[i]);
        ow[i] = wi;
        ov[i] = vi;
      }
    });
  });
}

}  // namespace gradhpo::kernels
