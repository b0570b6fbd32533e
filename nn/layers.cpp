#include "layers.h"

#include "../engine/ops.h"

namespace gradhpo::nn {

Activation parse_activation(const std::string& name) {
  if (name == "relu") return Activation::relu;
  if (name == "tanh") return Activation::tanh;
  throw Error("activation: unknown '" + name + "' (expected relu or tanh)");
}

const char* activation_name(Activation a) { return a == Activation::relu ? "relu" : "tanh"; }

Var activate(const Var& x, Activation a) { return a == Activation::relu ? relu(x) : tanh(x); }

Var flatten(const Var& x) {
  require(x.shape().ndim() >= 1, "flatten: expected a batch [N, ...], got a scalar");
  const std::int64_t n = x.shape()[0];
  return reshape(x, Shape{n, x.shape().inner(0)});
}

Var linear(const Var& x, const Var& weight, const Var& bias) {
  require(x.shape().ndim() == 2 && weight.shape().ndim() == 2 && x.shape()[1] == weight.shape()[1],
          "linear: input " + x.shape().str() + " does not match weight " + weight.shape().str() +
              " (expected [B, in] and [out, in])");
  const Var y = matmul(x, weight, false, true);
  return bias.valid() ? y + bias : y;
}

Linear Linear::create(ParamLayout& layout, const std::string& name, std::int64_t in, std::int64_t out,
                      bool with_bias) {
  Linear l;
  l.in_features = in;
  l.out_features = out;
  l.weight = layout.add(name + ".weight", Shape{out, in}, ParamRole::weight, in, out);
  if (with_bias) l.bias = layout.add(name + ".bias", Shape{out}, ParamRole::bias, in, out);
  return l;
}

Var Linear::operator()(const Var& w, const Var& x) const {
  return linear(x, weight.view(w), bias.present() ? bias.view(w) : Var());
}

void update_running_stats(ModelState& state, int slot, const Tensor& batch_mean, const Tensor& batch_var_biased,
                          std::int64_t n) {
  require(slot >= 0 && static_cast<std::size_t>(slot) < state.running_mean.size(),
          "batch norm: running-statistics slot " + std::to_string(slot) + " not in the ModelState (has " +
              std::to_string(state.running_mean.size()) + "); was it made for this model?");
  Tensor& rm = state.running_mean[static_cast<std::size_t>(slot)];
  Tensor& rv = state.running_var[static_cast<std::size_t>(slot)];
  require(rm.numel() == batch_mean.numel() && rv.numel() == batch_var_biased.numel(),
          "batch norm: running statistics of " + std::to_string(rm.numel()) + " channels for a batch of " +
              std::to_string(batch_mean.numel()));
  const double m = state.momentum;
  const double unbias = n > 1 ? static_cast<double>(n) / static_cast<double>(n - 1) : 1.0;
  const Tensor bm = batch_mean.to(rm.dtype()), bv = batch_var_biased.to(rv.dtype());
  dispatch_float(rm.dtype(), "batch norm running statistics", [&](auto zero) {
    using T = decltype(zero);
    T* pm = rm.data<T>();
    T* pv = rv.data<T>();
    const T* qm = bm.data<T>();
    const T* qv = bv.data<T>();
    for (std::int64_t c = 0; c < rm.numel(); ++c) {
      pm[c] = static_cast<T>((1 - m) * pm[c] + m * qm[c]);
      pv[c] = static_cast<T>((1 - m) * pv[c] + m * unbias * qv[c]);
    }
  });
}

}  // namespace gradhpo::nn
