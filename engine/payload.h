// What an op node keeps for its rules beyond its value and inputs: one small struct per op
// family, named for what each field is (STYLE.md 14: "an op's saved integers are a small
// struct, not arg[3]").
//
// A node holds them as one std::variant (NodePayload), inline in the Node, rather than as
// per-op structs in a side arena. The tape's node vector is an arena that reset() clears but
// keeps, so a variant inline in it costs no allocation per op in steady state (the training
// loop's hot path), needs no second arena with its own lifetime and alignment, and is checked
// on every read: a rule that asks a node for another family's payload throws instead of
// reading the wrong fields (Node::payload_as). It is as large as the largest family (batch
// norm's two tensors), which is smaller than the untyped fields it replaces (two tensors, a
// double and six integers): a Node went from 472 to 432 bytes.
//
// A payload's tensors (labels, argmax positions, batch statistics) share storage with what the
// op computed: they come from the caching pool and return to it when the tape is reset.
#pragma once

#include <cstdint>
#include <variant>

#include "kernels/element.h"
#include "tensor.h"

namespace gradhpo {

/// add / sub / mul / div (ops/elementwise.cpp): which one.
struct BinaryPayload {
  kernels::BinaryOp op;
};

/// exp, log, relu, ... (ops/elementwise.cpp): which function.
struct UnaryPayload {
  kernels::UnaryOp op;
};

/// affine (ops/elementwise.cpp), y = x·scale + shift: the rules need only the scale.
struct AffinePayload {
  double scale;
};

/// sum / mean over one axis (ops/reduce.cpp): x viewed as [outer, reduced, inner], summed over
/// the middle axis and multiplied by scale (1 for a sum, 1/reduced for a mean).
struct ReducePayload {
  std::int64_t outer, reduced, inner;
  double scale;
};

/// slice (ops/shape.cpp): the value is the input's flat elements [start, start + numel).
/// Tape::adjoint_destination reads it too (OpRules::slices_input).
struct SlicePayload {
  std::int64_t start;
};

/// matmul (ops/matmul.cpp): y = op(a) op(b), op = transpose where set.
struct MatmulPayload {
  bool trans_a, trans_b;
};

/// conv2d (ops/conv.cpp): the geometry's integers (the sizes come from the inputs' shapes).
struct ConvPayload {
  std::int64_t stride, padding;
};

/// avg_pool2d (ops/pool.cpp): square windows of side `kernel`, `stride` apart.
struct AvgPoolPayload {
  std::int64_t kernel, stride;
};

/// max_pool2d (ops/pool.cpp): as avg_pool2d, and each output's flat position in its input
/// plane (int32 [N·C·Ho·Wo]), which the tangent gathers from and the adjoint scatters to.
struct MaxPoolPayload {
  std::int64_t kernel, stride;
  Tensor argmax;
};

/// channel_affine / channel_scale / channel_bias (ops/channel.cpp): which of the optional
/// inputs follow x (scale first, then shift).
struct ChannelAffinePayload {
  bool has_scale, has_shift;
};

/// The batch a batch-norm node's statistics were taken over: `count` values per channel, and
/// whether they were summed over the shards of a data-parallel batch (Tape::shard_sum; then the
/// rules sum their channel sums over the shards too).
struct BatchExtent {
  double count;
  bool synchronized;
};

/// batch_standardize (ops/batchnorm.cpp), y = x̂ = (x − μ)·inv_std: inv_std = 1/√(σ² + eps)
/// per channel [C] (the output is x̂ itself; eps is in inv_std, no rule needs it alone).
struct StandardizePayload {
  Tensor inv_std;
  BatchExtent batch;
};

/// batch_norm_train / batch_norm_relu_train (ops/batchnorm.cpp), y = γ x̂ + β (then relu when
/// fused_relu): inv_std [C] as in StandardizePayload, and the standardized input x̂ (shaped like
/// x; undefined in plain mode, where no rule runs).
struct BatchNormPayload {
  Tensor inv_std;
  Tensor standardized;
  BatchExtent batch;
  bool fused_relu;
};

/// pick (ops/softmax.cpp), y_i = x[i, labels_i]: the labels (int32 [B]) on x's device.
struct PickPayload {
  Tensor labels;
};

/// Leaves and ops that keep nothing hold std::monostate.
using NodePayload =
    std::variant<std::monostate, BinaryPayload, UnaryPayload, AffinePayload, ReducePayload, SlicePayload, MatmulPayload,
                 ConvPayload, AvgPoolPayload, MaxPoolPayload, ChannelAffinePayload, StandardizePayload,
                 BatchNormPayload, PickPayload>;

}  // namespace gradhpo
