#include "layout.h"

#include <cstdio>

#include "../engine/ops/shape.h"

namespace gradhpo::nn {

Var ParamRef::view(const Var& w) const {
  require(present(), "ParamRef::view: the layer has no such tensor");
  return slice(w, offset, shape);
}

Tensor ParamRef::view(const Tensor& w) const {
  require(present(), "ParamRef::view: the layer has no such tensor");
  return w.flat_slice(offset, shape.numel()).reshape(shape);
}

ParamRef ParamLayout::add(const std::string& name, const Shape& shape, ParamRole role, std::int64_t fan_in,
                          std::int64_t fan_out) {
  require(!name.empty(), "ParamLayout::add: empty name");
  require(find(name) < 0, "ParamLayout::add: duplicate tensor name '" + name + "'");
  require(shape.numel() > 0, "ParamLayout::add: tensor '" + name + "' has no elements (" + shape.str() + ")");
  ParamInfo p;
  p.name = name;
  p.shape = shape;
  p.offset = numel_;
  p.role = role;
  p.fan_in = fan_in;
  p.fan_out = fan_out;
  params_.push_back(p);
  numel_ += shape.numel();
  return ref(size() - 1);
}

int ParamLayout::add_batch_norm(const std::string& name, std::int64_t channels) {
  batch_norms_.push_back({name, channels});
  return static_cast<int>(batch_norms_.size()) - 1;
}

int ParamLayout::find(const std::string& name) const {
  for (std::size_t i = 0; i < params_.size(); ++i)
    if (params_[i].name == name) return static_cast<int>(i);
  return -1;
}

int ParamLayout::index(const std::string& name) const {
  const int i = find(name);
  if (i >= 0) return i;
  std::string some;
  for (std::size_t j = 0; j < params_.size() && j < 6; ++j) some += (j ? ", " : "") + params_[j].name;
  if (params_.size() > 6) some += ", ...";
  throw Error("ParamLayout: no tensor named '" + name + "' (have " + some + ")");
}

ParamRef ParamLayout::ref(int i) const {
  const ParamInfo& p = (*this)[i];
  return ParamRef{i, p.offset, p.shape};
}

Tensor ParamLayout::init(std::uint64_t seed, InitScheme scheme, DType dtype) const {
  Tensor w = Tensor::empty(Shape{numel_}, dtype);
  for (std::size_t i = 0; i < params_.size(); ++i) {
    const ParamInfo& p = params_[i];
    Tensor part = w.flat_slice(p.offset, p.numel());
    Rng rng(derive_seed(seed, i));
    init_tensor(part, p.role, p.fan_in, p.fan_out, scheme, rng);
  }
  return w;
}

Tensor ParamLayout::mask(const std::vector<ParamRole>& roles, DType dtype) const {
  Tensor m = Tensor::zeros(Shape{numel_}, dtype);
  for (const ParamInfo& p : params_)
    for (ParamRole r : roles)
      if (p.role == r) m.flat_slice(p.offset, p.numel()).fill(1.0);
  return m;
}

std::string ParamLayout::summary() const {
  std::string out;
  char line[256];
  for (const ParamInfo& p : params_) {
    std::snprintf(line, sizeof line, "  %-28s %-18s offset %9lld  %9lld\n", p.name.c_str(), p.shape.str().c_str(),
                  static_cast<long long>(p.offset), static_cast<long long>(p.numel()));
    out += line;
  }
  std::snprintf(line, sizeof line, "  %zu tensors, %lld parameters\n", params_.size(), static_cast<long long>(numel_));
  return out + line;
}

ModelState ModelState::for_layout(const ParamLayout& layout, DType dtype) {
  ModelState s;
  for (const BatchNormInfo& b : layout.batch_norms()) {
    s.running_mean.push_back(Tensor::zeros(Shape{b.channels}, dtype));
    s.running_var.push_back(Tensor::full(Shape{b.channels}, 1.0, dtype));
  }
  return s;
}

ModelState ModelState::clone() const {
  ModelState s;
  s.momentum = momentum;
  for (const Tensor& t : running_mean) s.running_mean.push_back(t.clone());
  for (const Tensor& t : running_var) s.running_var.push_back(t.clone());
  return s;
}

ModelState ModelState::to(Device device) const {
  ModelState s;
  s.momentum = momentum;
  for (const Tensor& t : running_mean) s.running_mean.push_back(t.to(device).clone());
  for (const Tensor& t : running_var) s.running_var.push_back(t.to(device).clone());
  return s;
}

}  // namespace gradhpo::nn
