#include "space.h"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace gradhpo::hpo {

namespace {

/// The flat θ indices that `target` names: one entry, or every entry of a group.
std::vector<std::int64_t> resolve_target(const Hyperparameters& h, const std::string& target) {
  for (std::int64_t i = 0; i < h.size(); ++i)
    if (h.entry_name(i) == target) return {i};
  if (const int g = h.find(target); g >= 0) {
    std::vector<std::int64_t> all;
    for (std::int64_t k = 0; k < h.group(g).size(); ++k) all.push_back(h.offset(g) + k);
    return all;
  }
  std::string known;
  for (const HyperGroup& g : h.groups()) known += (known.empty() ? "" : ", ") + g.name;
  throw Error("search box: '" + target + "' is no hyperparameter entry or group (groups: " +
              (known.empty() ? "none" : known) + ")");
}

}  // namespace

Box::Box(const Hyperparameters& hyper, std::vector<Dimension> dimensions, Tensor base)
    : hyper_(&hyper), dims_(std::move(dimensions)) {
  require(!dims_.empty(), "search box: empty (give at least one dimension: target, lower, upper)");
  base_ = base.defined() ? base.to_vector() : hyper.initial(DType::f64).to_vector();
  require(static_cast<std::int64_t>(base_.size()) == hyper.size(),
          "search box: base θ has " + std::to_string(base_.size()) + " entries for " + std::to_string(hyper.size()) +
              " hyperparameters");
  std::vector<int> owner(base_.size(), -1);
  for (std::size_t d = 0; d < dims_.size(); ++d) {
    const Dimension& dim = dims_[d];
    const std::string who = "search box: dimension " + std::to_string(d) + " ('" + dim.target + "')";
    require(!std::isnan(dim.lower) && !std::isnan(dim.upper), who + ": a bound is NaN");
    require(std::isfinite(dim.lower) && std::isfinite(dim.upper), who + ": a bound is infinite");
    require(dim.lower <= dim.upper, who + ": lower bound " + std::to_string(dim.lower) + " > upper bound " +
                                        std::to_string(dim.upper));
    require(!dim.log_scale || dim.lower > 0,
            who + ": log scale needs bounds > 0, got lower = " + std::to_string(dim.lower));
    entries_.push_back(resolve_target(hyper, dim.target));
    for (std::int64_t i : entries_.back()) {
      const int other = owner[static_cast<std::size_t>(i)];
      require(other < 0, who + ": entry " + hyper.entry_name(i) + " is already in dimension " + std::to_string(other));
      owner[static_cast<std::size_t>(i)] = static_cast<int>(d);
    }
    // Both bounds must map to a finite θ through the group's transform (exp of 0, sigmoid of 1).
    const Transform t = hyper.group(hyper.group_of(entries_.back().front())).transform;
    for (double bound : {dim.lower, dim.upper}) {
      double raw = 0;
      try {
        raw = inverse_transform(t, bound);
      } catch (const Error&) {
        throw Error(who + ": bound " + std::to_string(bound) + " is outside the range of its " +
                    transform_name(t) + " transform");
      }
      require(std::isfinite(raw), who + ": bound " + std::to_string(bound) + " is outside the open range of its " +
                                      transform_name(t) + " transform");
    }
    // Both bounds must be values the group may take: inside its kind's valid range or its box
    // (Hyperparameters::range) — a search never trains at a value the outer loop's projection
    // would refuse.
    for (std::int64_t i : entries_.back()) {
      const int g = hyper.group_of(i);
      const ValueRange range = hyper.range(g);
      for (double bound : {dim.lower, dim.upper})
        if (!range.contains(bound)) {
          std::ostringstream m;
          m << who << ": " << (bound == dim.lower ? "lower" : "upper") << " bound " << bound << " is outside "
            << (hyper.group(g).box ? "the box " : "the valid range ") << range.text() << " of group '"
            << hyper.group(g).name << "' (" << kind_name(hyper.group(g).kind) << ")";
          throw Error(m.str());
        }
    }
  }
}

double Box::value(std::size_t d, double u) const {
  const Dimension& dim = dims_.at(d);
  if (u <= 0) return dim.lower;  // the bounds themselves, exactly (exp(log x) may miss x by an ulp)
  if (u >= 1) return dim.upper;
  if (dim.log_scale) {
    const double lo = std::log(dim.lower), hi = std::log(dim.upper);
    return std::clamp(std::exp(lo + u * (hi - lo)), dim.lower, dim.upper);
  }
  return std::clamp(dim.lower + u * (dim.upper - dim.lower), dim.lower, dim.upper);
}

std::vector<double> Box::values(const std::vector<double>& u) const {
  require(u.size() == dims_.size(), "search box: a point of " + std::to_string(u.size()) + " coordinates for " +
                                        std::to_string(dims_.size()) + " dimensions");
  std::vector<double> out;
  for (std::size_t d = 0; d < dims_.size(); ++d) out.push_back(value(d, u[d]));
  return out;
}

Tensor Box::theta(const std::vector<double>& u) const {
  const std::vector<double> lam = values(u);
  std::vector<double> th = base_;
  for (std::size_t d = 0; d < dims_.size(); ++d)
    for (std::int64_t i : entries_[d]) {
      const Transform t = hyper_->group(hyper_->group_of(i)).transform;
      th[static_cast<std::size_t>(i)] = inverse_transform(t, lam[d]);
    }
  return Tensor::from(th, Shape{static_cast<std::int64_t>(th.size())}, DType::f64);
}

std::string Box::describe(const std::vector<double>& u) const {
  const std::vector<double> lam = values(u);
  std::ostringstream s;
  s.precision(6);
  for (std::size_t d = 0; d < dims_.size(); ++d) s << (d ? ", " : "") << dims_[d].target << " = " << lam[d];
  return s.str();
}

}  // namespace gradhpo::hpo
