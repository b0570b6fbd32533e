#include "shape.h"

namespace gradhpo {
namespace dual {

Dual slice(const Dual& x, std::int64_t start, std::int64_t length) {
  Dual y(x.value.flat_slice(start, length));
  if (x.has_tangent()) {
    const std::int64_t K = x.K(), n = x.value.numel();
    if (K == 1) {
      y.tangent = x.tangent.flat_slice(start, length).reshape(Shape{1, length});
    } else {
      y.tangent = Tensor::empty(Shape{K, length}, x.value.dtype(), x.value.device());
      for (std::int64_t k = 0; k < K; ++k) y.tangent.rows(k, 1).copy_from(x.tangent.flat_slice(k * n + start, length));
    }
  }
  return y;
}

}  // namespace dual

namespace {

// ---- reshape: a view; the tangent block [K, numel] is unchanged ------------------------------
Tensor reshape_tangent(const Tape& t, const Node& n) { return t.node_at(t.input_id(n, 0)).tangent; }
void reshape_backward(Tape& t, const Node& n, const Dual& g) {
  if (t.needs_adjoint(n, 0)) t.accumulate(n, 0, g);  // accumulate reshapes to the input's shape
}
const OpRules kReshapeRules = {"reshape", reshape_tangent, reshape_backward, 0};

// ---- slice: y = x[start : start+len]; x̄[start : start+len] += ḡ --------------------------------
Tensor slice_tangent(const Tape& t, const Node& n) {
  return dual::slice(t.input(n, 0), n.payload_as<SlicePayload>().start, n.value.numel()).tangent;
}
void slice_backward(Tape& t, const Node& n, const Dual& g) {
  if (t.needs_adjoint(n, 0)) t.accumulate_range(n, 0, n.payload_as<SlicePayload>().start, g);
}
const OpRules kSliceRules = {"slice", slice_tangent, slice_backward, 0, /*slices_input=*/true};

// ---- concat: y = [x_1; ...; x_m]; x̄_i += ḡ[offset_i : offset_i + n_i] ------------------------
Tensor concat_tangent(const Tape& t, const Node& n) {
  std::int64_t K = 0;
  for (int i = 0; i < n.num_inputs; ++i) K = std::max(K, t.input(n, i).K());
  const std::int64_t total = n.value.numel();
  Tensor out = Tensor::zeros(Shape{K, total}, n.value.dtype(), n.value.device());
  std::int64_t offset = 0;
  for (int i = 0; i < n.num_inputs; ++i) {
    const Dual x = t.input(n, i);
    const std::int64_t len = x.value.numel();
    if (x.has_tangent())
      for (std::int64_t k = 0; k < K; ++k)
        out.flat_slice(k * total + offset, len).copy_from(x.tangent.flat_slice(k * len, len));
    offset += len;
  }
  return out;
}
void concat_backward(Tape& t, const Node& n, const Dual& g) {
  std::int64_t offset = 0;
  for (int i = 0; i < n.num_inputs; ++i) {
    const std::int64_t len = t.input_value(n, i).numel();
    if (t.needs_adjoint(n, i)) t.accumulate(n, i, dual::slice(g, offset, len));
    offset += len;
  }
}
const OpRules kConcatRules = {"concat", concat_tangent, concat_backward, 0};
GRADHPO_REGISTER_OPS(&kReshapeRules, &kSliceRules, &kConcatRules);

}  // namespace

Var reshape(const Var& x, const Shape& shape) {
  Tape& t = x.tape();
  t.check(x, "reshape");
  return t.record(&kReshapeRules, x.value().reshape(shape), {x});
}

Var slice(const Var& x, std::int64_t start, const Shape& shape) {
  Tape& t = x.tape();
  t.check(x, "slice");
  const std::int64_t len = shape.numel();
  GRADHPO_CHECK(start >= 0 && start + len <= x.numel(),
          "slice: elements [" + std::to_string(start) + ", " + std::to_string(start + len) + ") of a tensor of " +
              std::to_string(x.numel()) + " elements (" + x.shape().str() + ")");
  return t.record(&kSliceRules, x.value().flat_slice(start, len).reshape(shape), {x}, SlicePayload{start});
}

Var concat(const std::vector<Var>& parts) {
  GRADHPO_CHECK(!parts.empty(), "concat: no inputs");
  Tape& t = parts.front().tape();
  std::int64_t total = 0;
  for (const Var& p : parts) {
    t.check(p, "concat");
    GRADHPO_CHECK(p.dtype() == parts.front().dtype(), std::string("concat: mixed dtypes ") +
                                                    dtype_name(parts.front().dtype()) + " and " + dtype_name(p.dtype()));
    total += p.numel();
  }
  Tensor y = Tensor::empty(Shape{total}, parts.front().dtype(), parts.front().value().device());
  std::int64_t offset = 0;
  for (const Var& p : parts) {
    y.flat_slice(offset, p.numel()).copy_from(p.value());
    offset += p.numel();
  }
  return t.record(&kConcatRules, std::move(y), parts);
}

}  // namespace gradhpo
