#include "online.h"

#include <zlib.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include "../methods/backward.h"
#include "../progress.h"
#include "../tensor_math.h"

namespace gradhpo::hpo {

// ---- the method loop ------------------------------------------------------------------------------

OnlineMethod::OnlineMethod(const BilevelProblem& problem, OuterOptions outer)
    : problem_(&problem), outer_(std::move(outer)) {
  problem.validate();
  outer_.validate(problem.hyper.count());
}

BilevelState OnlineMethod::init(const Tensor& theta0) const {
  BilevelState s;
  s.method = name();
  s.theta = theta0.defined() ? theta0.clone().to(DType::f64) : problem_->hyper.initial(DType::f64);
  problem_->hyper.check_theta(s.theta, name().c_str());
  s.inner = Unroll(*problem_, s.theta).initial_state();
  s.outer = OuterOptimizer(problem_->hyper, outer_).state();
  return s;
}

void OnlineMethod::apply_update(BilevelState& state, const Tensor& hypergradient) {
  OuterOptimizer opt(problem_->hyper, outer_);
  opt.state() = state.outer;
  opt.update(state.theta, hypergradient);
  state.outer = opt.state();
}

void OnlineMethod::place_inner(BilevelState& state) const {
  for (Tensor& part : state.inner.parts) part = part.to(problem_->w0.device());
}

OnlineStep OnlineMethod::step(BilevelState& state) {
  require(state.method == name(), name() + ": the state was made by '" + state.method + "'");
  place_inner(state);
  require(state.step < problem_->horizon,
          name() + ": the run is over (step " + std::to_string(state.step) + " of " + std::to_string(problem_->horizon) + ")");
  Unroll u(*problem_, state.theta);
  const std::int64_t t = state.step;
  const LossPass lp = u.gradient(state.inner.w(), t);
  InnerState after = u.step(state.inner, lp.grad, t);
  BilevelState next = state;  // the state is only replaced once everything succeeded
  OnlineStep out;
  out.train_loss = lp.loss;
  out.val_loss = std::numeric_limits<double>::quiet_NaN();
  out.hypergradient = step_hypergradient(u, next, state.inner, lp.grad, after, out.val_loss).to(Device::cpu).to(DType::f64);
  if (const std::int64_t i = first_non_finite(out.hypergradient); i >= 0)
    throw InnerDivergence(name() + ": the hypergradient of " + problem_->hyper.entry_name(i) + " at step " +
                              std::to_string(t) + " is not finite",
                          t);
  apply_update(next, out.hypergradient);
  next.inner = std::move(after);
  next.step = t + 1;
  next.train_losses.push_back(out.train_loss);
  next.val_losses.push_back(out.val_loss);
  state = std::move(next);
  return out;
}

Tensor OnlineMethod::hypergradient(const BilevelState& state) {
  BilevelState copy = state;
  place_inner(copy);
  Unroll u(*problem_, copy.theta);
  const LossPass lp = u.gradient(copy.inner.w(), copy.step);
  const InnerState after = u.step(copy.inner, lp.grad, copy.step);
  double val = 0;
  return step_hypergradient(u, copy, copy.inner, lp.grad, after, val).to(Device::cpu).to(DType::f64);
}

OnlineStep OnlineMethod::run(BilevelState& state, std::int64_t steps) {
  OnlineStep last;
  const std::int64_t end = steps < 0 ? problem_->horizon : std::min(problem_->horizon, state.step + steps);
  const std::int64_t first = state.step;
  report_progress("online", 0, end - first);
  while (state.step < end) {
    last = step(state);
    report_progress("online", state.step - first, end - first);
  }
  return last;
}

void OnlineMethod::refuse_groups(bool (*allowed)(const HyperGroup&), const char* what) const {
  for (const HyperGroup& g : problem_->hyper.groups())
    require(allowed(g), name() + " cannot learn hyperparameter group '" + g.name + "' (" + kind_name(g.kind) +
                            "): it handles " + what);
}

// ---- the one-step hypergradient (T1–T2) ---------------------------------------------------------

namespace detail {

Tensor one_step_indirect(Unroll& u, const InnerState& before, const Tensor& g, const Tensor& v, std::int64_t t,
                         double darts_radius) {
  InnerState adj;
  adj.parts.push_back(v);
  for (std::size_t i = 1; i < before.parts.size(); ++i)
    adj.parts.push_back(Tensor::zeros(before.parts[i].shape(), before.parts[i].dtype(), before.parts[i].device()));
  // ḡ and ∂Φ_t/∂θ^T v from the step tape.
  const StepVjp b = u.step_vjp(before, g, t, adj);
  Tensor h = b.adj_theta.clone();
  if (h.numel() == 0) return h;
  if (darts_radius <= 0) {
    // The exact mixed product ∂_θ(ḡ · ∇_w L_train(w_t)) (Luketina et al., Eq. 4's second term).
    axpy(h, 1.0, u.loss_pass(before.w(), t, b.adj_g, Tensor(), true).theta_tangent);
    return h;
  }
  // DARTS (Liu et al. 2019, Eq. 8): a central difference in weight space along ḡ.
  const double norm = std::sqrt(dot(b.adj_g, b.adj_g));
  if (norm == 0) return h;
  const double eps = darts_radius / norm;
  Tensor wp = before.w().clone(), wm = before.w().clone();
  axpy(wp, eps, b.adj_g);
  axpy(wm, -eps, b.adj_g);
  axpy(h, 0.5 / eps, u.theta_gradient(wp, t));
  axpy(h, -0.5 / eps, u.theta_gradient(wm, t));
  return h;
}

Tensor one_step_hypergradient(Unroll& u, const InnerState& before, const Tensor& g, const InnerState& after,
                              std::int64_t t, double darts_radius, double* val_loss) {
  // ∂_θ L_val(w_{t+1}) (the direct term) and v = ∇_w L_val(w_{t+1}).
  const Unroll::ValPass val = u.validation(after.w());
  if (val_loss) *val_loss = val.loss;
  Tensor h = val.grad_theta.clone();
  if (h.numel() > 0) axpy(h, 1.0, one_step_indirect(u, before, g, val.grad_w, t, darts_radius));
  return h;
}

}  // namespace detail

// ---- saving and loading -----------------------------------------------------------------------------

namespace {

constexpr char kMagic[8] = {'G', 'H', 'P', 'O', 'S', 'T', 'A', 'T'};
constexpr std::uint32_t kVersion = 1;

class Writer {
 public:
  template <class T> void pod(const T& v) {
    const char* p = reinterpret_cast<const char*>(&v);
    buf.insert(buf.end(), p, p + sizeof(T));
  }
  void bytes(const void* p, std::size_t n) {
    const char* c = static_cast<const char*>(p);
    buf.insert(buf.end(), c, c + n);
  }
  void str(const std::string& s) {
    pod<std::uint64_t>(s.size());
    bytes(s.data(), s.size());
  }
  void tensor(const Tensor& t) {
    pod<std::uint8_t>(t.defined() ? 1 : 0);
    if (!t.defined()) return;
    pod<std::uint8_t>(static_cast<std::uint8_t>(t.dtype()));
    pod<std::int32_t>(t.ndim());
    for (int i = 0; i < t.ndim(); ++i) pod<std::int64_t>(t.dim(i));
    const Tensor c = t.to(Device::cpu).clone();  // contiguous, in host memory
    bytes(c.raw(), c.nbytes());
  }
  template <class T> void vec(const std::vector<T>& v) {
    pod<std::uint64_t>(v.size());
    bytes(v.data(), v.size() * sizeof(T));
  }
  std::vector<char> buf;
};

class Reader {
 public:
  Reader(const std::vector<char>& b, std::string file) : buf(b), file_(std::move(file)) {}
  void need(std::size_t n) const {
    if (pos + n > buf.size()) throw Error("state file '" + file_ + "' is truncated (at byte " + std::to_string(pos) + ")");
  }
  template <class T> T pod() {
    need(sizeof(T));
    T v;
    std::memcpy(&v, buf.data() + pos, sizeof(T));
    pos += sizeof(T);
    return v;
  }
  std::string str() {
    const std::uint64_t n = pod<std::uint64_t>();
    need(n);
    std::string s(buf.data() + pos, n);
    pos += n;
    return s;
  }
  Tensor tensor() {
    if (pod<std::uint8_t>() == 0) return Tensor();
    const std::uint8_t dt = pod<std::uint8_t>();
    if (dt > 2) throw Error("state file '" + file_ + "': unknown dtype " + std::to_string(dt));
    const std::int32_t nd = pod<std::int32_t>();
    if (nd < 0 || nd > Shape::kMaxDims) throw Error("state file '" + file_ + "': a tensor with " + std::to_string(nd) + " dimensions");
    std::vector<std::int64_t> dims;
    for (int i = 0; i < nd; ++i) {
      dims.push_back(pod<std::int64_t>());
      if (dims.back() < 0) throw Error("state file '" + file_ + "': a negative tensor extent");
    }
    Tensor t = Tensor::empty(Shape(dims), static_cast<DType>(dt));
    need(t.nbytes());
    std::memcpy(t.raw(), buf.data() + pos, t.nbytes());
    pos += t.nbytes();
    return t;
  }
  template <class T> std::vector<T> vec() {
    const std::uint64_t n = pod<std::uint64_t>();
    need(n * sizeof(T));
    std::vector<T> v(n);
    if (n > 0) std::memcpy(v.data(), buf.data() + pos, n * sizeof(T));  // data() may be null when empty
    pos += n * sizeof(T);
    return v;
  }
  const std::vector<char>& buf;
  std::size_t pos = 0;

 private:
  std::string file_;
};

std::uint32_t crc_of(const char* p, std::size_t n) {
  return static_cast<std::uint32_t>(crc32(0L, reinterpret_cast<const Bytef*>(p), static_cast<uInt>(n)));
}

}  // namespace

void save_state(const BilevelState& s, const std::string& path) {
  Writer w;
  w.str(s.method);
  w.pod<std::int64_t>(s.step);
  w.pod<std::uint64_t>(s.rng);
  w.tensor(s.theta);
  w.pod<std::uint64_t>(s.inner.parts.size());
  for (const Tensor& t : s.inner.parts) w.tensor(t);
  w.vec(s.outer.step);
  w.vec(s.outer.last_sign);
  w.vec(s.outer.halvings);
  w.vec(s.outer.m);
  w.vec(s.outer.v);
  w.pod<std::int64_t>(s.outer.t);
  w.pod<std::uint64_t>(s.extra.size());
  for (const auto& [k, t] : s.extra) {
    w.str(k);
    w.tensor(t);
  }
  w.vec(s.train_losses);
  w.vec(s.val_losses);

  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    require(static_cast<bool>(f), "cannot write state file '" + tmp + "'");
    const std::uint64_t size = w.buf.size();
    const std::uint32_t crc = crc_of(w.buf.data(), w.buf.size());
    f.write(kMagic, sizeof kMagic);
    f.write(reinterpret_cast<const char*>(&kVersion), sizeof kVersion);
    f.write(reinterpret_cast<const char*>(&size), sizeof size);
    f.write(reinterpret_cast<const char*>(&crc), sizeof crc);
    f.write(w.buf.data(), static_cast<std::streamsize>(w.buf.size()));
    f.flush();
    require(static_cast<bool>(f), "writing state file '" + tmp + "' failed (disk full?)");
  }
  require(std::rename(tmp.c_str(), path.c_str()) == 0, "cannot rename '" + tmp + "' to '" + path + "'");
}

BilevelState load_state(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  require(static_cast<bool>(f), "cannot open state file '" + path + "'");
  std::vector<char> all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const std::size_t head = sizeof kMagic + sizeof kVersion + sizeof(std::uint64_t) + sizeof(std::uint32_t);
  require(all.size() >= head && std::memcmp(all.data(), kMagic, sizeof kMagic) == 0,
          "'" + path + "' is not a gradhpo state file (no GHPOSTAT header)");
  std::uint32_t version, crc;
  std::uint64_t size;
  std::memcpy(&version, all.data() + 8, 4);
  std::memcpy(&size, all.data() + 12, 8);
  std::memcpy(&crc, all.data() + 20, 4);
  require(version == kVersion, "state file '" + path + "' has format version " + std::to_string(version) +
                                   "; this build reads version " + std::to_string(kVersion));
  require(all.size() - head == size, "state file '" + path + "' is truncated: " + std::to_string(all.size() - head) +
                                         " of " + std::to_string(size) + " bytes");
  require(crc_of(all.data() + head, size) == crc, "state file '" + path + "' is corrupt (checksum mismatch)");
  const std::vector<char> body(all.begin() + static_cast<std::ptrdiff_t>(head), all.end());
  Reader r(body, path);
  BilevelState s;
  s.method = r.str();
  s.step = r.pod<std::int64_t>();
  s.rng = r.pod<std::uint64_t>();
  s.theta = r.tensor();
  const std::uint64_t parts = r.pod<std::uint64_t>();
  require(parts <= 8, "state file '" + path + "': " + std::to_string(parts) + " optimizer-state parts");
  for (std::uint64_t i = 0; i < parts; ++i) s.inner.parts.push_back(r.tensor());
  s.outer.step = r.vec<double>();
  s.outer.last_sign = r.vec<int>();
  s.outer.halvings = r.vec<int>();
  s.outer.m = r.vec<double>();
  s.outer.v = r.vec<double>();
  s.outer.t = r.pod<std::int64_t>();
  const std::uint64_t extras = r.pod<std::uint64_t>();
  for (std::uint64_t i = 0; i < extras; ++i) {
    std::string k = r.str();
    s.extra[k] = r.tensor();
  }
  s.train_losses = r.vec<double>();
  s.val_losses = r.vec<double>();
  require(r.pos == body.size(), "state file '" + path + "' has " + std::to_string(body.size() - r.pos) + " trailing bytes");
  return s;
}

}  // namespace gradhpo::hpo
