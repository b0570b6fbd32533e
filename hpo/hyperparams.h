// Hyperparameters: named groups of raw values θ that the outer optimizer moves, and the values
// λ = transform(θ) that training uses at each step.
//
// DESIGN.md ("hpo") keeps two kinds apart, because not every method applies to both:
//   optimizer-defining  learning rate, momentum, weight decay: enter the update Φ. Each is a
//                       schedule of `blocks` values shared over contiguous blocks of the T steps
//                       (blocks = 1: a constant; blocks = T: one value per step; Micaelli &
//                       Storkey's "hyperparameter sharing", Section 4), optionally one schedule
//                       per parameter tensor group (one per layer, as in Maclaurin et al. 2015).
//   loss-defining       L2 coefficients (global, per tensor group, per parameter entry),
//                       per-example training weights (data hyper-cleaning), or any value a
//                       user's own loss reads: enter L_train(w, λ).
//
// All groups live in ONE flat raw vector θ [N]. On a tape, θ is a single leaf and each group's
// value at step t is computed from it with engine ops (slice, transform, expansion over the
// parameter tensors), so the chain rule through sharing and transforms comes from the tape —
// hypergradients are always with respect to θ, and no method carries a hand-written Jacobian
// of a transform.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "../engine/tape.h"
#include "../nn/layout.h"

namespace gradhpo::hpo {

/// The map from a raw value θ to the value λ used in training.
enum class Transform : std::uint8_t {
  identity,  ///< λ = θ
  exp,       ///< λ = e^θ (log scale: λ > 0)
  sigmoid,   ///< λ = 1 / (1 + e^−θ): λ in (0, 1)
  softplus,  ///< λ = log(1 + e^θ): λ > 0
};
const char* transform_name(Transform t);
/// "identity", "exp", "sigmoid", "softplus"; throws Error otherwise.
Transform parse_transform(const std::string& name);
double apply_transform(Transform t, double raw);
/// θ for a wanted λ (throws Error naming λ when it is outside the transform's range).
double inverse_transform(Transform t, double value);
Var apply_transform(Transform t, const Var& raw);

enum class HyperKind : std::uint8_t {
  learning_rate,   ///< optimizer-defining
  momentum,        ///< optimizer-defining (SGD's β; Adam's β₁)
  weight_decay,    ///< optimizer-defining (PyTorch's weight_decay μ)
  l2,              ///< loss-defining: ½ Σ λ w² terms
  example_weight,  ///< loss-defining: one weight per training example
  loss,            ///< loss-defining: any value a user's own loss reads
};
const char* kind_name(HyperKind k);
bool is_optimizer_defining(HyperKind k);

/// An interval of values λ: [lower, upper], either end open ("(") or infinite. What a group's
/// values may be (its kind's valid range, or a user's own box inside it), checked on the initial
/// values and on search boxes, and kept by every outer optimizer by projection (outer.h).
struct ValueRange {
  double lower = -std::numeric_limits<double>::infinity();
  double upper = std::numeric_limits<double>::infinity();
  bool lower_open = false, upper_open = false;  ///< an open end excludes its bound (momentum's 1)

  static ValueRange closed(double lower, double upper) { return {lower, upper, false, false}; }
  bool contains(double v) const;
  /// The nearest value in the range: v itself when it is inside (bit for bit); the bound, or the
  /// double next to it inside the range when that end is open. Throws Error for NaN.
  double clamp(double v) const;
  /// Whether every value of `inner` is in this range.
  bool contains(const ValueRange& inner) const;
  /// "[0, inf)", "[0, 1)", "(-inf, inf)".
  std::string text() const;
};

/// The values a kind of hyperparameter may take:
///   learning rate    [0, inf)  The step is −λ∇L: a negative rate climbs the loss. 0 is in the
///                              range because Micaelli & Storkey's Algorithm 1 starts every
///                              hyperparameter at 0 (a rate of 0 leaves w unchanged, and the
///                              hypergradient there is well defined); the projection needs a
///                              closed set, so a rate below 0 is projected to 0, never to an
///                              arbitrary floor. A user who wants λ > 0 strictly gives a box
///                              (HyperGroup::box) or the exp/softplus transform.
///   momentum         [0, 1)    β = 1 never forgets a gradient (the velocity grows without
///                              bound); β < 0 alternates its sign. Projected to the largest
///                              double below 1.
///   weight decay     [0, inf)  PyTorch's μ: μ < 0 grows the weights.
///   L2               [0, inf)  ½λ‖w‖²: λ < 0 makes the training loss unbounded below.
///   example weights  [0, 1]    data hyper-cleaning's per-example weights.
///   loss             (-inf, inf)  a user's own value: no range unless the user gives a box.
ValueRange valid_range(HyperKind k);

/// How the `width` values of one block spread over the parameters.
enum class Spread : std::uint8_t {
  global,        ///< width 1: one value for every parameter
  tensor_group,  ///< width G: tensor k of the layout takes value group[k] (−1: none)
  entry,         ///< width P: one value per parameter entry; or, with a tensor_group of 0 (chosen)
                 ///< and −1 (not) per layout tensor, one per entry of the chosen tensors (L2 only)
  free,          ///< width n: a plain vector (example weights, a user's own values)
};

struct HyperGroup {
  std::string name;                  ///< unique, e.g. "lr", "l2", "momentum"
  HyperKind kind = HyperKind::loss;
  Transform transform = Transform::identity;
  Spread spread = Spread::global;
  std::int64_t blocks = 1;           ///< values over time: block b covers steps [bT/N, (b+1)T/N)
  std::int64_t width = 1;            ///< values per block
  std::vector<int> tensor_group;     ///< Spread::tensor_group (or entry): one entry per layout tensor
  std::vector<std::string> labels;   ///< optional names of the width entries (layer names)
  /// Initial values λ, as training uses them (after the transform): blocks·width, or 1
  /// (broadcast). Hyperparameters::add inverts them through the transform into θ₀.
  std::vector<double> init;
  /// The explicit alternative: initial raw values θ (before the transform), same sizes. Give
  /// `init` or `init_raw`, not both; after add() the stored group holds both.
  std::vector<double> init_raw;
  /// A user's own box on λ (after the transform), e.g. {1e-4, 1} for a learning rate; it must lie
  /// inside the kind's valid range (valid_range). Unset: the valid range. Hyperparameters::range
  /// gives the one in force; the outer optimizers project θ so that λ stays in it.
  std::optional<ValueRange> box;
  std::int64_t size() const { return blocks * width; }
};

/// How an L2 group over chosen parameter tensors shares its coefficients (Hyperparameters::l2_on).
enum class L2Share : std::uint8_t {
  one,         ///< one coefficient for all chosen tensors
  per_tensor,  ///< one coefficient per chosen tensor (labelled with its name)
  per_entry,   ///< one coefficient per entry of the chosen tensors
};

/// The groups of one problem and the flat raw vector θ that holds them.
class Hyperparameters {
 public:
  /// Appends a group; throws Error naming the group when it is inconsistent (duplicate name,
  /// zero blocks or width, blocks > 1 on a loss-defining group, a tensor_group of the wrong
  /// length, both or neither of init and init_raw, initial values of the wrong size, not
  /// finite, or λ outside the transform's range).
  void add(HyperGroup group);

  // Ready-made groups. `blocks` = 1 is a constant; `init` is the λ value (HyperGroup::init, so
  // callers speak in λ; add() inverts it through the transform). Each has its default name
  // ("lr", "l2", "weights", ...); any other name works the same, since groups are found by kind.
  static HyperGroup learning_rate(std::int64_t blocks, double init, Transform t = Transform::identity);
  static HyperGroup momentum(std::int64_t blocks, double init, Transform t = Transform::identity);
  static HyperGroup weight_decay(std::int64_t blocks, double init, Transform t = Transform::identity);
  /// L2 with one coefficient for all parameters.
  static HyperGroup l2_global(double init, Transform t = Transform::exp);
  /// L2 with one coefficient per tensor group (e.g. nn::layer_groups(layout) or weight_groups).
  static HyperGroup l2_per_tensor(const std::vector<int>& group, std::vector<std::string> names, double init,
                                  Transform t = Transform::exp);
  /// L2 with one coefficient per parameter entry (P of them).
  static HyperGroup l2_per_entry(std::int64_t num_params, double init, Transform t = Transform::exp);
  /// L2 on the layout's tensors that `chosen` picks (e.g. weights but not biases or batch-norm
  /// parameters), ½ Σ λ w² over those tensors only; `share` says how many coefficients.
  static HyperGroup l2_on(const nn::ParamLayout& layout, const std::function<bool(const nn::ParamInfo&)>& chosen,
                          double init, L2Share share = L2Share::one, Transform t = Transform::exp);
  /// The same for the tensors named in `names` (each must exist in the layout).
  static HyperGroup l2_on(const nn::ParamLayout& layout, const std::vector<std::string>& names, double init,
                          L2Share share = L2Share::one, Transform t = Transform::exp);
  /// One weight per training example, λ_i = σ(θ_i) by default (data hyper-cleaning).
  static HyperGroup example_weights(std::int64_t num_examples, double init, Transform t = Transform::sigmoid);

  const std::vector<HyperGroup>& groups() const { return groups_; }
  std::size_t count() const { return groups_.size(); }
  /// N: the length of θ.
  std::int64_t size() const { return size_; }
  bool empty() const { return groups_.empty(); }
  /// Index of the group called `name`, or −1.
  int find(const std::string& name) const;
  /// Index of the first group of `kind`, or −1.
  int find(HyperKind kind) const;
  /// Indices of every group of `kind`, in order.
  std::vector<int> find_all(HyperKind kind) const;
  const HyperGroup& group(int g) const { return groups_.at(static_cast<std::size_t>(g)); }
  /// First element of group g in θ.
  std::int64_t offset(int g) const { return offsets_.at(static_cast<std::size_t>(g)); }
  bool has_loss_defining() const;
  bool has_optimizer_defining() const;

  /// The range group g's values λ must stay in: its box, or its kind's valid range.
  ValueRange range(int g) const;
  /// The same on the raw values θ of group g: the widest [lo, hi] (±inf where the transform
  /// cannot leave the range) with transform(θ) in range(g) for every θ in it. Transforms are
  /// increasing, so this is the range's preimage, moved inwards by an ulp or two where the
  /// transform's rounding would otherwise land a bound's image outside.
  ValueRange raw_range(int g) const;
  /// Projects θ [N] onto the ranges in place: each entry outside its group's raw_range is set to
  /// the nearest value inside; entries inside keep their bits. Returns the flat indices set.
  std::vector<std::int64_t> project(std::vector<double>& theta) const;
  /// Throws Error naming the first entry of θ whose λ is outside its group's range ("weight_decay
  /// = -0.002 is outside the valid range [0, inf) of weight decay"), after check_theta's checks.
  void check_range(const Tensor& theta, const char* who) const;

  /// θ₀: every group's initial raw values, in group order.
  Tensor initial(DType dtype = DType::f64) const;
  /// The block of group g that step t of a T-step run uses.
  std::int64_t block_of(int g, std::int64_t t, std::int64_t T) const;
  /// Group g's values λ at step t on the tape of θ: [width] after the transform.
  Var values(const Var& theta, int g, std::int64_t t, std::int64_t T) const;
  /// The same, spread over P parameters for optimizer-defining groups: [1] for a global group,
  /// [P] otherwise (what nn::sgd_step / adam_step take).
  Var per_parameter(const Var& theta, int g, std::int64_t t, std::int64_t T, const nn::ParamLayout* layout,
                    std::int64_t num_params) const;
  /// λ of element `flat` of θ, as a double.
  double value_at(const Tensor& theta, std::int64_t flat) const;
  /// "lr[3]", "l2[conv1]", "momentum": the name of element `flat` of θ.
  std::string entry_name(std::int64_t flat) const;
  /// Index of the group that holds element `flat` of θ.
  int group_of(std::int64_t flat) const;
  /// Throws Error naming the first NaN/inf raw value of θ (and its group) or a size mismatch.
  void check_theta(const Tensor& theta, const char* who) const;
  /// One line per group: name, kind, transform, blocks × width.
  std::string describe() const;

 private:
  static void set_initial_values(HyperGroup& group, const std::string& who);
  std::vector<HyperGroup> groups_;
  std::vector<std::int64_t> offsets_;
  std::int64_t size_ = 0;
};

/// What a loss function sees of the hyperparameters at one step: each group's values on the
/// loss tape, by name, by kind or by index. A user's own loss reads its groups here; ours find
/// theirs by kind (HyperKind::l2, HyperKind::example_weight), whatever their names.
class HyperValues {
 public:
  HyperValues(const Hyperparameters& h, const Var& theta, std::int64_t step, std::int64_t horizon)
      : h_(&h), theta_(theta), step_(step), horizon_(horizon) {}
  bool has(const std::string& name) const { return h_->find(name) >= 0; }
  /// Group `name`'s transformed values [width] at this step; throws Error listing the groups
  /// when there is none of that name.
  Var operator[](const std::string& name) const;
  /// The first group of `kind`, or an invalid Var when there is none.
  Var first(HyperKind kind) const;
  /// Group g's transformed values [width] at this step (g an index of hyperparameters()).
  Var group(int g) const;
  const Hyperparameters& hyperparameters() const { return *h_; }
  std::int64_t step() const { return step_; }

 private:
  const Hyperparameters* h_;
  Var theta_;
  std::int64_t step_, horizon_;
};

}  // namespace gradhpo::hpo
