#include "loss.h"

#include <map>

#include "../engine/ops.h"

namespace gradhpo::nn {

Var weighted_cross_entropy(const Var& logits, const Tensor& labels, const Var& weights) {
  const Var l = cross_entropy_per_example(logits, labels);
  require(weights.numel() == l.numel(), "weighted_cross_entropy: " + std::to_string(weights.numel()) +
                                            " weights for a batch of " + std::to_string(l.numel()));
  return dot(weights, l) / static_cast<double>(l.numel());
}

Var l2_penalty(const Var& w, const Var& lam) {
  require(lam.numel() == 1 || lam.numel() == w.numel(),
          "l2_penalty: λ has " + std::to_string(lam.numel()) + " elements; expected 1 (global) or " +
              std::to_string(w.numel()) + " (per parameter)");
  if (lam.numel() == 1) return 0.5 * (reshape(lam, Shape{}) * dot(w, w));
  return weighted_l2(w, lam);  // one fused primitive (engine/ops/weighted_l2.h)
}

Var l2_penalty(const Var& w, double lam) { return (0.5 * lam) * dot(w, w); }

Var l2_penalty_grouped(const ParamLayout& layout, const Var& w, const Var& lam, const std::vector<int>& group) {
  require(static_cast<int>(group.size()) == layout.size(),
          "l2_penalty_grouped: " + std::to_string(group.size()) + " group entries for a layout of " +
              std::to_string(layout.size()) + " tensors");
  require(w.numel() == layout.numel(), "l2_penalty_grouped: w has " + std::to_string(w.numel()) +
                                           " elements, the layout " + std::to_string(layout.numel()));
  const std::int64_t G = lam.numel();
  // s_g = Σ_{k in g} ‖w_k‖², one scalar Var per group; then ½ λ · s in one dot product.
  std::vector<Var> sums(static_cast<std::size_t>(G));
  for (int k = 0; k < layout.size(); ++k) {
    const int g = group[static_cast<std::size_t>(k)];
    if (g < 0) continue;
    require(g < G, "l2_penalty_grouped: tensor '" + layout[k].name + "' is in group " + std::to_string(g) +
                       " but λ has " + std::to_string(G) + " elements");
    const Var wk = layout.ref(k).view(w);
    const Var s = dot(wk, wk);
    Var& slot = sums[static_cast<std::size_t>(g)];
    slot = slot.valid() ? slot + s : s;
  }
  for (std::int64_t g = 0; g < G; ++g)
    require(sums[static_cast<std::size_t>(g)].valid(),
            "l2_penalty_grouped: group " + std::to_string(g) + " has no tensor");
  return 0.5 * dot(lam, concat(sums));
}

Var l2_penalty_per_tensor(const ParamLayout& layout, const Var& w, const Var& lam) {
  std::vector<int> group(static_cast<std::size_t>(layout.size()));
  for (int k = 0; k < layout.size(); ++k) group[static_cast<std::size_t>(k)] = k;
  return l2_penalty_grouped(layout, w, lam, group);
}

std::vector<int> layer_groups(const ParamLayout& layout, std::vector<std::string>* names) {
  std::vector<int> group;
  std::map<std::string, int> ids;
  if (names) names->clear();
  for (const ParamInfo& p : layout.params()) {
    const std::size_t dot_pos = p.name.rfind('.');
    const std::string layer = dot_pos == std::string::npos ? p.name : p.name.substr(0, dot_pos);
    auto [it, inserted] = ids.emplace(layer, static_cast<int>(ids.size()));
    if (inserted && names) names->push_back(layer);
    group.push_back(it->second);
  }
  return group;
}

std::vector<int> weight_groups(const ParamLayout& layout, std::vector<std::string>* names) {
  std::vector<int> group;
  int next = 0;
  if (names) names->clear();
  for (const ParamInfo& p : layout.params()) {
    if (p.role == ParamRole::weight) {
      group.push_back(next++);
      if (names) names->push_back(p.name);
    } else {
      group.push_back(-1);
    }
  }
  return group;
}

std::int64_t count_correct(const Tensor& device_logits, const std::vector<std::int32_t>& labels) {
  const Tensor logits = device_logits.to(Device::cpu);  // B·C numbers: read on the host
  require(logits.ndim() == 2 && logits.dim(0) == static_cast<std::int64_t>(labels.size()),
          "count_correct: logits " + logits.shape().str() + " for " + std::to_string(labels.size()) + " labels");
  const std::int64_t B = logits.dim(0), C = logits.dim(1);
  std::int64_t correct = 0;
  dispatch_float(logits.dtype(), "count_correct", [&](auto zero) {
    using T = decltype(zero);
    const T* p = logits.data<T>();
    for (std::int64_t i = 0; i < B; ++i) {
      std::int64_t best = 0;
      for (std::int64_t j = 1; j < C; ++j)
        if (p[i * C + j] > p[i * C + best]) best = j;
      correct += best == labels[static_cast<std::size_t>(i)];
    }
  });
  return correct;
}

std::int64_t count_correct(const Tensor& logits, const Tensor& labels) {
  require(labels.dtype() == DType::i32, "count_correct: labels must be int32");
  const Tensor host = labels.to(Device::cpu);
  const std::int32_t* p = host.data<std::int32_t>();
  return count_correct(logits, std::vector<std::int32_t>(p, p + host.numel()));
}

}  // namespace gradhpo::nn
