// Parameter layout, model state and forward context: what a functional model is made of.
//
// A model's parameters live in ONE flat vector w. The layout names each tensor in it (its
// shape, its offset into w, what kind of tensor it is and its fans for initialization), and a
// layer reads its tensors as views of w (the engine's `slice`, no copy). Keeping w flat and the
// forward pass a pure function of (w, x) is what lets hpo/ evaluate a loss at w ± εv, at
// (1−β) w₀ + β w_T, or at recovered past iterates (DESIGN.md, "nn").
//
// Batch-norm running statistics are NOT part of w: they are ModelState, read in eval mode and
// written (when asked) in training mode, through a Context.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "../engine/tape.h"
#include "init.h"

namespace gradhpo::nn {

/// One named tensor of w.
struct ParamInfo {
  std::string name;             ///< e.g. "conv1.weight", "block2.1.bn1.gamma"
  Shape shape;
  std::int64_t offset = 0;      ///< first element in w
  ParamRole role = ParamRole::weight;
  std::int64_t fan_in = 1;      ///< inputs per output unit (in·kh·kw for a conv weight)
  std::int64_t fan_out = 1;     ///< outputs per input unit (out·kh·kw for a conv weight)
  std::int64_t numel() const { return shape.numel(); }
};

/// A layer's handle on one of its tensors: where it sits in w. Cheap to copy.
struct ParamRef {
  int index = -1;               ///< position in the layout (-1: absent, e.g. no bias)
  std::int64_t offset = 0;
  Shape shape;
  bool present() const { return index >= 0; }
  /// The tensor as a view of w on w's tape (slice; its adjoint lands in w's adjoint).
  Var view(const Var& w) const;
  /// The tensor as a view of a plain w (shares w's storage).
  Tensor view(const Tensor& w) const;
};

/// A batch-norm layer's running statistics slot in ModelState.
struct BatchNormInfo {
  std::string name;
  std::int64_t channels = 0;
};

class ParamLayout {
 public:
  /// Appends a tensor at the end of w. Names must be unique.
  ParamRef add(const std::string& name, const Shape& shape, ParamRole role, std::int64_t fan_in,
               std::int64_t fan_out);
  /// Registers a batch-norm layer's running statistics; returns its slot in ModelState.
  int add_batch_norm(const std::string& name, std::int64_t channels);

  /// Total number of parameters, the size of w.
  std::int64_t numel() const { return numel_; }
  /// Number of named tensors.
  int size() const { return static_cast<int>(params_.size()); }
  const ParamInfo& operator[](int i) const { return params_.at(static_cast<std::size_t>(i)); }
  const std::vector<ParamInfo>& params() const { return params_; }
  const std::vector<BatchNormInfo>& batch_norms() const { return batch_norms_; }
  /// Index of the tensor called `name`; throws Error listing a few names if there is none.
  int index(const std::string& name) const;
  /// Index of `name`, or -1.
  int find(const std::string& name) const;
  ParamRef ref(int i) const;

  /// A fresh w [numel()] drawn under `scheme` (see init.h). Tensor i is drawn from its own
  /// stream derive_seed(seed, i), so adding a tensor at the end does not change the others.
  Tensor init(std::uint64_t seed, InitScheme scheme = InitScheme::pytorch, DType dtype = DType::f32) const;
  /// Per-tensor mask of w: 1 for the tensors whose role is in `roles`, 0 elsewhere, shaped
  /// like w (e.g. weight decay on weights only).
  Tensor mask(const std::vector<ParamRole>& roles, DType dtype = DType::f32) const;
  /// One line per tensor: name, shape, offset, count; then the total.
  std::string summary() const;

 private:
  std::vector<ParamInfo> params_;
  std::vector<BatchNormInfo> batch_norms_;
  std::int64_t numel_ = 0;
};

/// State outside w: batch-norm running statistics, updated like PyTorch's BatchNorm2d
/// (momentum 0.1: running = (1 − m) running + m batch, the variance unbiased, n/(n−1)).
struct ModelState {
  std::vector<Tensor> running_mean;  ///< one [C] per batch-norm layer; starts at 0
  std::vector<Tensor> running_var;   ///< one [C] per batch-norm layer; starts at 1
  double momentum = 0.1;

  /// Fresh statistics for every batch-norm layer of `layout`.
  static ModelState for_layout(const ParamLayout& layout, DType dtype = DType::f32);
  /// A deep copy (for checkpoints: Tensor copies share storage).
  ModelState clone() const;
  /// A copy on `device` (where a model whose weights live there updates and reads it).
  ModelState to(Device device) const;
};

/// How a forward pass treats batch norm. A forward pass is pure except for the optional
/// running-statistics update in training mode.
struct Context {
  bool training = true;
  /// Training mode: where running statistics are updated, or null to leave them alone (what
  /// hpo/ wants when it re-evaluates the loss at w ± εv).
  ModelState* update = nullptr;
  /// Eval mode: the running statistics used in place of batch statistics.
  const ModelState* running = nullptr;

  /// Batch statistics; the running statistics in `update` (if any) are updated.
  static Context train(ModelState* update = nullptr) { return Context{true, update, nullptr}; }
  /// Running statistics of `state`.
  static Context eval(const ModelState& state) { return Context{false, nullptr, &state}; }
};

}  // namespace gradhpo::nn
