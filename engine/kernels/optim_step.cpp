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

bool adam_step_applies(const Tensor& w, const AdamStepHyper& h) {
  return w.device() == Device::cpu && (w.dtype() == DType::f32 || w.dtype() == DType::f64) && fits(h.lr, w) &&
         fits(h.beta1, w) && fits(h.beta2, w) && fits(h.eps, w) && fits(h.weight_decay, w);
}

void adam_step_into(const Tensor& w, const Tensor& m, const Tensor& v, const Tensor& g, const AdamStepHyper& h,
                    std::int64_t step, Tensor& w_out, Tensor& m_out, Tensor& v_out) {
  GRADHPO_CHECK(adam_step_applies(w, h) && step >= 1, "adam_step_into: hyperparameters of w's dtype with numel 1 or " +
                                                          std::to_string(w.numel()) + ", and a step number >= 1");
  for (const Tensor* x : {&m, &v, &g})
    GRADHPO_CHECK(x->numel() == w.numel() && x->dtype() == w.dtype() && x->device() == Device::cpu,
                  "adam_step_into: m, v and g must be like w " + w.shape().str() + ", got " + x->shape().str());
  const std::int64_t n = w.numel();
  count_elementwise(20 * n);  // about the ops the formula records
  w_out = Tensor::empty(w.shape(), w.dtype());
  m_out = Tensor::empty(m.shape(), m.dtype());
  v_out = Tensor::empty(v.shape(), v.dtype());
  dispatch_float(w.dtype(), "adam_step_into", [&](auto zero) {
    using T = decltype(zero);
    const T *pw = w.data<T>(), *pm = m.data<T>(), *pv = v.data<T>(), *pg = g.data<T>();
    T *ow = w_out.data<T>(), *om = m_out.data<T>(), *ov = v_out.data<T>();
    const PerParameter<T> lr(h.lr), b1(h.beta1), b2(h.beta2), eps(h.eps), wd(h.weight_decay);
    // The bias corrections once when β₁ and β₂ are one value each (the same ops as per element).
    const bool shared = b1.stride == 0 && b2.stride == 0;
    const auto shared_c = optimizer::adam_corrections(b1[0], b2[0], step);
    parallel_chunks(n, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t i = begin; i < end; ++i) {
        T wi = pw[i], mi = pm[i], vi = pv[i];
        const auto c = shared ? shared_c : optimizer::adam_corrections(b1[i], b2[i], step);
        optimizer::adam(wi, mi, vi, pg[i], lr[i], b1[i], b2[i], eps[i], wd[i], h.decoupled, c, h.eps_inside_sqrt);
        ow[i] = wi;
        om[i] = mi;
        ov[i] = vi;
      }
    });
  });
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
