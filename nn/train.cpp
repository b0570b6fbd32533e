#include "train.h"

#include <cmath>
#include <sstream>

#include "../engine/kernels/vector.h"
#include "loss.h"

namespace gradhpo::nn {
namespace {

// On the tensor's device (one reduction there, one number back).
bool all_finite(const Tensor& t) { return kernels::first_non_finite(t) < 0; }

}  // namespace

Tensor batch_rows(const Tensor& images, std::int64_t start, std::int64_t count, DType dtype) {
  const Tensor rows = images.rows(start, count);
  return rows.dtype() == dtype ? rows : rows.to(dtype);
}

Trainer::Trainer(const Model& model, Tensor w, ModelState state, OptimizerConfig optimizer)
    : model_(model), w_(std::move(w)), state_(std::move(state)), optimizer_(std::move(optimizer)) {
  require(w_.numel() == model.num_params(), "Trainer: w has " + std::to_string(w_.numel()) + " elements, " +
                                                model.name() + " has " + std::to_string(model.num_params()) +
                                                " parameters");
  require(state_.running_mean.size() == model.layout().batch_norms().size(),
          "Trainer: the ModelState does not belong to " + model.name());
}

StepResult Trainer::step(const Tensor& x, const Tensor& labels) {
  tape_.reset();
  const Var W = tape_.variable(w_);
  const Tensor xb = x.dtype() == w_.dtype() ? x : x.to(w_.dtype());
  // Running statistics move only if the step goes through: update a copy, commit at the end.
  ModelState next = state_.running_mean.empty() ? ModelState{} : state_.clone();
  const Var logits = model_.forward(W, xb, Context::train(state_.running_mean.empty() ? nullptr : &next));
  const Var L = cross_entropy(logits, labels);
  const double loss = L.item();
  const std::int64_t s = optimizer_.steps();
  auto diverged = [&](const std::string& what) {
    std::ostringstream o;
    o << "training diverged at step " << s << ": " << what << " (learning rate " << optimizer_.lr()
      << "); try a smaller learning rate";
    throw Error(o.str());
  };
  if (!std::isfinite(loss)) diverged(std::string("loss is ") + (std::isnan(loss) ? "nan" : loss > 0 ? "inf" : "-inf"));
  Request r;
  r.output = L;
  r.gradients = {W};
  tape_.differentiate(r);
  const Tensor g = tape_.adjoint(W).value;
  require(g.defined(), "Trainer::step: the loss does not depend on the weights");
  if (!all_finite(g)) diverged("gradient is not finite");
  optimizer_.step(w_, g);
  if (!state_.running_mean.empty()) state_ = std::move(next);
  return {loss, count_correct(logits.value(), labels)};
}

Evaluation evaluate(const Model& model, const Tensor& w, const ModelState& state, const Tensor& images,
                    const std::vector<std::int32_t>& labels, std::int64_t batch_size) {
  const std::int64_t n = images.dim(0);
  require(n == static_cast<std::int64_t>(labels.size()),
          "evaluate: " + std::to_string(n) + " images and " + std::to_string(labels.size()) + " labels");
  require(batch_size > 0, "evaluate: batch size must be positive");
  Evaluation e;
  Tape tape;
  tape.set_recording(false);  // plain mode: values only, intermediates freed as soon as unused
  double loss_sum = 0;
  for (std::int64_t start = 0; start < n; start += batch_size) {
    const std::int64_t b = std::min(batch_size, n - start);
    tape.reset();
    const Var W = tape.constant(w);
    const Var logits = model.forward(W, batch_rows(images, start, b, w.dtype()).to(w.device()), Context::eval(state));
    const std::vector<std::int32_t> y(labels.begin() + start, labels.begin() + start + b);
    const Tensor yt = Tensor::from_labels(y).to(w.device());
    loss_sum += cross_entropy(logits, yt).item() * static_cast<double>(b);
    e.correct += count_correct(logits.value(), y);
  }
  e.count = n;
  e.loss = n ? loss_sum / static_cast<double>(n) : 0.0;
  e.accuracy = n ? static_cast<double>(e.correct) / static_cast<double>(n) : 0.0;
  return e;
}

}  // namespace gradhpo::nn
