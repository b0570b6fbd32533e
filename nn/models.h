// Models: a parameter layout plus a pure forward function logits = model.forward(w, x, ctx).
//
//   Mlp         flatten -> [Linear -> activation]* -> Linear
//   LeNet5      LeCun et al. 1998, with ReLU and max pooling by default:
//               conv 6@5×5 (pad 2 for inputs under 32×32) -> pool 2 -> conv 16@5×5 -> pool 2
//               -> 120 -> 84 -> classes
//   WideResNet  WRN-d-k (Zagoruyko & Komodakis 2016, table 1), pre-activation basic blocks
//
// A model holds no weights: w is a flat vector laid out by model.layout(), and batch-norm
// running statistics are a ModelState (see layout.h). The same model object serves any number
// of weight vectors and tapes, from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "layers.h"
#include "layout.h"

namespace gradhpo::nn {

class Model {
 public:
  virtual ~Model() = default;

  const std::string& name() const { return name_; }
  const ParamLayout& layout() const { return layout_; }
  std::int64_t num_params() const { return layout_.numel(); }
  /// One example's shape [C, H, W].
  const Shape& input_shape() const { return input_shape_; }
  std::int64_t num_classes() const { return num_classes_; }

  /// Logits [B, classes] for a batch x [B, C, H, W] (same dtype as w), at weights w [numel].
  virtual Var forward(const Var& w, const Var& x, const Context& ctx) const = 0;
  /// The batch as data: it enters w's tape as a constant (no adjoint, no tangent).
  Var forward(const Var& w, const Tensor& x, const Context& ctx) const;

  /// Fresh weights for `seed` (layout().init).
  Tensor init(std::uint64_t seed, InitScheme scheme = InitScheme::pytorch, DType dtype = DType::f32) const {
    return layout_.init(seed, scheme, dtype);
  }
  /// Fresh batch-norm running statistics (empty for a model without batch norm).
  ModelState init_state(DType dtype = DType::f32) const { return ModelState::for_layout(layout_, dtype); }
  /// One line, e.g. "lenet5 (1x28x28 -> 10, 61706 parameters)".
  std::string describe() const;

 protected:
  Model(std::string name, const Shape& input_shape, std::int64_t num_classes);
  /// Throws Error unless x is [B, C, H, W] matching input_shape() and w is [numel()] of x's dtype.
  void check_inputs(const Var& w, const Var& x) const;

  ParamLayout layout_;

 private:
  std::string name_;
  Shape input_shape_;
  std::int64_t num_classes_;
};

struct MlpOptions {
  std::vector<std::int64_t> hidden = {256, 128};  ///< widths of the hidden layers
  Activation activation = Activation::relu;
};

class Mlp final : public Model {
 public:
  /// Tensors "fc1", "fc2", ..., the last one the output layer.
  Mlp(const Shape& input_shape, std::int64_t num_classes, const MlpOptions& options = {});
  Var forward(const Var& w, const Var& x, const Context& ctx) const override;
  using Model::forward;

 private:
  std::vector<Linear> layers_;
  Activation activation_;
};

struct LeNet5Options {
  Activation activation = Activation::relu;
  bool max_pool = true;     ///< max pooling (modern); false: average pooling (the 1998 subsampling)
  int first_padding = -1;   ///< -1: 2 for inputs under 32×32 (MNIST), 0 from 32×32 up (CIFAR)
};

class LeNet5 final : public Model {
 public:
  /// Tensors conv1, conv2, fc1 (120), fc2 (84), fc3 (classes). The image must leave at least
  /// 1×1 after the second pooling.
  LeNet5(const Shape& input_shape, std::int64_t num_classes, const LeNet5Options& options = {});
  Var forward(const Var& w, const Var& x, const Context& ctx) const override;
  using Model::forward;

 private:
  Conv2d conv1_, conv2_;
  Linear fc1_, fc2_, fc3_;
  LeNet5Options options_;
};

struct WideResNetOptions {
  int depth = 16;           ///< 6n + 4: n blocks per group (16 -> 2)
  int widen = 1;            ///< k: group widths 16k, 32k, 64k
  int base_width = 16;      ///< 16 in the paper; smaller for tests (widths base, base·k, 2base·k, 4base·k)
  double bn_eps = 1e-5;
};

class WideResNet final : public Model {
 public:
  /// conv 3×3 (base) -> 3 groups of n pre-activation basic blocks (BN-ReLU-conv3×3-BN-ReLU-
  /// conv3×3, a 1×1 conv shortcut on the pre-activated input where the shape changes; strides
  /// 1, 2, 2) -> BN-ReLU -> global average pool -> Linear. Convolutions have no bias, as in the
  /// reference implementation. Tensors: "conv1", "group<g>.block<b>.{bn1,conv1,bn2,conv2,
  /// shortcut}", "bn", "fc".
  WideResNet(const Shape& input_shape, std::int64_t num_classes, const WideResNetOptions& options = {});
  Var forward(const Var& w, const Var& x, const Context& ctx) const override;
  using Model::forward;

 private:
  struct Block {
    BatchNorm2d bn1, bn2;
    Conv2d conv1, conv2, shortcut;  // shortcut.weight absent when the shape is kept
  };
  Conv2d conv1_;
  std::vector<Block> blocks_;
  BatchNorm2d bn_;
  Linear fc_;
};

/// Options for make_model, one group per model family.
struct ModelOptions {
  MlpOptions mlp;
  LeNet5Options lenet5;
  WideResNetOptions wrn;
};

/// The names make_model accepts: "mlp", "lenet5", "wrn16" (WRN-16-k with k = options.wrn.widen).
const std::vector<std::string>& model_names();
/// A model by name for inputs [C, H, W] and `num_classes` classes; throws Error naming the
/// known models on an unknown name.
std::unique_ptr<Model> make_model(const std::string& name, const Shape& input_shape, std::int64_t num_classes,
                                  const ModelOptions& options = {});

}  // namespace gradhpo::nn
