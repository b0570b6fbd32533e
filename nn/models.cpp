#include "models.h"

#include "../engine/ops.h"

namespace gradhpo::nn {

Model::Model(std::string name, const Shape& input_shape, std::int64_t num_classes)
    : name_(std::move(name)), input_shape_(input_shape), num_classes_(num_classes) {
  require(input_shape.ndim() == 3 && input_shape.numel() > 0,
          name_ + ": input shape must be [C, H, W], got " + input_shape.str());
  require(num_classes >= 2, name_ + ": need at least 2 classes, got " + std::to_string(num_classes));
}

std::string Model::describe() const {
  const Shape& s = input_shape_;
  return name_ + " (" + std::to_string(s[0]) + "x" + std::to_string(s[1]) + "x" + std::to_string(s[2]) + " -> " +
         std::to_string(num_classes_) + ", " + std::to_string(num_params()) + " parameters)";
}

void Model::check_inputs(const Var& w, const Var& x) const {
  const Shape& xs = x.shape();
  require(xs.ndim() == 4 && xs[1] == input_shape_[0] && xs[2] == input_shape_[1] && xs[3] == input_shape_[2],
          name_ + ": expected a batch [B, " + std::to_string(input_shape_[0]) + ", " + std::to_string(input_shape_[1]) +
              ", " + std::to_string(input_shape_[2]) + "], got " + xs.str());
  require(w.numel() == layout_.numel(), name_ + ": w has " + std::to_string(w.numel()) + " elements, the layout " +
                                            std::to_string(layout_.numel()));
  require(w.dtype() == x.dtype(), name_ + ": w is " + dtype_name(w.dtype()) + " but the batch is " +
                                      dtype_name(x.dtype()) + " (convert one of them)");
}

Var Model::forward(const Var& w, const Tensor& x, const Context& ctx) const {
  return forward(w, w.tape().constant(x), ctx);
}

// ---- MLP -----------------------------------------------------------------------------------------

Mlp::Mlp(const Shape& input_shape, std::int64_t num_classes, const MlpOptions& options)
    : Model("mlp", input_shape, num_classes), activation_(options.activation) {
  std::int64_t in = input_shape.numel();
  int i = 1;
  for (std::int64_t width : options.hidden) {
    require(width > 0, "mlp: hidden width must be positive, got " + std::to_string(width));
    layers_.push_back(Linear::create(layout_, "fc" + std::to_string(i++), in, width));
    in = width;
  }
  layers_.push_back(Linear::create(layout_, "fc" + std::to_string(i), in, num_classes));
}

Var Mlp::forward(const Var& w, const Var& x, const Context&) const {
  check_inputs(w, x);
  Var h = flatten(x);
  for (std::size_t i = 0; i + 1 < layers_.size(); ++i) h = activate(layers_[i](w, h), activation_);
  return layers_.back()(w, h);
}

// ---- LeNet-5 -------------------------------------------------------------------------------------

namespace {
// Output extent of a 2×2 pooling with stride 2 (floor, as PyTorch).
std::int64_t pooled(std::int64_t n) { return (n - 2) / 2 + 1; }
}  // namespace

LeNet5::LeNet5(const Shape& input_shape, std::int64_t num_classes, const LeNet5Options& options)
    : Model("lenet5", input_shape, num_classes), options_(options) {
  const std::int64_t C = input_shape[0], H = input_shape[1], W = input_shape[2];
  const int pad = options.first_padding >= 0 ? options.first_padding : (std::min(H, W) < 32 ? 2 : 0);
  conv1_ = Conv2d::create(layout_, "conv1", C, 6, 5, 1, pad);
  const std::int64_t h1 = conv1_.out_size(H), w1 = conv1_.out_size(W);
  require(h1 >= 2 && w1 >= 2, "lenet5: input " + input_shape.str() + " is too small for the first conv and pool");
  conv2_ = Conv2d::create(layout_, "conv2", 6, 16, 5);
  const std::int64_t h2 = conv2_.out_size(pooled(h1)), w2 = conv2_.out_size(pooled(w1));
  require(h2 >= 2 && w2 >= 2, "lenet5: input " + input_shape.str() + " is too small for the second conv and pool");
  const std::int64_t flat = 16 * pooled(h2) * pooled(w2);
  fc1_ = Linear::create(layout_, "fc1", flat, 120);
  fc2_ = Linear::create(layout_, "fc2", 120, 84);
  fc3_ = Linear::create(layout_, "fc3", 84, num_classes);
}

Var LeNet5::forward(const Var& w, const Var& x, const Context&) const {
  check_inputs(w, x);
  auto pool = [&](const Var& h) { return options_.max_pool ? max_pool2d(h, 2, 2) : avg_pool2d(h, 2, 2); };
  const Activation a = options_.activation;
  Var h = pool(activate(conv1_(w, x), a));
  h = pool(activate(conv2_(w, h), a));
  h = flatten(h);
  h = activate(fc1_(w, h), a);
  h = activate(fc2_(w, h), a);
  return fc3_(w, h);
}

// ---- Wide ResNet ---------------------------------------------------------------------------------

WideResNet::WideResNet(const Shape& input_shape, std::int64_t num_classes, const WideResNetOptions& o)
    : Model("wrn" + std::to_string(o.depth) + "-" + std::to_string(o.widen), input_shape, num_classes) {
  require(o.depth >= 10 && (o.depth - 4) % 6 == 0,
          "wrn: depth must be 6n + 4 with n >= 1 (10, 16, 22, 28, ...), got " + std::to_string(o.depth));
  require(o.widen >= 1 && o.base_width >= 1, "wrn: widen factor and base width must be positive");
  const int n = (o.depth - 4) / 6;
  const std::int64_t widths[4] = {o.base_width, std::int64_t{o.base_width} * o.widen,
                                  2 * std::int64_t{o.base_width} * o.widen, 4 * std::int64_t{o.base_width} * o.widen};
  conv1_ = Conv2d::create(layout_, "conv1", input_shape[0], widths[0], 3, 1, 1, /*with_bias=*/false);
  std::int64_t in = widths[0], size = std::min(input_shape[1], input_shape[2]);
  for (int g = 0; g < 3; ++g) {
    const std::int64_t out = widths[g + 1];
    for (int b = 0; b < n; ++b) {
      const int stride = (b == 0 && g > 0) ? 2 : 1;
      const std::string p = "group" + std::to_string(g + 1) + ".block" + std::to_string(b + 1) + ".";
      Block k;
      k.bn1 = BatchNorm2d::create(layout_, p + "bn1", in, o.bn_eps);
      k.conv1 = Conv2d::create(layout_, p + "conv1", in, out, 3, stride, 1, false);
      k.bn2 = BatchNorm2d::create(layout_, p + "bn2", out, o.bn_eps);
      k.conv2 = Conv2d::create(layout_, p + "conv2", out, out, 3, 1, 1, false);
      if (in != out || stride != 1) k.shortcut = Conv2d::create(layout_, p + "shortcut", in, out, 1, stride, 0, false);
      blocks_.push_back(k);
      in = out;
      size = k.conv1.out_size(size);
    }
  }
  require(size >= 1, "wrn: input " + input_shape.str() + " is too small for two stride-2 groups");
  bn_ = BatchNorm2d::create(layout_, "bn", in, o.bn_eps);
  fc_ = Linear::create(layout_, "fc", in, num_classes);
}

Var WideResNet::forward(const Var& w, const Var& x, const Context& ctx) const {
  check_inputs(w, x);
  Var h = conv1_(w, x);
  for (const Block& k : blocks_) {
    // Pre-activation basic block as in the reference WRN code: the 1×1 shortcut (when the
    // shape changes) reads the pre-activated input o, the identity shortcut reads h itself.
    const Var o = k.bn1.with_relu(w, h, ctx);
    Var y = k.conv1(w, o);
    y = k.bn2.with_relu(w, y, ctx);
    y = k.conv2(w, y);
    h = y + (k.shortcut.weight.present() ? k.shortcut(w, o) : h);
  }
  h = bn_.with_relu(w, h, ctx);
  return fc_(w, global_avg_pool(h));
}

// ---- factory -------------------------------------------------------------------------------------

const std::vector<std::string>& model_names() {
  static const std::vector<std::string> names = {"mlp", "lenet5", "wrn16"};
  return names;
}

std::unique_ptr<Model> make_model(const std::string& name, const Shape& input_shape, std::int64_t num_classes,
                                  const ModelOptions& options) {
  if (name == "mlp") return std::make_unique<Mlp>(input_shape, num_classes, options.mlp);
  if (name == "lenet5" || name == "lenet") return std::make_unique<LeNet5>(input_shape, num_classes, options.lenet5);
  if (name == "wrn16" || name == "wrn") {
    WideResNetOptions o = options.wrn;
    if (name == "wrn16") o.depth = 16;
    return std::make_unique<WideResNet>(input_shape, num_classes, o);
  }
  std::string known;
  for (const std::string& n : model_names()) known += (known.empty() ? "" : ", ") + n;
  throw Error("unknown model '" + name + "' (expected one of: " + known + ")");
}

}  // namespace gradhpo::nn
