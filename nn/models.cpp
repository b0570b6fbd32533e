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

// ---- factory -------------------------------------------------------------------------------------

const std::vector<std::string>& model_names() {
  static const std::vector<std::string> names = {"mlp"};
  return names;
}

std::unique_ptr<Model> make_model(const std::string& name, const Shape& input_shape, std::int64_t num_classes,
                                  const ModelOptions& options) {
  if (name == "mlp") return std::make_unique<Mlp>(input_shape, num_classes, options.mlp);
  std::string known;
  for (const std::string& n : model_names()) known += (known.empty() ? "" : ", ") + n;
  throw Error("unknown model '" + name + "' (expected one of: " + known + ")");
}

}  // namespace gradhpo::nn
