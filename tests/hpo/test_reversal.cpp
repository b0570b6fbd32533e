// Exact reversal (Maclaurin et al. 2015, Algorithm 3): bit-for-bit recovery of w_0, v_0 after
// long runs, the information buffer's size, and the memory of the three reverse policies.
#include "toy.h"

#include <array>
#include <cstring>
#include <random>
#include <tuple>

#ifdef _OPENMP
#include <omp.h>
#endif

#include <gradhpo/hpo/methods/exact_rep.h>
#include <gradhpo/hpo/methods/reverse.h>
#include <gradhpo/hpo/tensor_math.h>
#include <gradhpo/hpo/unroll.h>
#include <gradhpo/nn/models.h>

using namespace gradhpo;
using namespace gradhpo::testing;

TEST_CASE("information buffer: push and pop are inverse, in any bases") {
  hpo::InfoBuffer b(1);
  std::vector<std::pair<std::uint32_t, std::uint32_t>> pushed;
  std::uint32_t x = 12345;
  for (int k = 0; k < 500; ++k) {
    x = x * 1103515245u + 12345u;
    const std::uint32_t base = 2 + x % 70000, r = (x >> 7) % base;
    b.push(0, r, base);
    pushed.push_back({r, base});
  }
  CHECK(b.bits() > 500 * 1.0);
  for (std::size_t k = pushed.size(); k-- > 0;) REQUIRE(b.pop(0, pushed[k].second) == pushed[k].first);
  CHECK(b.bits() == 0);
}

TEST_CASE("rational approximations of the momentum") {
  CHECK(hpo::rational_approximation(0.9).n == 9);
  CHECK(hpo::rational_approximation(0.9).d == 10);
  CHECK(hpo::rational_approximation(0.5).d == 2);
  CHECK(hpo::rational_approximation(0.99).d == 100);
  const hpo::Rational r = hpo::rational_approximation(0.123456789);
  CHECK(r.d <= 65536);
  CHECK(std::abs(r.value() - 0.123456789) <= 1.0 / (static_cast<double>(r.d) * 65536.0));  // best approximations
}

TEST_CASE("exact reversal recovers w_0 and v_0 bit for bit after 1000 steps, for beta 0.5, 0.9, 0.99") {
  for (double beta : {0.5, 0.9, 0.99}) {
    ToySpec spec;
    spec.horizon = 1000;
    spec.momentum = beta;
    spec.lr = 0.3 * (1 - beta);  // the same effective step lr / (1 − β) for every β
    spec.learn_lr = spec.learn_momentum = spec.learn_weight_decay = false;
    spec.l2 = ToySpec::L2::none;
    spec.example_weights = false;
    const hpo::ClassificationTask task = toy_task(spec);
    const hpo::BilevelProblem& p = task.problem;
    hpo::Unroll u(p, p.hyper.initial());
    hpo::ExactSgd run(p.w0);
    const Tensor w0 = run.w(), v0 = run.v();
    const auto w0_int = run.w_int(), v0_int = run.v_int();
    for (std::int64_t t = 0; t < p.horizon; ++t) {
      const auto h = u.optimizer_values(t);
      run.forward(u.gradient(run.w(), t).grad, h.lr, h.momentum, h.weight_decay, t);
    }
    const Tensor wT = run.w(), vT = run.v();
    const double bits = run.buffer().bits() / (static_cast<double>(p.num_params()) * static_cast<double>(p.horizon));
    // The same reversal in floating point, for contrast: 1/β amplifies rounding every step
    // (until the recovered weights are so far off that the loss itself blows up).
    double float_error = INFINITY;
    try {
      Tensor w = wT.clone(), v = vT.clone();
      for (std::int64_t t = p.horizon; t-- > 0;) {
        const auto h = u.optimizer_values(t);
        hpo::axpy(w, h.lr.at(0), v);
        const Tensor g = u.gradient(w, t).grad;
        hpo::axpy(v, -1.0, g);
        hpo::axpy(v, -h.weight_decay.at(0), w);
        for (std::int64_t i = 0; i < v.numel(); ++i) v.flat_slice(i, 1).fill(v.at(i) / h.momentum.at(0));
      }
      float_error = fd::rel_error(w.to_vector(), w0.to_vector());
    } catch (const hpo::InnerDivergence&) {
    }
    for (std::int64_t t = p.horizon; t-- > 0;) {
      const auto h = u.optimizer_values(t);
      run.reverse_w(h.lr);
      run.reverse_v(u.gradient(run.w(), t).grad, h.momentum, h.weight_decay);
    }
    MESSAGE("beta " << beta << ": information buffer " << bits << " bits/parameter/step (log2(1/beta) = "
                    << std::log2(1 / beta) << "); floating-point reversal's error in w_0: " << float_error);
    CHECK(run.w_int() == w0_int);
    CHECK(run.v_int() == v0_int);
    CHECK(std::memcmp(run.w().raw(), w0.raw(), w0.nbytes()) == 0);
    CHECK(std::memcmp(run.v().raw(), v0.raw(), v0.nbytes()) == 0);
    CHECK(std::abs(bits - std::log2(1 / beta)) <= 0.1 * std::log2(1 / beta));
    CHECK(run.buffer().bits() == 0);  // every bit pushed was popped again
    if (beta == 0.5) CHECK(!(float_error < 1e-3));  // the naive reversal is useless here
    CHECK(fd::rel_error(wT.to_vector(), w0.to_vector()) > 1e-3);  // training did move the weights
  }
}

TEST_CASE("memory of the reverse policies for T = 100, 1000, 10000") {
  for (std::int64_t T : {100, 1000, 10000}) {
    ToySpec spec;
    spec.horizon = T;
    spec.batch_size = 0;  // full batch: the memory question does not need mini-batches
    spec.lr = 0.1;
    spec.lr_blocks = 10;
    spec.learn_weight_decay = false;
    spec.l2 = ToySpec::L2::none;
    spec.example_weights = false;
    spec.hidden = 4;
    const hpo::ClassificationTask task = toy_task(spec);
    const hpo::BilevelProblem& p = task.problem;
    const Tensor th = p.hyper.initial();
    const hpo::Hypergradient store = run_method("reverse", p, th);
    const hpo::Hypergradient exact = run_method("reverse", p, th, {{"policy", "exact-reversal"}});
    const hpo::Hypergradient ckpt = run_method("reverse", p, th, {{"policy", "checkpoint"}});
    const std::size_t state = static_cast<std::size_t>(p.num_params()) * 2 * sizeof(double);
    const double sqrtT = std::ceil(std::sqrt(static_cast<double>(T)));
    MESSAGE("T = " << T << ": store-all " << store.cost.peak_bytes << " B, exact reversal " << exact.cost.peak_bytes
                   << " B (" << 100.0 * static_cast<double>(exact.cost.peak_bytes) / static_cast<double>(store.cost.peak_bytes)
                   << "%, " << exact.cost.info_bits_per_parameter_step << " bits/param/step), checkpoint "
                   << ckpt.cost.peak_bytes << " B; times " << store.cost.seconds << " / " << exact.cost.seconds << " / "
                   << ckpt.cost.seconds << " s");
    // Store-all: g_t per step and a snapshot of S_t every ⌈√T⌉ steps; its peak adds one replayed
    // segment and the adjoint.
    const std::size_t grad = state / 2, snapshots = static_cast<std::size_t>((T + sqrtT - 1) / sqrtT);
    CHECK(store.cost.trajectory_bytes == static_cast<std::size_t>(T) * grad + snapshots * state);
    CHECK(store.cost.peak_bytes > store.cost.trajectory_bytes);
    CHECK(store.cost.peak_bytes <= static_cast<std::size_t>(T) * grad + (snapshots + static_cast<std::size_t>(sqrtT)) * state);
    // Snapshots: at most ⌈√T⌉ states, plus one replayed segment of ⌈√T⌉ (S_t, g_t).
    CHECK(static_cast<double>(ckpt.cost.checkpoint_bytes) <= sqrtT * state + sqrtT * (state + state / 2));
    if (T == 10000) CHECK(static_cast<double>(exact.cost.peak_bytes) < 0.01 * static_cast<double>(store.cost.peak_bytes));
    CHECK(rel(exact.d_theta, store.d_theta) <= 1e-6);
    CHECK(rel(ckpt.d_theta, store.d_theta) <= 1e-10);
  }
}

// Exact reversal recomputes g_t at a recovered w_t inside the backward pass's forward-over-reverse
// pass, so that pass must return the plain reverse pass's gradient bit for bit; 1/β amplifies any
// difference every step. LeNet-5 in float32 exercises conv, pooling and GEMM paths the MLP does not.
TEST_CASE("the forward-over-reverse pass returns the plain gradient's bits (LeNet-5, float32)") {
  const std::shared_ptr<const nn::Model> model = nn::make_model("lenet5", Shape{1, 28, 28}, 10);
  data::Dataset train, val;
  std::mt19937_64 rng(5);
  std::normal_distribution<float> normal;
  std::vector<float> pixels(static_cast<std::size_t>(64 * 28 * 28));
  for (float& x : pixels) x = normal(rng);
  train.images = Tensor::from(std::vector<double>(pixels.begin(), pixels.end()), Shape{64, 1, 28, 28}, DType::f32);
  val.images = train.images;
  for (int i = 0; i < 64; ++i) train.labels.push_back(i % 10);
  val.labels = train.labels;
  train.num_classes = val.num_classes = 10;
  train.name = "random:train";
  val.name = "random:val";
  hpo::Hyperparameters h;
  h.add(hpo::Hyperparameters::learning_rate(2, 0.02));
  h.add(hpo::Hyperparameters::weight_decay(1, 1e-4));
  hpo::ClassificationOptions co;
  co.batch_size = 32;
  const hpo::ClassificationTask task =
      hpo::make_classification_task(model, train, val, std::move(h), nn::OptimizerConfig{}, 4, co);
  hpo::Unroll u(task.problem, task.problem.hyper.initial());
  Tensor dir = Tensor::zeros(task.problem.w0.shape(), task.problem.w0.dtype());
  for (std::int64_t i = 0; i < dir.numel(); ++i) dir.data<float>()[i] = normal(rng);
  for (std::int64_t t = 0; t < 2; ++t) {
    const Tensor g = u.gradient(task.problem.w0, t).grad;
    CHECK(hpo::same_bits(u.loss_pass(task.problem.w0, t, dir, Tensor(), /*theta_adjoint=*/true).grad, g));
    CHECK(hpo::same_bits(u.loss_pass(task.problem.w0, t, dir, Tensor(), /*theta_adjoint=*/false).grad, g));
  }
}

TEST_CASE("exact reversal's fixed-point step gives the same bits on 1 and 2 threads, and names the first bad element") {
  // 50,000 parameters: above the parallel grain, so the step runs on the OpenMP threads.
  const std::int64_t P = 50000, T = 20;
  std::mt19937_64 rng(7);
  std::normal_distribution<double> normal;
  auto random = [&](double scale) {
    std::vector<double> x(static_cast<std::size_t>(P));
    for (double& v : x) v = scale * normal(rng);
    return Tensor::from(x, Shape{P}, DType::f64);
  };
  const Tensor w0 = random(0.1);
  std::vector<Tensor> grads;
  for (std::int64_t t = 0; t < T; ++t) grads.push_back(random(1.0));
  std::vector<double> beta(static_cast<std::size_t>(P));
  for (std::int64_t i = 0; i < P; ++i) beta[static_cast<std::size_t>(i)] = i < P / 2 ? 0.9 : 0.5;  // per-parameter
  const Tensor momentum = Tensor::from(beta, Shape{P}, DType::f64);
  const Tensor lr = Tensor::full(Shape{1}, 0.05, DType::f64), wd = Tensor::full(Shape{1}, 1e-3, DType::f64);

  auto run_on = [&](int threads) {
#ifdef _OPENMP
    const int before = omp_get_max_threads();
    omp_set_num_threads(threads);
#else
    (void)threads;
#endif
    hpo::ExactSgd run(w0);
    for (std::int64_t t = 0; t < T; ++t) run.forward(grads[static_cast<std::size_t>(t)], lr, momentum, wd, t);
    const auto w = run.w_int(), v = run.v_int();
    const double bits = run.buffer().bits();
    for (std::int64_t t = T; t-- > 0;) {
      run.reverse_w(lr);
      run.reverse_v(grads[static_cast<std::size_t>(t)], momentum, wd);
    }
    const hpo::ExactSgd fresh(w0);
    const bool recovered = run.w_int() == fresh.w_int() && run.v_int() == fresh.v_int();
#ifdef _OPENMP
    omp_set_num_threads(before);
#endif
    return std::make_tuple(w, v, bits, recovered);
  };
  const auto one = run_on(1), two = run_on(2);
  CHECK(std::get<0>(one) == std::get<0>(two));
  CHECK(std::get<1>(one) == std::get<1>(two));
  CHECK(std::get<2>(one) == std::get<2>(two));
  CHECK(std::get<3>(one));
  CHECK(std::get<3>(two));

  // Two non-finite gradients in different threads' halves: the error names the lower one.
  std::vector<double> g = grads[0].to_vector();
  g[40000] = NAN;
  g[10000] = INFINITY;
  hpo::ExactSgd run(w0);
  CHECK_THROWS_WITH_AS(run.forward(Tensor::from(g, Shape{P}, DType::f64), lr, momentum, wd, 0),
                       doctest::Contains("g + mu w[10000]"), Error);
}

TEST_CASE("exact reversal: a weight leaving the fixed-point range is an inner divergence, as in the other policies") {
  // With lr = 1e7 the first step moves a weight past ±2^18 (44 fraction bits) while the loss is
  // still under the toy's bound: the outer loop must see an InnerDivergence naming the step (it
  // rejects the step and halves its step sizes), not a plain error that ends the whole run.
  ToySpec spec;
  spec.lr = 1e7;
  const hpo::ClassificationTask task = toy_task(spec);
  const Tensor th = task.problem.hyper.initial();
  CHECK_THROWS_WITH_AS(run_method("reverse", task.problem, th, {{"policy", "exact-reversal"}}),
                       doctest::Contains("inner training diverged at step 0"), hpo::InnerDivergence);
  CHECK_THROWS_AS(run_method("reverse", task.problem, th, {{"policy", "store-all"}}), hpo::InnerDivergence);
}

TEST_CASE("information buffer, streaming form: Algorithm 3's push(d)/pop(n) steps undo exactly, with O(1) state") {
  for (const hpo::Rational r : {hpo::rational_approximation(0.9), hpo::rational_approximation(0.5),
                                hpo::rational_approximation(0.99), hpo::rational_approximation(0.123456789)}) {
    hpo::InfoBuffer b(3, r);
    CHECK(b.streaming());
    CHECK(b.bits() == 0);
    // Forward: push(x mod d, d) then pop(n), as v·n/d does, from seeded values; then backward.
    std::uint64_t x = 88172645463325252ull;
    auto next = [&] { return x ^= x << 13, x ^= x >> 7, x ^= x << 17; };
    std::vector<std::array<std::uint32_t, 3>> pushed, popped;
    const int steps = 20000;
    for (int k = 0; k < steps; ++k) {
      std::array<std::uint32_t, 3> in{}, out{};
      for (int i = 0; i < 3; ++i) {
        in[static_cast<std::size_t>(i)] = static_cast<std::uint32_t>(next() % r.d);
        b.push(i, in[static_cast<std::size_t>(i)], r.d);
        out[static_cast<std::size_t>(i)] = b.pop(i, r.n);
        REQUIRE(out[static_cast<std::size_t>(i)] < r.n);
      }
      pushed.push_back(in);
      popped.push_back(out);
    }
    const double bits = b.bits();
    CHECK(std::abs(bits / (3.0 * steps) - std::log2(static_cast<double>(r.d) / r.n)) <= 0.01 + 0.01 * std::log2(static_cast<double>(r.d) / r.n));
    for (int k = steps; k-- > 0;)
      for (int i = 3; i-- > 0;) {  // the inverse: push(n) what pop(n) gave, pop(d) what push(d) took
        b.push(i, popped[static_cast<std::size_t>(k)][static_cast<std::size_t>(i)], r.n);
        REQUIRE(b.pop(i, r.d) == pushed[static_cast<std::size_t>(k)][static_cast<std::size_t>(i)]);
      }
    CHECK(b.bits() == 0);  // every head back at L, every stack empty
    MESSAGE(r.n << "/" << r.d << ": " << bits / (3.0 * steps) << " bits per parameter per step");
  }
}

TEST_CASE("exact reversal with one momentum (streaming buffer) recovers w_0, v_0 bit for bit after 10000 steps") {
  // Synthetic gradients (a function of w, so that the reverse pass recomputes them): the buffer
  // and the fixed-point step alone, over a horizon where the general buffer would hold ~47 limbs.
  const std::int64_t P = 257, T = 10000;
  std::vector<double> w0v(static_cast<std::size_t>(P));
  for (std::int64_t i = 0; i < P; ++i) w0v[static_cast<std::size_t>(i)] = std::sin(0.37 * static_cast<double>(i + 1));
  const Tensor w0 = Tensor::from(w0v, Shape{P}, DType::f64);
  auto gradient = [&](const Tensor& w, std::int64_t t) {  // ∇ of Σ ½ c_i w_i² − cos(t) w_i
    std::vector<double> g = w.to_vector();
    for (std::int64_t i = 0; i < P; ++i)
      g[static_cast<std::size_t>(i)] = (0.5 + 0.001 * static_cast<double>(i)) * g[static_cast<std::size_t>(i)] -
                                       0.01 * std::cos(0.001 * static_cast<double>(t * (i + 1)));
    return Tensor::from(g, Shape{P}, DType::f64);
  };
  const Tensor lr = Tensor::full(Shape{1}, 0.05, DType::f64), mom = Tensor::full(Shape{1}, 0.9, DType::f64),
               wd = Tensor::full(Shape{1}, 1e-4, DType::f64);
  hpo::ExactSgd run(w0, Tensor(), 44, hpo::rational_approximation(0.9));
  REQUIRE(run.buffer().streaming());
  const auto w0_int = run.w_int(), v0_int = run.v_int();
  for (std::int64_t t = 0; t < T; ++t) run.forward(gradient(run.w(), t), lr, mom, wd, t);
  const double bits = run.buffer().bits() / static_cast<double>(P * T);
  CHECK(std::abs(bits - std::log2(10.0 / 9.0)) <= 0.01);
  CHECK(run.buffer().nbytes() < static_cast<std::size_t>(P) * (8 + 24 + 2 * 4 * (T / 200 + 2)));  // O(bits): ~0.15 bits a step
  CHECK(run.w_int() != w0_int);
  for (std::int64_t t = T; t-- > 0;) {
    run.reverse_w(lr);
    run.reverse_v(gradient(run.w(), t), mom, wd);
  }
  CHECK(run.w_int() == w0_int);
  CHECK(run.v_int() == v0_int);
  CHECK(run.buffer().bits() == 0);
  // A momentum whose rational's bases do not divide the buffer's L is refused.
  CHECK_THROWS_WITH_AS(run.forward(gradient(run.w(), 0), lr, Tensor::full(Shape{1}, 0.123456789, DType::f64), wd, 0),
                       doctest::Contains("single momentum"), Error);
}

TEST_CASE("exact reversal picks the streaming buffer for one momentum and says so, and the numbers stay store-all's") {
  ToySpec spec;
  spec.horizon = 200;
  spec.learn_momentum = false;
  const hpo::ClassificationTask task = toy_task(spec);
  const Tensor th = task.problem.hyper.initial();
  const hpo::Hypergradient store = run_method("reverse", task.problem, th);
  const hpo::Hypergradient exact = run_method("reverse", task.problem, th, {{"policy", "exact-reversal"}});
  bool said = false;
  for (const std::string& n : exact.notes) said = said || n.find("streaming buffer") != std::string::npos;
  CHECK(said);
  CHECK(rel(exact.d_theta, store.d_theta) <= 1e-10);
}

namespace {
std::string plan_note(const hpo::Hypergradient& h) {
  for (const std::string& n : h.notes)
    if (n.rfind("memory plan", 0) == 0) return n;
  return "(no plan note)";
}
}  // namespace

TEST_CASE("memory budget: stored passes, recomputed passes and checkpoints give store-all's hypergradient bit for bit") {
  for (const nn::OptimizerKind kind : {nn::OptimizerKind::sgd, nn::OptimizerKind::adam}) {
    ToySpec spec;
    spec.optimizer = kind;
    spec.horizon = 24;
    const hpo::ClassificationTask task = toy_task(spec);
    const hpo::BilevelProblem& p = task.problem;
    const Tensor th = p.hyper.initial();
    const hpo::Hypergradient store = run_method("reverse", p, th);
    hpo::Unroll u(p, th);
    const std::size_t pass = u.pass_bytes(p.w0, 0);
    REQUIRE(pass > 0);
    const std::size_t base = make_method("reverse")->estimate(p).buffer_bytes;
    const std::size_t stored = pass + p.w0.nbytes();  // store-all's stored pass also holds its w_t
    // Every pass stored; 10 of 24 stored (a mix); none stored (the budget is store-all's own).
    for (const std::string& budget : {std::string("fastest"), std::to_string(base + 10 * stored + stored / 2), std::to_string(base)}) {
      const hpo::Hypergradient h = run_method("reverse", p, th, {{"memory-budget", budget}});
      CAPTURE(budget);
      MESSAGE(plan_note(h));
      CHECK(hpo::same_bits(h.d_theta, store.d_theta));
      CHECK(hpo::same_bits(h.d_w0, store.d_w0));
    }
    CHECK(plan_note(run_method("reverse", p, th, {{"memory-budget", std::to_string(base + 10 * stored + stored / 2)}}))
              .find("stored passes for 10 of 24 steps") != std::string::npos);
    // Checkpoints, alone and with stored passes in each replayed segment (all, or 2 of 5).
    const hpo::Hypergradient ckpt = run_method("reverse", p, th, {{"policy", "checkpoint"}});
    CHECK(hpo::same_bits(ckpt.d_theta, store.d_theta));
    const std::size_t ckpt_base = make_method("reverse", {{"policy", "checkpoint"}})->estimate(p).buffer_bytes;
    for (const std::string& budget : {std::string("fastest"), std::to_string(ckpt_base + 2 * pass)}) {
      const hpo::Hypergradient h = run_method("reverse", p, th, {{"policy", "checkpoint"}, {"memory-budget", budget}});
      MESSAGE(plan_note(h));
      CHECK(hpo::same_bits(h.d_theta, store.d_theta));
    }
    // Exact reversal with stored passes: its own numbers, bit for bit (the passes were recorded
    // at the same fixed-point w_t that the backward sweep recovers).
    if (kind == nn::OptimizerKind::sgd) {
      const hpo::Hypergradient exact = run_method("reverse", p, th, {{"policy", "exact-reversal"}});
      const hpo::Hypergradient kept = run_method("reverse", p, th, {{"policy", "exact-reversal"}, {"memory-budget", "fastest"}});
      CHECK(hpo::same_bits(kept.d_theta, exact.d_theta));
      CHECK(rel(kept.d_theta, store.d_theta) <= 1e-10);
    }
  }
}

TEST_CASE("memory budget with policy=auto: the fastest plan that fits, or the least memory, named in the notes") {
  ToySpec spec;
  spec.horizon = 24;
  const hpo::ClassificationTask task = toy_task(spec);
  const hpo::BilevelProblem& p = task.problem;
  const Tensor th = p.hyper.initial();
  const hpo::Hypergradient store = run_method("reverse", p, th);
  auto note = [&](const std::string& budget) {
    const hpo::Hypergradient h = run_method("reverse", p, th, {{"policy", "auto"}, {"memory-budget", budget}});
    MESSAGE(budget << ": " << plan_note(h) << " (peak " << h.cost.peak_bytes << " B)");
    CHECK(rel(h.d_theta, store.d_theta) <= 1e-10);
    if (budget != "fastest" && budget != "least-memory") CHECK(h.cost.peak_bytes <= std::stoull(budget) + 4096);
    return plan_note(h);
  };
  CHECK(note("fastest").find("store-all, stored passes for 24 of 24") != std::string::npos);
  CHECK(note("least-memory").find("exact-reversal, stored passes for 0 of 24") != std::string::npos);
  const std::size_t store_bytes = make_method("reverse")->estimate(p).buffer_bytes;
  // Below store-all's buffers: exact reversal, with as many stored passes as the rest allows.
  const std::string below = note(std::to_string(store_bytes / 2));
  CHECK(below.find("exact-reversal") != std::string::npos);
  CHECK(below.find("stored passes for 0 of") == std::string::npos);
  CHECK(error_of([&] { run_method("reverse", p, th, {{"policy", "auto"}, {"memory-budget", "100"}}); })
            .find("no plan fits the memory budget of 100 bytes") != std::string::npos);
  CHECK(error_of([&] { make_method("reverse", {{"memory-budget", "lots"}}); }).find("memory-budget 'lots'") != std::string::npos);
  CHECK(error_of([&] { make_method("reverse", {{"policy", "auto"}}); }).find("give memory-budget") != std::string::npos);
  // Adam: no exact reversal; the least memory is checkpointing.
  ToySpec adam = spec;
  adam.optimizer = nn::OptimizerKind::adam;
  const hpo::ClassificationTask at = toy_task(adam);
  const hpo::Hypergradient h = run_method("reverse", at.problem, at.problem.hyper.initial(),
                                          {{"policy", "auto"}, {"memory-budget", "least-memory"}});
  CHECK(plan_note(h).find("checkpoint every 5 steps") != std::string::npos);
}

TEST_CASE("ConstantDivisor: the exact 64-bit quotient by multiplication, for every divisor exact reversal uses") {
  std::mt19937_64 rng(11);
  std::vector<std::uint64_t> divisors = {1, 2, 3, 7, 9, 10, 81, 99, 100, 641, 65535, 65536, 65537, 4294967295ull};
  for (int k = 0; k < 200; ++k) divisors.push_back(1 + rng() % 65536);
  for (const std::uint64_t d : divisors) {
    const hpo::ConstantDivisor by(d);
    for (const std::uint64_t x : {std::uint64_t{0}, std::uint64_t{1}, d - 1, d, d + 1, ~std::uint64_t{0}, ~std::uint64_t{0} - d,
                                  std::uint64_t{1} << 63, (std::uint64_t{1} << 62) + 12345})
      REQUIRE(by.quotient(x) == x / d);
    for (int k = 0; k < 2000; ++k) {
      const std::uint64_t x = rng() >> (rng() % 64);
      REQUIRE(by.quotient(x) == x / d);
    }
  }
}

TEST_CASE("exact reversal's fused loops (vector lanes where the CPU has them) give the general loops' bits") {
  // One momentum as a [1] tensor takes the fused loops (on an AVX-512 build: eight parameters
  // per vector block, handing a block back to the scalar code when a head spills or unspills, a
  // value leaves the grid or a reversed velocity might not fit); the same momentum as a [P]
  // tensor takes the general loops. P = 1003 leaves a tail of 3; 600 steps spill every head
  // about three times; gradient scales from 1e-2 to 1e2 send some lanes of a block, not all,
  // to the scalar code.
  const std::int64_t P = 1003, T = 600;
  for (const DType dtype : {DType::f64, DType::f32}) {
    CAPTURE(dtype_name(dtype));
    std::mt19937_64 rng(5);
    std::normal_distribution<double> normal;
    std::vector<double> w0v(static_cast<std::size_t>(P));
    for (double& x : w0v) x = 0.1 * normal(rng);
    const Tensor w0 = Tensor::from(w0v, Shape{P}, DType::f64).to(dtype);
    std::vector<Tensor> grads;
    for (std::int64_t t = 0; t < T; ++t) {
      std::vector<double> g(static_cast<std::size_t>(P));
      for (std::int64_t i = 0; i < P; ++i) g[static_cast<std::size_t>(i)] = std::pow(10.0, static_cast<double>(i % 5 - 2)) * normal(rng);
      grads.push_back(Tensor::from(g, Shape{P}, DType::f64).to(dtype));
    }
    std::vector<double> lrv(static_cast<std::size_t>(P));
    for (double& x : lrv) x = 0.01 + 0.04 * std::abs(normal(rng));
    const Tensor lr = Tensor::from(lrv, Shape{P}, DType::f64).to(dtype);  // per parameter
    // reverse_w takes its fused loop whenever α has w's dtype: the general run gets the float32
    // values as float64 (the same numbers) so that its reverse_w is the general loop too.
    const Tensor lr_general = dtype == DType::f32 ? lr.to(DType::f64) : lr;
    const Tensor wd = Tensor::full(Shape{1}, 1e-3, dtype);
    const Tensor mom1 = Tensor::full(Shape{1}, 0.9, dtype), momP = Tensor::full(Shape{P}, 0.9, dtype);
    const hpo::Rational r = hpo::rational_approximation(mom1.to(DType::f64).to_vector()[0]);
    hpo::ExactSgd fused(w0, Tensor(), 44, r), general(w0, Tensor(), 44, r);
    for (std::int64_t t = 0; t < T; ++t) {
      Tensor wf, wg;
      fused.forward(grads[static_cast<std::size_t>(t)], lr, mom1, wd, t, &wf);
      general.forward(grads[static_cast<std::size_t>(t)], lr_general, momP, wd, t, &wg);
      REQUIRE(fused.w_int() == general.w_int());
      REQUIRE(fused.v_int() == general.v_int());
      REQUIRE(hpo::same_bits(wf, wg));
    }
    CHECK(fused.buffer().bits() == general.buffer().bits());
    CHECK(fused.buffer().bits() > 32.0 * 2 * P);  // the heads have spilled digits
    for (std::int64_t t = T; t-- > 0;) {
      Tensor wf, wg, vnf, vng, vf, vg;
      fused.reverse_w(lr, &wf, &vnf);
      general.reverse_w(lr_general, &wg, &vng);
      REQUIRE(fused.w_int() == general.w_int());
      REQUIRE(hpo::same_bits(wf, wg));
      REQUIRE(hpo::same_bits(vnf, vng));
      REQUIRE(hpo::same_bits(vnf, fused.v()));
      fused.reverse_v(grads[static_cast<std::size_t>(t)], mom1, wd, &vf);
      general.reverse_v(grads[static_cast<std::size_t>(t)], momP, wd, &vg);
      REQUIRE(fused.v_int() == general.v_int());
      REQUIRE(hpo::same_bits(vf, vg));
    }
    const hpo::ExactSgd start(w0);
    CHECK(fused.w_int() == start.w_int());
    CHECK(fused.v_int() == start.v_int());
    CHECK(fused.buffer().bits() == 0);

    // A non-finite gradient in the fused loops: the error names the lowest bad element, as the
    // general loops' does.
    std::vector<double> g = grads[0].to(DType::f64).to_vector();
    g[700] = NAN;
    g[301] = INFINITY;
    hpo::ExactSgd bad(w0, Tensor(), 44, r);
    CHECK_THROWS_WITH_AS(bad.forward(Tensor::from(g, Shape{P}, DType::f64).to(dtype), lr, mom1, wd, 0),
                         doctest::Contains("g + mu w[301]"), Error);
  }
}
