// Functional layers: each registers its tensors in a ParamLayout when the model is built, and
// applies itself to (w, x) as a pure function written with engine primitives — so every layer
// works in plain, reverse, forward and forward-over-reverse mode with no extra code.
//
// Shapes follow PyTorch: Linear weight [out, in], Conv2d weight [out, in, kh, kw], images NCHW.
#pragma once

#include <cstdint>
#include <string>

#include "../engine/tape.h"
#include "layout.h"

namespace gradhpo::nn {

enum class Activation : std::uint8_t { relu, tanh };
/// "relu" or "tanh"; throws Error otherwise.
Activation parse_activation(const std::string& name);
const char* activation_name(Activation a);

/// relu(x) or tanh(x).
Var activate(const Var& x, Activation a);
/// [N, d1, d2, ...] -> [N, d1·d2·...] (a view).
Var flatten(const Var& x);
/// y = x Wᵀ + b for x [B, in], weight [out, in], bias [out] (bias may be an invalid Var: none).
Var linear(const Var& x, const Var& weight, const Var& bias);

/// Fully connected layer (PyTorch nn.Linear).
struct Linear {
  std::int64_t in_features = 0, out_features = 0;
  ParamRef weight, bias;

  /// Registers "<name>.weight" [out, in] and, with `with_bias`, "<name>.bias" [out].
  static Linear create(ParamLayout& layout, const std::string& name, std::int64_t in, std::int64_t out,
                       bool with_bias = true);
  /// x [B, in] -> [B, out].
  Var operator()(const Var& w, const Var& x) const;
};

/// 2-D convolution with an optional per-channel bias (PyTorch nn.Conv2d, square kernel).
struct Conv2d {
  std::int64_t in_channels = 0, out_channels = 0, kernel = 0;
  int stride = 1, padding = 0;
  ParamRef weight, bias;

  /// Registers "<name>.weight" [out, in, k, k] (fan_in = in·k², fan_out = out·k²) and, with
  /// `with_bias`, "<name>.bias" [out].
  static Conv2d create(ParamLayout& layout, const std::string& name, std::int64_t in, std::int64_t out,
                       std::int64_t kernel, int stride = 1, int padding = 0, bool with_bias = true);
  /// x [N, in, H, W] -> [N, out, out_size(H), out_size(W)].
  Var operator()(const Var& w, const Var& x) const;
  std::int64_t out_size(std::int64_t in) const { return (in + 2 * padding - kernel) / stride + 1; }
};

/// Batch normalization over (N, H, W) per channel (PyTorch nn.BatchNorm2d, affine, momentum
/// 0.1). Training mode normalizes with the batch statistics and, when the context carries a
/// ModelState to update, moves its running statistics; eval mode uses the running statistics.
/// On a tape with a shard sum (Tape::shard_sum: data-parallel training with synchronized batch
/// norm), training mode's statistics — and the running statistics it moves — are the whole
/// batch's over every shard.
struct BatchNorm2d {
  std::int64_t channels = 0;
  double eps = 1e-5;
  ParamRef gamma, beta;
  int slot = -1;  ///< index of its running statistics in ModelState

  /// Registers "<name>.gamma" and "<name>.beta" [C] and a running-statistics slot.
  static BatchNorm2d create(ParamLayout& layout, const std::string& name, std::int64_t channels, double eps = 1e-5);
  /// x [N, C, H, W] -> same shape.
  Var operator()(const Var& w, const Var& x, const Context& ctx) const;
  /// relu(this(x)): the same values and derivatives; in training mode one primitive
  /// (batch_norm_relu_train), which spares a pass over the activations each way.
  Var with_relu(const Var& w, const Var& x, const Context& ctx) const;

 private:
  Var apply(const Var& w, const Var& x, const Context& ctx, bool relu) const;
};

/// PyTorch's running-statistics update with momentum m = state.momentum:
///   running_mean = (1 − m) running_mean + m batch_mean,
///   running_var  = (1 − m) running_var  + m batch_var   (batch_var UNBIASED, σ²·n/(n−1)).
void update_running_stats(ModelState& state, int slot, const Tensor& batch_mean, const Tensor& batch_var_unbiased);

}  // namespace gradhpo::nn
