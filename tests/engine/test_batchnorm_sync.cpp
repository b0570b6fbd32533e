// Synchronized batch norm (Tape::shard_sum): two shards of one batch, each on its own tape in
// its own thread, with an in-process shard sum standing in for MPI (shard 0's values first, as
// hpo/mpi sums in rank order). Each shard must get its rows of the whole batch's value and
// statistics; the shards' gradients, Hessian–vector and mixed products must add up to the
// whole batch's and their tangents be its rows; and the sharded loss's derivatives must match
// central finite differences of the sharded loss itself (float64).
#include "check_ad.h"

#include <array>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>

#include <gradhpo/engine/ops.h>

using namespace gradhpo;
using namespace gradhpo::testing;

namespace {

/// The shard sum of two in-process shards: each thread hands its values in, and both get
/// shard 0's + shard 1's back once both have arrived.
class TwoShardSum {
 public:
  Tape::ShardSum hook(int shard) {
    return [this, shard](double* values, std::int64_t count) { exchange(shard, values, count); };
  }
  int calls() const { return calls_; }

 private:
  void exchange(int shard, double* values, std::int64_t count) {
    std::unique_lock<std::mutex> lock(mutex_);
    in_[static_cast<std::size_t>(shard)].assign(values, values + count);
    const int round = round_;
    if (++arrived_ == 2) {
      REQUIRE(in_[0].size() == in_[1].size());  // both shards ran the same op
      sum_.resize(in_[0].size());
      for (std::size_t i = 0; i < sum_.size(); ++i) sum_[i] = in_[0][i] + in_[1][i];
      arrived_ = 0;
      ++round_;
      ++calls_;
      done_.notify_all();
    } else {
      done_.wait(lock, [&] { return round_ != round; });
    }
    std::copy(sum_.begin(), sum_.end(), values);
  }
  std::mutex mutex_;
  std::condition_variable done_;
  std::array<std::vector<double>, 2> in_;
  std::vector<double> sum_;
  int arrived_ = 0, round_ = 0, calls_ = 0;
};

/// body(shard, tape) for shards 0 and 1 at once, each on a tape of its own with the shard sum set.
template <class R> std::array<R, 2> on_two_shards(const std::function<R(int, Tape&)>& body) {
  TwoShardSum sum;
  std::array<R, 2> out;
  std::array<std::exception_ptr, 2> failed;
  auto run = [&](int s) {
    try {
      Tape tape;
      tape.set_shard_sum(sum.hook(s));
      out[static_cast<std::size_t>(s)] = body(s, tape);
    } catch (...) {
      failed[static_cast<std::size_t>(s)] = std::current_exception();
    }
  };
  std::thread other(run, 1);
  run(0);
  other.join();
  for (const std::exception_ptr& e : failed)
    if (e) std::rethrow_exception(e);
  return out;
}

enum class Op { standardize, norm, norm_relu };

/// A batch of x [N, C, ...] split at row `split`, and a scalar loss of a batch-norm op over rows
/// [begin, end) that exercises every derivative: w = [γ (C) | β (C) | a (last dim)], x = X ⊙
/// (a + 1) ⊙ λ (broadcast over the last dimension), y = op(x, γ, β), L = Σ c⊙y + ½ Σ (d⊙y)²
/// with c, d fixed per row (so the shards' losses add up to the whole batch's). Where the last
/// dimension is the channels' ([N, C]), a and λ scale whole channels, which x̂ does not see.
struct Batch {
  Shape xs;
  std::int64_t split;
  Op op;
  Tensor X = random_tensor(xs, 61, -2, 3), c = random_tensor(xs, 62), d = random_tensor(xs, 63);

  std::int64_t C() const { return xs[1]; }
  std::int64_t last() const { return xs[xs.ndim() - 1]; }
  std::int64_t row() const { return xs.numel() / xs[0]; }
  std::int64_t wsize() const { return 2 * C() + last(); }
  std::int64_t lsize() const { return std::max(last(), C() + 1); }
  std::int64_t begin(int shard) const { return shard == 0 ? 0 : split; }
  std::int64_t end(int shard) const { return shard == 0 ? split : xs[0]; }
  /// Rows [b, e) of a tensor shaped like the batch.
  Tensor rows(const Tensor& t, std::int64_t b, std::int64_t e) const {
    std::vector<std::int64_t> dims = xs.dims();
    dims[0] = e - b;
    return t.flat_slice(b * row(), (e - b) * row()).reshape(Shape(dims)).clone();
  }
  Var y(const Var& W, const Var& Lam, std::int64_t b, std::int64_t e) const {
    Tape& t = W.tape();
    const Var x = t.constant(rows(X, b, e)) * (slice(W, 2 * C(), Shape{last()}) + 1.0) * slice(Lam, 0, Shape{last()});
    const Var g = slice(W, 0, Shape{C()}) * slice(Lam, 0, Shape{C()}) + 1.0;
    const Var be = slice(W, C(), Shape{C()}) * slice(Lam, 1, Shape{C()}) - 0.1;
    switch (op) {
      case Op::standardize: return batch_standardize(x, 1e-5);
      case Op::norm: return batch_norm_train(x, g, be, 1e-3);
      case Op::norm_relu: return batch_norm_relu_train(x, g, be, 1e-3);
    }
    return {};
  }
  Var loss(const Var& W, const Var& Lam, std::int64_t b, std::int64_t e) const {
    Tape& t = W.tape();
    const Var yy = y(W, Lam, b, e);
    const Var dy = yy * t.constant(rows(d, b, e));
    return sum(yy * t.constant(rows(c, b, e))) + 0.5 * sum(dy * dy);
  }
};

Var flat(const Var& y) { return reshape(y, Shape{y.numel()}); }

std::vector<double> added(const Tensor& a, const Tensor& b) {
  std::vector<double> out = a.to_vector();
  const std::vector<double> bv = b.to_vector();
  for (std::size_t i = 0; i < out.size(); ++i) out[i] += bv[i];
  return out;
}

struct ShardResult {
  MixedResult mixed;       // value, ∇_w, ∇_λ, H v, (∂²/∂λ∂w) v for one direction
  HvpResult hvp3;          // H V for three directions
  Tensor tangent;          // ẏ along v: the shard's rows
  Tensor y, mean, var;     // the value and the batch statistics it reported
};

const std::vector<Batch> kBatches = {
    {Shape{6, 3, 2, 2}, 4, Op::norm}, {Shape{6, 3, 2, 2}, 4, Op::norm_relu},
    {Shape{5, 3, 1, 4}, 2, Op::standardize}, {Shape{5, 4}, 3, Op::norm}, {Shape{3, 2, 1, 3}, 1, Op::norm_relu}};

std::string op_name(Op op) {
  return op == Op::standardize ? "batch_standardize" : op == Op::norm ? "batch_norm_train" : "batch_norm_relu_train";
}

}  // namespace

TEST_CASE("synchronized batch norm over two shards: the whole batch's value, statistics and derivatives") {
  for (const Batch& bt : kBatches) {
    INFO(op_name(bt.op) << " on x " << bt.xs.str() << " split after row " << bt.split);
    const Tensor w = random_tensor(Shape{bt.wsize()}, 64), lam = random_tensor(Shape{bt.lsize()}, 65, 0.5, 1.5);
    const Tensor v = random_tensor(Shape{bt.wsize()}, 66), V = random_tensor(Shape{3, bt.wsize()}, 67);
    auto run = [&](Tape& tape, std::int64_t b, std::int64_t e) {
      auto f = [&](const Var& W, const Var& L) { return bt.loss(W, L, b, e); };
      ShardResult r;
      r.mixed = mixed_vjp(tape, f, w, lam, v, /*with_hvp=*/true);
      r.hvp3 = hvp(tape, [&](const Var& W) { return f(W, W.tape().constant(lam)); }, w, V);
      r.tangent = jvp(tape, [&](const Var& W) { return flat(bt.y(W, W.tape().constant(lam), b, e)); }, w, v)
                      .tangent;
      tape.reset();
      const Var W = tape.constant(w), Lam = tape.constant(lam);
      r.y = bt.y(W, Lam, b, e).value();
      if (bt.op != Op::standardize) {  // the statistics the op hands out for running averages
        const Var x = tape.constant(bt.rows(bt.X, b, e)) * (slice(W, 2 * bt.C(), Shape{bt.last()}) + 1.0) *
                      slice(Lam, 0, Shape{bt.last()});
        batch_norm_train(x, tape.constant(Tensor::full(Shape{bt.C()}, 1.0, DType::f64)),
                         tape.constant(Tensor::zeros(Shape{bt.C()}, DType::f64)), 1e-3, &r.mean, &r.var);
      }
      return r;
    };
    Tape whole_tape;
    const ShardResult whole = run(whole_tape, 0, bt.xs[0]);
    const std::array<ShardResult, 2> shard =
        on_two_shards<ShardResult>([&](int s, Tape& tape) { return run(tape, bt.begin(s), bt.end(s)); });

    for (int s = 0; s < 2; ++s) {
      const ShardResult& r = shard[static_cast<std::size_t>(s)];
      const std::int64_t b = bt.begin(s), e = bt.end(s);
      CHECK(rel_error(r.y.to_vector(), bt.rows(whole.y, b, e).to_vector(), 1e-300) <= 1e-13);
      CHECK(rel_error(r.tangent.to_vector(), whole.tangent.flat_slice(b * bt.row(), (e - b) * bt.row()).to_vector()) <=
            1e-12);
      if (bt.op != Op::standardize) {
        CHECK(rel_error(r.mean.to_vector(), whole.mean.to_vector()) <= 1e-13);
        CHECK(rel_error(r.var.to_vector(), whole.var.to_vector()) <= 1e-13);
      }
    }
    const MixedResult &a = shard[0].mixed, &b = shard[1].mixed;
    CHECK(std::abs(a.value + b.value - whole.mixed.value) <= 1e-12 * std::abs(whole.mixed.value));
    CHECK(rel_error(added(a.grad_w, b.grad_w), whole.mixed.grad_w.to_vector()) <= 1e-12);
    CHECK(rel_error(added(a.grad_lam, b.grad_lam), whole.mixed.grad_lam.to_vector()) <= 1e-12);
    CHECK(rel_error(added(a.hvp, b.hvp), whole.mixed.hvp.to_vector()) <= 1e-12);
    CHECK(rel_error(added(a.mixed, b.mixed), whole.mixed.mixed.to_vector()) <= 1e-12);
    CHECK(rel_error(added(shard[0].hvp3.hvp, shard[1].hvp3.hvp), whole.hvp3.hvp.to_vector()) <= 1e-12);
    // Per-shard statistics (no shard sum) are not the whole batch's: the option matters.
    Tape alone;
    const Tensor y0 = bt.y(alone.constant(w), alone.constant(lam), 0, bt.split).value();
    CHECK(rel_error(y0.to_vector(), bt.rows(whole.y, 0, bt.split).to_vector()) > 1e-3);
  }
}

TEST_CASE("synchronized batch norm: the sharded loss's derivatives against finite differences") {
  // F(w, λ) = L_0 + L_1, each shard's loss on its own tape with the shard sum; the gradient,
  // H v, the mixed product and the tangents of y are checked against central differences of F,
  // of the shards' gradients and of y along v.
  for (const Batch& bt : {kBatches[0], kBatches[2], kBatches[3]}) {
    INFO(op_name(bt.op) << " on x " << bt.xs.str() << " split after row " << bt.split);
    const Tensor w = random_tensor(Shape{bt.wsize()}, 71), lam = random_tensor(Shape{bt.lsize()}, 72, 0.5, 1.5);
    const Tensor v = random_tensor(Shape{bt.wsize()}, 73);
    auto at = [&](double t) { return Tensor::from(fd::axpy(w.to_vector(), t, v.to_vector()), w.shape(), DType::f64); };
    struct Pass {
      double value = 0;
      std::vector<double> grad_w, grad_lam, hvp, mixed, y, tangent;
    };
    // Everything at w + t v, summed over the shards (y and its tangent: the shards' rows in order).
    auto sharded = [&](double t) {
      const Tensor wt = at(t);
      const std::array<Pass, 2> p = on_two_shards<Pass>([&](int s, Tape& tape) {
        const std::int64_t b = bt.begin(s), e = bt.end(s);
        const MixedResult m =
            mixed_vjp(tape, [&](const Var& W, const Var& L) { return bt.loss(W, L, b, e); }, wt, lam, v, true);
        const JvpResult j =
            jvp(tape, [&](const Var& W) { return flat(bt.y(W, W.tape().constant(lam), b, e)); }, wt, v);
        return Pass{m.value, m.grad_w.to_vector(), m.grad_lam.to_vector(), m.hvp.to_vector(), m.mixed.to_vector(),
                    j.value.to_vector(), j.tangent.to_vector()};
      });
      Pass sum = p[0];
      sum.value += p[1].value;
      for (auto [mine, other] : {std::pair{&sum.grad_w, &p[1].grad_w}, std::pair{&sum.grad_lam, &p[1].grad_lam},
                                 std::pair{&sum.hvp, &p[1].hvp}, std::pair{&sum.mixed, &p[1].mixed}})
        for (std::size_t i = 0; i < mine->size(); ++i) (*mine)[i] += (*other)[i];
      sum.y.insert(sum.y.end(), p[1].y.begin(), p[1].y.end());
      sum.tangent.insert(sum.tangent.end(), p[1].tangent.begin(), p[1].tangent.end());
      return sum;
    };
    const Pass here = sharded(0);
    double directional = 0;
    for (std::size_t i = 0; i < here.grad_w.size(); ++i) directional += here.grad_w[i] * v.to_vector()[i];
    const double fd_value = fd::derivative([&](double t) { return sharded(t).value; });
    CHECK(std::abs(directional - fd_value) <= 1e-6 * std::max(1.0, std::abs(fd_value)));
    CHECK(rel_error(here.hvp, central_diff([&](double t) { return sharded(t).grad_w; })) <= 1e-6);
    CHECK(rel_error(here.mixed, central_diff([&](double t) { return sharded(t).grad_lam; })) <= 1e-6);
    CHECK(rel_error(here.tangent, central_diff([&](double t) { return sharded(t).y; })) <= 1e-6);
  }
}

TEST_CASE("synchronized batch norm: one shard sum per op and rule, and a tape that lost its sum is refused") {
  const Batch bt{Shape{6, 3, 2, 2}, 4, Op::norm};
  const Tensor w = random_tensor(Shape{bt.wsize()}, 64), lam = random_tensor(Shape{bt.lsize()}, 65, 0.5, 1.5);
  TwoShardSum counted;
  // A gradient: the value's two sums (Σ x with the count, then Σ (x − μ)²) and the adjoint's one.
  std::array<int, 2> calls{};
  std::thread other([&] {
    Tape t;
    t.set_shard_sum(counted.hook(1));
    value_and_grad(t, [&](const Var& W) { return bt.loss(W, W.tape().constant(lam), 4, 6); }, w);
  });
  {
    Tape t;
    t.set_shard_sum(counted.hook(0));
    value_and_grad(t, [&](const Var& W) { return bt.loss(W, W.tape().constant(lam), 0, 4); }, w);
  }
  other.join();
  calls[0] = counted.calls();
  CHECK(calls[0] == 3);
  // Recorded with a shard sum, differentiated without one: an error, not per-shard means.
  const std::string message = error_message([&] {
    Tape t;
    t.set_shard_sum([](double*, std::int64_t) {});  // a "sum" over one shard
    t.reset();
    const Var W = t.variable(w);
    const Var L = bt.loss(W, t.constant(lam), 0, 6);
    t.set_shard_sum({});
    Request r;
    r.output = L;
    r.gradients = {W};
    t.differentiate(r);
  });
  CHECK(message.find("batch_norm_train: recorded with synchronized batch statistics") != std::string::npos);
}
