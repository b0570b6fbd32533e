#include "layers.h"

#include "../engine/kernels/vector.h"
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

Conv2d Conv2d::create(ParamLayout& layout, const std::string& name, std::int64_t in, std::int64_t out,
                      std::int64_t kernel, int stride, int padding, bool with_bias) {
  require(in > 0 && out > 0 && kernel > 0 && stride > 0 && padding >= 0,
          "Conv2d '" + name + "': channels, kernel and stride must be positive and padding >= 0");
  Conv2d c;
  c.in_channels = in;
  c.out_channels = out;
  c.kernel = kernel;
  c.stride = stride;
  c.padding = padding;
  const std::int64_t k2 = kernel * kernel;
  c.weight = layout.add(name + ".weight", Shape{out, in, kernel, kernel}, ParamRole::weight, in * k2, out * k2);
  if (with_bias) c.bias = layout.add(name + ".bias", Shape{out}, ParamRole::bias, in * k2, out * k2);
  return c;
}

Var Conv2d::operator()(const Var& w, const Var& x) const {
  if (bias.present()) return conv2d(x, weight.view(w), bias.view(w), stride, padding);
  return conv2d(x, weight.view(w), stride, padding);
}

BatchNorm2d BatchNorm2d::create(ParamLayout& layout, const std::string& name, std::int64_t channels, double eps) {
  require(channels > 0, "BatchNorm2d '" + name + "': channels must be positive");
  BatchNorm2d b;
  b.channels = channels;
  b.eps = eps;
  b.gamma = layout.add(name + ".gamma", Shape{channels}, ParamRole::bn_gamma, channels, channels);
  b.beta = layout.add(name + ".beta", Shape{channels}, ParamRole::bn_beta, channels, channels);
  b.slot = layout.add_batch_norm(name, channels);
  return b;
}

Var BatchNorm2d::operator()(const Var& w, const Var& x, const Context& ctx) const { return apply(w, x, ctx, false); }

Var BatchNorm2d::with_relu(const Var& w, const Var& x, const Context& ctx) const { return apply(w, x, ctx, true); }

Var BatchNorm2d::apply(const Var& w, const Var& x, const Context& ctx, bool relu) const {
  const Var g = gamma.view(w), b = beta.view(w);
  if (!ctx.training) {
    require(ctx.running != nullptr, "batch norm: eval mode needs the running statistics (Context::eval(state))");
    require(slot < static_cast<int>(ctx.running->running_mean.size()),
            "batch norm: the ModelState has no running statistics for layer " + std::to_string(slot) +
                " (was it made for this model?)");
    const Tensor& rm = ctx.running->running_mean[static_cast<std::size_t>(slot)];
    const Tensor& rv = ctx.running->running_var[static_cast<std::size_t>(slot)];
    const Var y = batch_norm_eval(x, g, b, rm.dtype() == x.dtype() ? rm : rm.to(x.dtype()),
                                  rv.dtype() == x.dtype() ? rv : rv.to(x.dtype()), eps);
    return relu ? gradhpo::relu(y) : y;
  }
  const auto train = relu ? batch_norm_relu_train : batch_norm_train;
  if (!ctx.update) return train(x, g, b, eps, nullptr, nullptr);
  Tensor mean, var;
  const Var y = train(x, g, b, eps, &mean, &var);
  update_running_stats(*ctx.update, slot, mean, var);
  return y;
}

void update_running_stats(ModelState& state, int slot, const Tensor& batch_mean, const Tensor& batch_var_unbiased) {
  require(slot >= 0 && static_cast<std::size_t>(slot) < state.running_mean.size(),
          "batch norm: running-statistics slot " + std::to_string(slot) + " not in the ModelState (has " +
              std::to_string(state.running_mean.size()) + "); was it made for this model?");
  Tensor& rm = state.running_mean[static_cast<std::size_t>(slot)];
  Tensor& rv = state.running_var[static_cast<std::size_t>(slot)];
  require(rm.numel() == batch_mean.numel() && rv.numel() == batch_var_unbiased.numel(),
          "batch norm: running statistics of " + std::to_string(rm.numel()) + " channels for a batch of " +
              std::to_string(batch_mean.numel()));
  const double m = state.momentum;
  const Tensor bm = batch_mean.to(rm.dtype()), bv = batch_var_unbiased.to(rv.dtype());
  // r ← (1 − m) r + m b per channel, in double: on the statistics' device (kernels::lerp).
  kernels::lerp(rm, bm, m);
  kernels::lerp(rv, bv, m);
}

}  // namespace gradhpo::nn
