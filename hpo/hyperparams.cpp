#include "hyperparams.h"

#include <cmath>
#include <limits>
#include <sstream>

#include "../engine/ops.h"

namespace gradhpo::hpo {

const char* transform_name(Transform t) {
  switch (t) {
    case Transform::identity: return "identity";
    case Transform::exp: return "exp";
    case Transform::sigmoid: return "sigmoid";
    case Transform::softplus: return "softplus";
  }
  return "?";
}

Transform parse_transform(const std::string& name) {
  for (Transform t : {Transform::identity, Transform::exp, Transform::sigmoid, Transform::softplus})
    if (name == transform_name(t)) return t;
  throw Error("unknown transform '" + name + "' (expected identity, exp, sigmoid or softplus)");
}

double apply_transform(Transform t, double raw) {
  switch (t) {
    case Transform::identity: return raw;
    case Transform::exp: return std::exp(raw);
    case Transform::sigmoid: return 1.0 / (1.0 + std::exp(-raw));
    case Transform::softplus: return raw > 30 ? raw + std::log1p(std::exp(-raw)) : std::log1p(std::exp(raw));
  }
  return raw;
}

double inverse_transform(Transform t, double value) {
  auto need = [&](bool ok, const char* range) {
    if (!ok) {
      std::ostringstream m;
      m << "a " << transform_name(t) << " hyperparameter must start in " << range << ", got " << value;
      throw Error(m.str());
    }
  };
  need(std::isfinite(value), "the finite numbers");
  switch (t) {
    case Transform::identity: return value;
    case Transform::exp: need(value > 0, "(0, inf)"); return std::log(value);
    case Transform::sigmoid: need(value > 0 && value < 1, "(0, 1)"); return std::log(value / (1 - value));
    case Transform::softplus: need(value > 0, "(0, inf)"); return value > 30 ? value + std::log(-std::expm1(-value)) : std::log(std::expm1(value));
  }
  return value;
}

Var apply_transform(Transform t, const Var& raw) {
  switch (t) {
    case Transform::identity: return raw;
    case Transform::exp: return exp(raw);
    case Transform::sigmoid: return sigmoid(raw);
    case Transform::softplus: return softplus(raw);
  }
  return raw;
}

const char* kind_name(HyperKind k) {
  switch (k) {
    case HyperKind::learning_rate: return "learning rate";
    case HyperKind::momentum: return "momentum";
    case HyperKind::weight_decay: return "weight decay";
    case HyperKind::l2: return "L2";
    case HyperKind::example_weight: return "example weights";
    case HyperKind::loss: return "loss";
  }
  return "?";
}

bool is_optimizer_defining(HyperKind k) {
  return k == HyperKind::learning_rate || k == HyperKind::momentum || k == HyperKind::weight_decay;
}

// ---- valid ranges -------------------------------------------------------------------------------

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

bool above_lower(const ValueRange& r, double v) { return r.lower_open ? v > r.lower : v >= r.lower; }
bool below_upper(const ValueRange& r, double v) { return r.upper_open ? v < r.upper : v <= r.upper; }

std::string bound_text(double v) {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  std::ostringstream s;
  s << v;
  return s.str();
}

}  // namespace

bool ValueRange::contains(double v) const { return !std::isnan(v) && above_lower(*this, v) && below_upper(*this, v); }

double ValueRange::clamp(double v) const {
  require(!std::isnan(v), "ValueRange::clamp: the value is NaN");
  if (!above_lower(*this, v)) return lower_open ? std::nextafter(lower, kInf) : lower;
  if (!below_upper(*this, v)) return upper_open ? std::nextafter(upper, -kInf) : upper;
  return v;
}

bool ValueRange::contains(const ValueRange& in) const {
  const bool low = in.lower > lower || (in.lower == lower && (in.lower_open || !lower_open));
  const bool high = in.upper < upper || (in.upper == upper && (in.upper_open || !upper_open));
  return low && high;
}

std::string ValueRange::text() const {
  return std::string(lower_open || std::isinf(lower) ? "(" : "[") + bound_text(lower) + ", " + bound_text(upper) +
         (upper_open || std::isinf(upper) ? ")" : "]");
}

ValueRange valid_range(HyperKind k) {
  switch (k) {
    case HyperKind::learning_rate:
    case HyperKind::weight_decay:
    case HyperKind::l2: return ValueRange::closed(0, kInf);
    case HyperKind::momentum: return {0, 1, false, true};
    case HyperKind::example_weight: return ValueRange::closed(0, 1);
    case HyperKind::loss: return {};
  }
  return {};
}

namespace {

ValueRange range_of(const HyperGroup& g) { return g.box ? *g.box : valid_range(g.kind); }

/// One end of the raw range: the widest raw bound whose image is inside `r` at that end (±inf
/// when the transform's whole image is). Transforms are increasing; `upper` picks the end.
double raw_bound(const HyperGroup& g, const ValueRange& r, bool upper) {
  const Transform t = g.transform;
  const auto inside = [&](double raw) {
    const double v = apply_transform(t, raw);
    return upper ? below_upper(r, v) : above_lower(r, v);
  };
  const double far = upper ? kInf : -kInf;  // the end of the raw line on this side
  if (inside(far)) return far;
  const double b = upper ? r.upper : r.lower;
  const bool open = upper ? r.upper_open : r.lower_open;
  const double inward = upper ? -kInf : kInf;
  double x = 0;
  try {
    x = inverse_transform(t, open ? std::nextafter(b, inward) : b);
  } catch (const Error&) {
    throw Error("hyperparameter group '" + g.name + "': its " + transform_name(t) + " transform cannot reach the " +
                (upper ? "upper" : "lower") + " end of its range " + r.text());
  }
  // Rounding of the transform: step inwards until the image is inside, then outwards while it
  // still is (a few ulps at most).
  for (int i = 0; i < 64 && !inside(x); ++i) x = std::nextafter(x, inward);
  require(inside(x), "hyperparameter group '" + g.name + "': no raw value maps to the " + (upper ? "upper" : "lower") +
                         " end of its range " + r.text() + " through its " + transform_name(t) + " transform");
  for (int i = 0; i < 64 && inside(std::nextafter(x, far)); ++i) x = std::nextafter(x, far);
  return x;
}

ValueRange raw_range_of(const HyperGroup& g) {
  const ValueRange r = range_of(g);
  return ValueRange::closed(raw_bound(g, r, false), raw_bound(g, r, true));
}

}  // namespace

// ---- groups -----------------------------------------------------------------------------------

namespace {

HyperGroup scalar_schedule(const char* name, HyperKind kind, std::int64_t blocks, double init, Transform t) {
  HyperGroup g;
  g.name = name;
  g.kind = kind;
  g.transform = t;
  g.blocks = blocks;
  g.init = {init};  // λ: add() inverts it through the transform
  return g;
}

}  // namespace

HyperGroup Hyperparameters::learning_rate(std::int64_t blocks, double init, Transform t) {
  return scalar_schedule("lr", HyperKind::learning_rate, blocks, init, t);
}
HyperGroup Hyperparameters::momentum(std::int64_t blocks, double init, Transform t) {
  return scalar_schedule("momentum", HyperKind::momentum, blocks, init, t);
}
HyperGroup Hyperparameters::weight_decay(std::int64_t blocks, double init, Transform t) {
  return scalar_schedule("weight_decay", HyperKind::weight_decay, blocks, init, t);
}

HyperGroup Hyperparameters::l2_global(double init, Transform t) {
  return scalar_schedule("l2", HyperKind::l2, 1, init, t);
}

HyperGroup Hyperparameters::l2_per_tensor(const std::vector<int>& group, std::vector<std::string> names, double init,
                                          Transform t) {
  HyperGroup g = scalar_schedule("l2", HyperKind::l2, 1, init, t);
  g.spread = Spread::tensor_group;
  g.tensor_group = group;
  int width = 0;
  for (int k : group) width = std::max(width, k + 1);
  g.width = width;
  g.labels = std::move(names);
  return g;
}

HyperGroup Hyperparameters::l2_per_entry(std::int64_t num_params, double init, Transform t) {
  HyperGroup g = scalar_schedule("l2", HyperKind::l2, 1, init, t);
  g.spread = Spread::entry;
  g.width = num_params;
  return g;
}

HyperGroup Hyperparameters::l2_on(const nn::ParamLayout& layout,
                                  const std::function<bool(const nn::ParamInfo&)>& chosen, double init, L2Share share,
                                  Transform t) {
  HyperGroup g = scalar_schedule("l2", HyperKind::l2, 1, init, t);
  g.tensor_group.assign(static_cast<std::size_t>(layout.size()), -1);
  std::int64_t tensors = 0, entries = 0;
  for (int k = 0; k < layout.size(); ++k) {
    if (!chosen(layout[k])) continue;
    g.tensor_group[static_cast<std::size_t>(k)] = share == L2Share::per_tensor ? static_cast<int>(tensors) : 0;
    if (share == L2Share::per_tensor) g.labels.push_back(layout[k].name);
    ++tensors;
    entries += layout[k].numel();
  }
  require(tensors > 0, "l2_on: no tensor of the layout (" + std::to_string(layout.size()) + " tensors) is chosen");
  switch (share) {
    case L2Share::one: g.spread = Spread::tensor_group; g.width = 1; break;
    case L2Share::per_tensor: g.spread = Spread::tensor_group; g.width = tensors; break;
    case L2Share::per_entry: g.spread = Spread::entry; g.width = entries; break;
  }
  return g;
}

HyperGroup Hyperparameters::l2_on(const nn::ParamLayout& layout, const std::vector<std::string>& names, double init,
                                  L2Share share, Transform t) {
  std::vector<bool> pick(static_cast<std::size_t>(layout.size()), false);
  for (const std::string& n : names) pick[static_cast<std::size_t>(layout.index(n))] = true;  // throws naming n
  return l2_on(layout, [&](const nn::ParamInfo& p) { return pick[static_cast<std::size_t>(layout.index(p.name))]; },
               init, share, t);
}

HyperGroup Hyperparameters::example_weights(std::int64_t num_examples, double init, Transform t) {
  HyperGroup g = scalar_schedule("weights", HyperKind::example_weight, 1, init, t);
  g.spread = Spread::free;
  g.width = num_examples;
  return g;
}

namespace {

/// Broadcasts one initial value to the group's size, or checks that there are size() of them.
void broadcast_initial(std::vector<double>& v, const HyperGroup& g, const std::string& who, const char* what) {
  if (v.size() == 1 && g.size() > 1) v.assign(static_cast<std::size_t>(g.size()), v[0]);
  require(static_cast<std::int64_t>(v.size()) == g.size(),
          who + ": " + std::to_string(v.size()) + " " + what + " for " + std::to_string(g.size()) + " entries (" +
              std::to_string(g.blocks) + " blocks x " + std::to_string(g.width) + ")");
}

}  // namespace

// One meaning of "initial value": `init` holds λ (what training uses), `init_raw` θ. Exactly one
// is given; the stored group holds both (θ₀ = inverse_transform(λ) entry by entry, or λ = the
// transform of the raw values given).
void Hyperparameters::set_initial_values(HyperGroup& group, const std::string& who) {
  require(group.init.empty() != group.init_raw.empty(),
          who + (group.init.empty() ? ": no initial value (set init, the value λ, or init_raw, the raw θ)"
                                    : ": both init (λ) and init_raw (θ) are set; give one"));
  if (!group.init_raw.empty()) {
    broadcast_initial(group.init_raw, group, who, "initial raw values");
    group.init.resize(group.init_raw.size());
    for (std::size_t i = 0; i < group.init_raw.size(); ++i) {
      require(std::isfinite(group.init_raw[i]), who + ": initial raw value " + std::to_string(i) + " is not finite");
      group.init[i] = apply_transform(group.transform, group.init_raw[i]);
    }
    return;
  }
  broadcast_initial(group.init, group, who, "initial values");
  group.init_raw.resize(group.init.size());
  try {
    for (std::size_t i = 0; i < group.init.size(); ++i) group.init_raw[i] = inverse_transform(group.transform, group.init[i]);
  } catch (const Error& e) {
    group.init_raw.clear();
    throw Error(who + ": " + e.what());
  }
}

void Hyperparameters::add(HyperGroup group) {
  const std::string who = "hyperparameter group '" + group.name + "'";
  require(!group.name.empty(), "a hyperparameter group needs a name");
  require(find(group.name) < 0, who + " is defined twice");
  require(group.blocks >= 1 && group.width >= 1,
          who + ": blocks and width must be >= 1, got " + std::to_string(group.blocks) + " x " + std::to_string(group.width));
  require(group.blocks == 1 || is_optimizer_defining(group.kind),
          who + ": only optimizer-defining hyperparameters (learning rate, momentum, weight decay) can be scheduled "
                "over blocks of steps; a " + std::string(kind_name(group.kind)) + " group has blocks = 1");
  if (group.spread == Spread::global)
    require(group.width == 1, who + ": a global group has width 1, got " + std::to_string(group.width));
  if (group.spread == Spread::tensor_group) {
    require(!group.tensor_group.empty(), who + ": a per-tensor group needs one group index per layout tensor");
    for (int k : group.tensor_group)
      require(k >= -1 && k < group.width, who + ": tensor group index " + std::to_string(k) + " outside [-1, " +
                                              std::to_string(group.width) + ")");
  }
  if (group.spread == Spread::entry && !group.tensor_group.empty()) {
    require(group.kind == HyperKind::l2, who + ": per entry of chosen tensors is for L2 groups only (a " +
                                             std::string(kind_name(group.kind)) + " group is per entry of all of w)");
    for (int k : group.tensor_group)
      require(k == 0 || k == -1, who + ": a per-entry group marks its tensors with 0 (chosen) or -1, got " +
                                     std::to_string(k));
  }
  require(group.spread != Spread::free || !is_optimizer_defining(group.kind),
          who + ": an optimizer-defining group is global, per tensor group or per entry");
  set_initial_values(group, who);
  const ValueRange valid = valid_range(group.kind);
  if (group.box) {
    const ValueRange& b = *group.box;
    require(!std::isnan(b.lower) && !std::isnan(b.upper), who + ": a bound of its box is NaN");
    require(b.lower < b.upper || (b.lower == b.upper && !b.lower_open && !b.upper_open),
            who + ": its box " + b.text() + " is empty");
    require(valid.contains(b), who + ": its box " + b.text() + " is outside the valid range " + valid.text() + " of " +
                                   kind_name(group.kind) + " hyperparameters");
  }
  const ValueRange range = range_of(group);
  (void)raw_range_of(group);  // throws when the transform cannot reach the range
  for (std::size_t i = 0; i < group.init.size(); ++i)
    if (!range.contains(group.init[i])) {
      std::ostringstream m;
      m << who << ": initial value " << group.init[i] << (group.init.size() > 1 ? " (entry " + std::to_string(i) + ")" : "")
        << " is outside " << (group.box ? "its box " : "the valid range ") << range.text() << " of "
        << kind_name(group.kind) << " hyperparameters";
      throw Error(m.str());
    }
  offsets_.push_back(size_);
  size_ += group.size();
  groups_.push_back(std::move(group));
}

int Hyperparameters::find(const std::string& name) const {
  for (std::size_t i = 0; i < groups_.size(); ++i)
    if (groups_[i].name == name) return static_cast<int>(i);
  return -1;
}

int Hyperparameters::find(HyperKind kind) const {
  for (std::size_t i = 0; i < groups_.size(); ++i)
    if (groups_[i].kind == kind) return static_cast<int>(i);
  return -1;
}

std::vector<int> Hyperparameters::find_all(HyperKind kind) const {
  std::vector<int> out;
  for (std::size_t i = 0; i < groups_.size(); ++i)
    if (groups_[i].kind == kind) out.push_back(static_cast<int>(i));
  return out;
}

bool Hyperparameters::has_loss_defining() const {
  for (const HyperGroup& g : groups_)
    if (!is_optimizer_defining(g.kind)) return true;
  return false;
}

bool Hyperparameters::has_optimizer_defining() const {
  for (const HyperGroup& g : groups_)
    if (is_optimizer_defining(g.kind)) return true;
  return false;
}

ValueRange Hyperparameters::range(int g) const { return range_of(group(g)); }

ValueRange Hyperparameters::raw_range(int g) const { return raw_range_of(group(g)); }

std::vector<std::int64_t> Hyperparameters::project(std::vector<double>& theta) const {
  require(static_cast<std::int64_t>(theta.size()) == size_, "project: θ has " + std::to_string(theta.size()) +
                                                                " entries for " + std::to_string(size_) + " hyperparameters");
  std::vector<std::int64_t> clipped;
  for (int g = 0; g < static_cast<int>(groups_.size()); ++g) {
    const ValueRange r = raw_range(g);
    if (std::isinf(r.lower) && std::isinf(r.upper)) continue;  // in range by construction
    for (std::int64_t i = offset(g); i < offset(g) + group(g).size(); ++i) {
      double& x = theta[static_cast<std::size_t>(i)];
      if (std::isnan(x) || r.contains(x)) continue;  // NaN: check_theta's to report
      x = r.clamp(x);
      clipped.push_back(i);
    }
  }
  return clipped;
}

void Hyperparameters::check_range(const Tensor& theta, const char* who) const {
  check_theta(theta, who);
  const std::vector<double> raw = theta.to_vector();
  for (std::int64_t i = 0; i < size_; ++i) {
    const int g = group_of(i);
    const double v = apply_transform(group(g).transform, raw[static_cast<std::size_t>(i)]);
    if (range(g).contains(v)) continue;
    std::ostringstream m;
    m << who << ": hyperparameter " << entry_name(i) << " = " << v << " is outside "
      << (group(g).box ? "its box " : "the valid range ") << range(g).text() << " of " << kind_name(group(g).kind)
      << " hyperparameters (raw value θ[" << i << "] = " << raw[static_cast<std::size_t>(i)] << ")";
    throw Error(m.str());
  }
}

Tensor Hyperparameters::initial(DType dtype) const {
  std::vector<double> v;
  v.reserve(static_cast<std::size_t>(size_));
  for (const HyperGroup& g : groups_) v.insert(v.end(), g.init_raw.begin(), g.init_raw.end());
  return Tensor::from(v, Shape{size_}, dtype);
}

std::int64_t Hyperparameters::block_of(int g, std::int64_t t, std::int64_t T) const {
  const std::int64_t blocks = group(g).blocks;
  if (blocks == 1 || T <= 0) return 0;
  // Block b covers steps [⌈bT/N⌉ ...): the N blocks split T steps as evenly as integers allow.
  return std::min(blocks - 1, std::max<std::int64_t>(0, t) * blocks / T);
}

Var Hyperparameters::values(const Var& theta, int g, std::int64_t t, std::int64_t T) const {
  const HyperGroup& G = group(g);
  const std::int64_t start = offset(g) + block_of(g, t, T) * G.width;
  return apply_transform(G.transform, slice(theta, start, Shape{G.width}));
}

Var Hyperparameters::per_parameter(const Var& theta, int g, std::int64_t t, std::int64_t T,
                                   const nn::ParamLayout* layout, std::int64_t num_params) const {
  const HyperGroup& G = group(g);
  const Var v = values(theta, g, t, T);
  switch (G.spread) {
    case Spread::global: return v;
    case Spread::entry:
      require(G.width == num_params, "hyperparameter group '" + G.name + "' has " + std::to_string(G.width) +
                                         " entries for " + std::to_string(num_params) + " parameters");
      return v;
    case Spread::tensor_group: {
      require(layout != nullptr && static_cast<int>(G.tensor_group.size()) == layout->size(),
              "hyperparameter group '" + G.name + "' is per tensor group: it needs the model's layout (" +
                  std::to_string(G.tensor_group.size()) + " tensor groups given)");
      // Each tensor's value broadcast over its elements, concatenated in layout order.
      std::vector<Var> parts;
      parts.reserve(G.tensor_group.size());
      Tape& tape = theta.tape();
      for (int k = 0; k < layout->size(); ++k) {
        const std::int64_t n = (*layout)[k].numel();
        const int j = G.tensor_group[static_cast<std::size_t>(k)];
        const Tensor ones = Tensor::full(Shape{n}, j < 0 ? 0.0 : 1.0, theta.dtype(), theta.device());
        parts.push_back(tape.constant(ones) * slice(v, std::max(j, 0), Shape{1}));
      }
      return concat(parts);
    }
    case Spread::free: break;
  }
  throw Error("hyperparameter group '" + G.name + "' cannot be spread over the parameters");
}

double Hyperparameters::value_at(const Tensor& theta, std::int64_t flat) const {
  return apply_transform(group(group_of(flat)).transform, theta.at(flat));
}

int Hyperparameters::group_of(std::int64_t flat) const {
  for (std::size_t g = groups_.size(); g-- > 0;)
    if (flat >= offsets_[g]) return static_cast<int>(g);
  throw Error("hyperparameter index " + std::to_string(flat) + " is out of range");
}

std::string Hyperparameters::entry_name(std::int64_t flat) const {
  const int g = group_of(flat);
  const HyperGroup& G = group(g);
  if (G.size() == 1) return G.name;
  const std::int64_t local = flat - offset(g), block = local / G.width, j = local % G.width;
  std::string s = G.name + "[";
  if (G.blocks > 1) s += std::to_string(block);
  if (G.blocks > 1 && G.width > 1) s += ",";
  if (G.width > 1)
    s += static_cast<std::int64_t>(G.labels.size()) > j ? G.labels[static_cast<std::size_t>(j)] : std::to_string(j);
  return s + "]";
}

void Hyperparameters::check_theta(const Tensor& theta, const char* who) const {
  require(theta.defined() && theta.numel() == size_,
          std::string(who) + ": θ has " + std::to_string(theta.defined() ? theta.numel() : 0) + " entries; the " +
              std::to_string(groups_.size()) + " hyperparameter groups need " + std::to_string(size_));
  const std::vector<double> values = theta.to_vector();  // one copy when θ is on a device
  for (std::int64_t i = 0; i < size_; ++i) {
    const double x = values[static_cast<std::size_t>(i)];
    if (!std::isfinite(x)) {
      std::ostringstream m;
      m << who << ": hyperparameter " << entry_name(i) << " is " << x << " (raw value θ[" << i << "])";
      throw Error(m.str());
    }
  }
}

std::string Hyperparameters::describe() const {
  std::ostringstream s;
  for (const HyperGroup& g : groups_) {
    s << g.name << ": " << kind_name(g.kind) << ", " << transform_name(g.transform) << ", " << g.blocks << " block"
      << (g.blocks == 1 ? "" : "s") << " x " << g.width << ", " << (g.box ? "box " : "range ") << range_of(g).text()
      << "\n";
  }
  return s.str();
}

Var HyperValues::operator[](const std::string& name) const {
  const int g = h_->find(name);
  if (g < 0) {
    std::string known;
    for (const HyperGroup& G : h_->groups()) known += (known.empty() ? "" : ", ") + G.name;
    throw Error("no hyperparameter group '" + name + "' (the problem has: " + (known.empty() ? "none" : known) + ")");
  }
  return h_->values(theta_, g, step_, horizon_);
}

Var HyperValues::first(HyperKind kind) const {
  const int g = h_->find(kind);
  return g < 0 ? Var() : h_->values(theta_, g, step_, horizon_);
}

Var HyperValues::group(int g) const {
  require(g >= 0 && g < static_cast<int>(h_->count()),
          "hyperparameter group index " + std::to_string(g) + " of " + std::to_string(h_->count()) + " groups");
  return h_->values(theta_, g, step_, horizon_);
}

}  // namespace gradhpo::hpo
