#include "classification.h"

#include <algorithm>
#include <memory>
#include <mutex>
#include <random>

#include "../../data/batches.h"
#include "../../data/random.h"
#include "../../engine/ops.h"
#include "../../nn/loss.h"
#include "../shard.h"

namespace gradhpo::hpo {

namespace {

/// The training set and the record order of each step: what the training loss reads.
struct TrainData {
  data::Dataset set;
  Tensor all_x, all_y;  // full batch: the whole set, converted once
  // Mini-batches: step t takes batch t mod b of epoch t / b (b batches per epoch, the last partial
  // one dropped), each epoch in its seeded order. Computed when asked, one epoch's order at a
  // time, so that a problem of T = 57 million steps costs O(N), not O(T·B) (a list of every
  // step's records grew at ~100 MB/s before a method could refuse the run for memory).
  std::unique_ptr<data::BatchIterator> batches;
  std::int64_t batch_size = 0, per_epoch = 0;
  std::mutex order_mutex;  // the losses may be called from several threads

  std::vector<std::int64_t> records(std::int64_t t) {
    const std::lock_guard<std::mutex> lock(order_mutex);
    const std::int64_t epoch = t / per_epoch, first = (t % per_epoch) * batch_size;
    if (batches->epoch() != epoch) batches->start_epoch(epoch);
    const std::vector<std::int64_t>& order = batches->order();
    return {order.begin() + first, order.begin() + first + batch_size};
  }
};

/// ½ Σ λ w² of one L2 group (global, per tensor group, per entry of w, or per entry of the
/// tensors its tensor_group chooses: Hyperparameters::l2_on).
Var l2_term(const Var& w, const Var& lam, const HyperGroup& g, const nn::ParamLayout& layout) {
  switch (g.spread) {
    case Spread::global: return nn::l2_penalty(w, lam);
    case Spread::entry: {
      if (g.tensor_group.empty()) return nn::l2_penalty(w, lam);
      std::vector<Var> chosen;
      for (int k = 0; k < layout.size(); ++k)
        if (g.tensor_group[static_cast<std::size_t>(k)] >= 0) chosen.push_back(layout.ref(k).view(w));
      return nn::l2_penalty(chosen.size() == 1 ? chosen[0] : concat(chosen), lam);
    }
    case Spread::tensor_group: return nn::l2_penalty_grouped(layout, w, lam, g.tensor_group);
    case Spread::free: break;
  }
  throw Error("L2 hyperparameter group '" + g.name + "' must be global, per tensor group or per entry");
}

/// The loss-defining groups this task reads, found by kind (never by name): every L2 group and
/// at most one example-weight group. Any other loss-defining group would never be read.
struct LossGroups {
  std::vector<int> l2;
  int weights = -1;
};

LossGroups loss_groups(const Hyperparameters& hyper, std::int64_t train_size) {
  LossGroups out;
  out.l2 = hyper.find_all(HyperKind::l2);
  const std::vector<int> weights = hyper.find_all(HyperKind::example_weight);
  require(weights.size() <= 1, "classification problem: two example-weight groups ('" +
                                   (weights.size() > 1 ? hyper.group(weights[0]).name + "' and '" +
                                                             hyper.group(weights[1]).name : std::string()) +
                                   "'); one weight per training example is one group");
  if (!weights.empty()) {
    out.weights = weights[0];
    const HyperGroup& g = hyper.group(out.weights);
    require(g.width == train_size, "hyperparameter group '" + g.name + "' (example weights) has " +
                                       std::to_string(g.width) + " entries for " + std::to_string(train_size) +
                                       " training examples");
  }
  for (const HyperGroup& g : hyper.groups())
    require(g.kind != HyperKind::loss,
            "hyperparameter group '" + g.name + "' (kind loss) is never read: a classification problem's training "
            "loss reads L2 groups (HyperKind::l2) and example weights (HyperKind::example_weight); a value of "
            "your own needs a loss of your own (BilevelProblem::train_loss)");
  return out;
}

/// Per-example weights of the batch's records: λ_{i_1}, ..., λ_{i_B} as one [B] Var.
Var gather(const Var& lam, const std::vector<std::int64_t>& indices) {
  std::vector<Var> parts;
  parts.reserve(indices.size());
  for (std::int64_t i : indices) parts.push_back(slice(lam, i, Shape{1}));
  return concat(parts);
}

}  // namespace

nn::Evaluation ClassificationTask::evaluate(const Tensor& w, const data::Dataset& d) const {
  nn::Evaluation e;
  Tape tape;
  tape.set_recording(false);
  double loss_sum = 0;
  for (std::int64_t start = 0; start < d.size(); start += 500) {
    const std::int64_t n = std::min<std::int64_t>(500, d.size() - start);
    const Tensor x = nn::batch_rows(d.images, start, n, w.dtype()).to(w.device());
    const std::vector<std::int32_t> y(d.labels.begin() + start, d.labels.begin() + start + n);
    const Var logits = model->forward(tape.variable(w), x, nn::Context::train(nullptr));
    loss_sum += cross_entropy(logits, Tensor::from_labels(y).to(w.device())).item() * static_cast<double>(n);
    e.correct += nn::count_correct(logits.value(), y);
    e.count += n;
    tape.reset();
  }
  e.loss = e.count ? loss_sum / static_cast<double>(e.count) : 0;
  e.accuracy = e.count ? static_cast<double>(e.correct) / static_cast<double>(e.count) : 0;
  return e;
}

ClassificationTask make_classification_task(std::shared_ptr<const nn::Model> model, const data::Dataset& train,
                                            const data::Dataset& val, Hyperparameters hyper,
                                            nn::OptimizerConfig optimizer, std::int64_t horizon,
                                            const ClassificationOptions& o) {
  require(model != nullptr, "classification problem: no model");
  train.check();
  val.check();
  require(train.size() >= 1, "classification problem: the training set '" + train.name + "' is empty");
  require(val.size() >= 1, "classification problem: the validation set '" + val.name + "' is empty");
  require(horizon >= 1, "classification problem: the horizon must be >= 1 step, got " + std::to_string(horizon));
  require(o.batch_size >= 0 && o.batch_size <= train.size(),
          "classification problem: batch size " + std::to_string(o.batch_size) + " for a training set of " +
              std::to_string(train.size()) + " (expected 0 for full batch, or 1.." + std::to_string(train.size()) + ")");
  require(o.val_subset >= 0, "classification problem: the validation subset size must be >= 0");
  const LossGroups reads = loss_groups(hyper, train.size());

  ClassificationTask task;
  task.model = model;
  BilevelProblem& p = task.problem;
  p.w0 = (o.w0.defined() ? o.w0.reshape(Shape{o.w0.numel()}) : model->init(o.init_seed, nn::InitScheme::pytorch, o.dtype))
             .to(o.device);
  require(p.w0.numel() == model->num_params(), "classification problem: w0 has " + std::to_string(p.w0.numel()) +
                                                   " entries; the model has " + std::to_string(model->num_params()) +
                                                   " parameters");
  const DType dtype = p.w0.dtype();
  p.hyper = std::move(hyper);
  p.optimizer = std::move(optimizer);
  p.horizon = horizon;
  p.layout = &model->layout();
  p.loss_bound = o.loss_bound;

  auto data = std::make_shared<TrainData>();
  data->set = train;
  if (o.batch_size == 0) {
    data->all_x = train.images.to(dtype).to(o.device);
    data->all_y = train.label_tensor().to(o.device);
  } else {
    data->batches = std::make_unique<data::BatchIterator>(train, o.batch_size, o.batch_seed, /*shuffle=*/true,
                                                          /*drop_last=*/true);
    data->batch_size = o.batch_size;
    data->per_epoch = data->batches->batches_per_epoch();
  }
  std::vector<std::pair<int, HyperGroup>> l2;  // index and a copy of each L2 group (the loss outlives `hyper`)
  for (int g : reads.l2) {
    l2.emplace_back(g, p.hyper.group(g));
    l2.back().second.init.clear();  // the loss needs the spread, not the P initial values
    l2.back().second.init_raw.clear();
  }
  const int weights_group = reads.weights;
  // Data-parallel: the shard of the full batch is fixed; a mini-batch's is cut at each step.
  const int shard_count = o.shard_count;
  shard_of(o.batch_size == 0 ? train.size() : o.batch_size, o.shard_rank, shard_count);  // checks the split
  std::vector<std::int64_t> full_shard;  // the full batch's records of this shard (sharded runs only)
  if (o.batch_size == 0 && shard_count > 1) {
    const Shard sh = shard_of(train.size(), o.shard_rank, shard_count);
    for (std::int64_t i = sh.begin; i < sh.end; ++i) full_shard.push_back(i);
    const data::Dataset b = train.subset(full_shard);
    data->all_x = b.images.to(dtype).to(o.device);
    data->all_y = b.label_tensor().to(o.device);
  }
  const double batch_rows = static_cast<double>(o.batch_size == 0 ? train.size() : o.batch_size);
  p.train_loss = [model, data, weights_group, l2, horizon, shard_count, shard_rank = o.shard_rank, full_shard,
                  batch_rows](const Var& w, const HyperValues& h, std::int64_t t) {
    Tensor x, y;
    const std::vector<std::int64_t>* records = full_shard.empty() ? nullptr : &full_shard;
    std::vector<std::int64_t> step_records;
    if (!data->batches) {
      x = data->all_x;
      y = data->all_y;
    } else {
      require(t >= 0 && t < horizon, "classification problem: step " + std::to_string(t) + " outside the horizon [0, " +
                                         std::to_string(horizon) + ")");
      step_records = data->records(t);
      if (shard_count > 1) {
        const Shard sh = shard_of(static_cast<std::int64_t>(step_records.size()), shard_rank, shard_count);
        step_records = std::vector<std::int64_t>(step_records.begin() + sh.begin, step_records.begin() + sh.end);
      }
      records = &step_records;
      const data::Dataset b = data->set.subset(*records);
      x = b.images.to(w.dtype()).to(w.device());
      y = b.label_tensor().to(w.device());
    }
    const Var logits = model->forward(w, x, nn::Context::train(nullptr));
    Var loss;
    if (weights_group >= 0) {
      const Var lam = h.group(weights_group);
      loss = nn::weighted_cross_entropy(logits, y, records ? gather(lam, *records) : lam);
    } else {
      loss = cross_entropy(logits, y);
    }
    for (const auto& [g, group] : l2) loss = loss + l2_term(w, h.group(g), group, model->layout());
    // Data-parallel: the shard's own loss weighted by its share of the batch, so the shards'
    // losses add up to the batch's (the L2 terms too: the shares sum to 1).
    if (shard_count > 1) loss = loss * (static_cast<double>(x.dim(0)) / batch_rows);
    return loss;
  };

  data::Dataset v = val;
  if (o.val_subset > 0 && o.val_subset < val.size()) {
    std::vector<std::int64_t> idx(static_cast<std::size_t>(val.size()));
    for (std::size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<std::int64_t>(i);
    std::mt19937_64 rng(data::derive_seed(o.val_seed, 0));
    data::shuffle_in_place(idx, rng);
    idx.resize(static_cast<std::size_t>(o.val_subset));
    std::sort(idx.begin(), idx.end());
    v = val.subset(idx);
  }
  const Tensor vx = v.images.to(dtype).to(o.device), vy = v.label_tensor().to(o.device);
  p.val_loss = [model, vx, vy](const Var& w, const HyperValues&) {
    return cross_entropy(model->forward(w, vx, nn::Context::train(nullptr)), vy);
  };
  p.description = "L_train: cross-entropy on " +
                  (o.batch_size == 0 ? std::string("the whole training set") : std::to_string(o.batch_size) + "-example batches") +
                  " of '" + train.name + "' (" + std::to_string(train.size()) + " examples); L_val: mean cross-entropy on " +
                  std::to_string(v.size()) + " examples of '" + val.name + "'" +
                  (o.val_subset > 0 && o.val_subset < val.size() ? " (a fixed seeded subset)" : "") +
                  "; batch norm, if any, in training mode (batch statistics)";
  p.validate();
  return task;
}

}  // namespace gradhpo::hpo
