// hpo/'s methods with the weights and the data on a device, on a machine without a GPU: the
// host-emulated device (tests/engine/emulated_device.h) stands in the Device::cuda slot. Its
// kernels are the CPU's, so every method must give the CPU's hypergradient BIT FOR BIT; any
// host loop left in hpo/ or nn/ (a data<T>() on a device tensor), any tensor made on the wrong
// device, or any operation that skips the device seam fails or differs here. tests/cuda runs
// the same methods on a real GPU against the CPU (float64, ≤ 1e-12).
// (Each TEST_CASE is its own process under ctest, so registering the emulator is local to it.)
#include "toy.h"

#include <gradhpo/hpo/hoag/hoag.h>
#include <gradhpo/hpo/online/greedy.h>
#include <gradhpo/hpo/online/hyperdistill.h>
#include <gradhpo/hpo/online/hypergradient_descent.h>
#include <gradhpo/hpo/online/t1t2.h>
#include <gradhpo/hpo/methods/reverse.h>
#include <gradhpo/nn/layers.h>
#include <gradhpo/nn/optim.h>

#include "../data/temp_dir.h"
#include "../engine/device_compare.h"  // seeded
#include "../cuda/hpo_problem.h"
#include "../engine/emulated_device.h"

using namespace gradhpo;
using namespace gradhpo::testing;

namespace {

struct Tasks {
  hpo::ClassificationTask cpu, dev;
};

// The same problem twice: on the CPU and with w₀ and the data on the emulated device.
Tasks tasks(ToySpec s) {
  use_emulator();
  Tasks t{toy_task(s), {}};
  s.device = Device::cuda;
  t.dev = toy_task(s);
  REQUIRE(t.dev.problem.w0.device() == Device::cuda);
  return t;
}

ToySpec small(nn::OptimizerKind kind = nn::OptimizerKind::sgd) {
  ToySpec s;
  s.optimizer = kind;
  s.horizon = 6;
  return s;
}

ToySpec loss_defining_only() {
  ToySpec s = small();
  s.learn_lr = s.learn_momentum = s.learn_weight_decay = false;
  return s;
}

void same_bits(const Tensor& want, const Tensor& got, const std::string& what) {
  INFO(what);
  REQUIRE(got.defined() == want.defined());
  if (!want.defined()) return;
  CHECK(got.shape() == want.shape());
  CHECK(got.to_vector() == want.to_vector());
}

// θ-sized results come back on the host, weight-sized ones stay on the device.
void same_hypergradient(const hpo::Hypergradient& want, const hpo::Hypergradient& got) {
  INFO(got.method);
  CHECK(got.d_theta.device() == Device::cpu);
  CHECK(got.theta.device() == Device::cpu);
  same_bits(want.d_theta, got.d_theta, "dL_val/dθ");
  same_bits(want.direct, got.direct, "∂_θ L_val");
  CHECK(got.val_loss == want.val_loss);
  CHECK(got.final_train_loss == want.final_train_loss);
  CHECK(got.d_w0.defined() == want.d_w0.defined());
  if (want.d_w0.defined()) {
    CHECK(got.d_w0.device() == Device::cuda);
    same_bits(want.d_w0, got.d_w0, "dL_val/dw_0");
  }
  REQUIRE(got.final_state.parts.size() == want.final_state.parts.size());
  for (std::size_t i = 0; i < want.final_state.parts.size(); ++i) {
    CHECK(got.final_state.parts[i].device() == Device::cuda);
    same_bits(want.final_state.parts[i], got.final_state.parts[i], "S_T part " + std::to_string(i));
  }
}

hpo::OuterOptions sgd_outer(double lr) {
  hpo::OuterOptions o;
  o.kind = hpo::OuterKind::sgd;
  o.step = {lr};
  return o;
}

// Three online steps on each device: the same hypergradients, θ and weights bit for bit.
void same_online(hpo::OnlineMethod& on_cpu, hpo::OnlineMethod& on_dev) {
  INFO(on_cpu.name());
  hpo::BilevelState a = on_cpu.init(), b = on_dev.init();
  for (int k = 0; k < 3; ++k) {
    const hpo::OnlineStep x = on_cpu.step(a), y = on_dev.step(b);
    CHECK(y.hypergradient.device() == Device::cpu);
    same_bits(x.hypergradient, y.hypergradient, "hypergradient at step " + std::to_string(k));
    CHECK(x.train_loss == y.train_loss);
  }
  same_bits(a.theta, b.theta, "θ after three steps");
  CHECK(b.inner.w().device() == Device::cuda);
  same_bits(a.inner.w(), b.inner.w(), "w after three steps");
}

}  // namespace

TEST_CASE("reverse mode on a device (store-all, checkpointing, exact reversal) equals the CPU bit for bit") {
  const Tasks t = tasks(small());
  const Tensor theta = t.cpu.problem.hyper.initial(DType::f64);
  for (hpo::ReversePolicy p :
       {hpo::ReversePolicy::store_all, hpo::ReversePolicy::checkpoint, hpo::ReversePolicy::exact_reversal}) {
    const std::map<std::string, std::string> o = {{"policy", hpo::policy_name(p)}, {"checkpoint-every", "4"}};
    const hpo::Hypergradient on_dev = run_method("reverse", t.dev.problem, theta, o);
    same_hypergradient(run_method("reverse", t.cpu.problem, theta, o), on_dev);
    if (p == hpo::ReversePolicy::exact_reversal)  // it runs, copying per step, and says so
      CHECK(on_dev.notes.back().find("exact reversal on cuda: the fixed-point state") == 0);
  }
  CHECK(g_kernel_calls > 0);
}

TEST_CASE("forward mode on a device (K tangents at once, and one pass per column) equals the CPU bit for bit") {
  const Tasks t = tasks(small());
  const Tensor theta = t.cpu.problem.hyper.initial(DType::f64);
  same_hypergradient(run_method("forward", t.cpu.problem, theta), run_method("forward", t.dev.problem, theta));
  const std::map<std::string, std::string> o = {{"single-direction", "true"}, {"clip-hessian", "50"}, {"clip-hypergradient", "20"}};
  same_hypergradient(run_method("forward", t.cpu.problem, theta, o), run_method("forward", t.dev.problem, theta, o));
  CHECK(g_kernel_calls > 0);
}

TEST_CASE("Adam's reverse and forward mode on a device equal the CPU bit for bit") {
  const Tasks t = tasks(small(nn::OptimizerKind::adam));
  const Tensor theta = t.cpu.problem.hyper.initial(DType::f64);
  same_hypergradient(run_method("reverse", t.cpu.problem, theta), run_method("reverse", t.dev.problem, theta));
  same_hypergradient(run_method("forward", t.cpu.problem, theta), run_method("forward", t.dev.problem, theta));
}

TEST_CASE("DrMAD on a device equals the CPU bit for bit") {
  const Tasks t = tasks(small());
  const Tensor theta = t.cpu.problem.hyper.initial(DType::f64);
  same_hypergradient(run_method("drmad", t.cpu.problem, theta), run_method("drmad", t.dev.problem, theta));
}

TEST_CASE("IFT (Neumann, CG and the exact solve) on a device equals the CPU bit for bit") {
  const Tasks t = tasks(loss_defining_only());
  const Tensor theta = t.cpu.problem.hyper.initial(DType::f64);
  for (const char* s : {"neumann", "cg", "exact"}) {
    const std::map<std::string, std::string> o = {{"solver", s}, {"iterations", "5"}};
    same_hypergradient(run_method("ift", t.cpu.problem, theta, o), run_method("ift", t.dev.problem, theta, o));
  }
}

TEST_CASE("T1-T2 and greedy on a device equal the CPU bit for bit") {
  const Tasks t = tasks(small());
  const Tensor theta = t.cpu.problem.hyper.initial(DType::f64);
  for (const char* m : {"t1t2", "greedy"})
    same_hypergradient(run_method(m, t.cpu.problem, theta), run_method(m, t.dev.problem, theta));
}

TEST_CASE("HOAG on a device (L-BFGS on host copies of w, CG on the device) equals the CPU bit for bit") {
  const Tasks t = tasks(loss_defining_only());
  hpo::HoagOptions o;
  o.max_iterations = 2;
  o.max_inner_iterations = 5;
  o.max_cg_iterations = 5;
  const hpo::HoagRun a = hpo::run_hoag(t.cpu.problem, o), b = hpo::run_hoag(t.dev.problem, o);
  CHECK(b.theta.device() == Device::cpu);
  CHECK(b.w.device() == Device::cuda);
  same_bits(a.theta, b.theta, "θ after two iterations");
  same_bits(a.w, b.w, "the inner solution");
  REQUIRE(a.iterations.size() == b.iterations.size());
  for (std::size_t k = 0; k < a.iterations.size(); ++k)
    same_bits(a.iterations[k].hypergradient, b.iterations[k].hypergradient, "p_k");
}

TEST_CASE("an online run on a device saved and resumed (the file in host memory) continues as an uninterrupted one") {
  const Tasks t = tasks(small());
  hpo::HyperDistillOptions h;
  h.fit_every = 2;
  hpo::HyperDistill method(t.dev.problem, sgd_outer(0.05), h);
  hpo::BilevelState through = method.init(), stopped = method.init();
  method.run(through, 5);
  method.run(stopped, 3);
  TempDir dir;
  hpo::save_state(stopped, dir.file("state.bin"));
  hpo::BilevelState resumed = hpo::load_state(dir.file("state.bin"));
  CHECK(resumed.inner.w().device() == Device::cpu);
  method.run(resumed, 2);
  CHECK(resumed.inner.w().device() == Device::cuda);
  same_bits(through.theta, resumed.theta, "θ");
  same_bits(through.inner.w(), resumed.inner.w(), "w");
}

TEST_CASE("the online methods on a device (T1-T2, DARTS, greedy, HyperDistill, hypergradient descent) equal the CPU") {
  const Tasks t = tasks(small());
  {
    hpo::T1T2 a(t.cpu.problem, sgd_outer(0.05)), b(t.dev.problem, sgd_outer(0.05));
    same_online(a, b);
  }
  {
    hpo::T1T2Options darts;
    darts.darts_radius = 0.01;
    hpo::T1T2 a(t.cpu.problem, sgd_outer(0.05), darts), b(t.dev.problem, sgd_outer(0.05), darts);
    same_online(a, b);
  }
  {
    hpo::GreedyOptions g;
    g.gamma = 0.5;
    g.top_k = 3;
    hpo::GeneralizedGreedy a(t.cpu.problem, sgd_outer(0.05), g), b(t.dev.problem, sgd_outer(0.05), g);
    same_online(a, b);
  }
  {
    hpo::HyperDistillOptions h;
    h.fit_every = 2;
    hpo::HyperDistill a(t.cpu.problem, sgd_outer(0.05), h), b(t.dev.problem, sgd_outer(0.05), h);
    same_online(a, b);
  }
  ToySpec plain = small();
  plain.learn_lr = plain.learn_momentum = plain.learn_weight_decay = false;
  plain.l2 = ToySpec::L2::none;
  plain.example_weights = false;
  Tasks hd = tasks(plain);
  for (hpo::ClassificationTask* task : {&hd.cpu, &hd.dev}) {
    task->problem.hyper.add(hpo::hypergradient_descent_group(0.1, /*safe=*/true));
    task->problem.optimizer.momentum = 0;
  }
  hpo::HypergradientDescent a(hd.cpu.problem, sgd_outer(1e-3)), b(hd.dev.problem, sgd_outer(1e-3));
  same_online(a, b);
}

TEST_CASE("nn's in-place SGD and Adam steps and batch norm's running statistics on a device equal the CPU") {
  use_emulator();
  const std::int64_t P = 300;
  const Tensor w0 = seeded(Shape{P}, 1, DType::f32), g0 = seeded(Shape{P}, 2, DType::f32);
  const Tensor mask = seeded(Shape{P}, 3, DType::f32, 0.0, 1.0);
  for (nn::OptimizerKind kind : {nn::OptimizerKind::sgd, nn::OptimizerKind::adam}) {
    nn::OptimizerConfig c;
    c.kind = kind;
    c.momentum = 0.9;
    c.weight_decay = 0.01;
    nn::Optimizer on_cpu(c), on_dev(c);
    on_cpu.set_decay_mask(mask);
    on_dev.set_decay_mask(mask.to(Device::cuda));
    Tensor w = w0.clone(), wd = w0.to(Device::cuda);
    for (int k = 0; k < 3; ++k) {
      on_cpu.step(w, g0);
      on_dev.step(wd, g0.to(Device::cuda));
    }
    CHECK(wd.device() == Device::cuda);
    same_bits(w, wd, kind == nn::OptimizerKind::sgd ? "sgd" : "adam");
  }
  nn::ModelState host;
  host.running_mean = {seeded(Shape{4}, 4, DType::f32)};
  host.running_var = {seeded(Shape{4}, 5, DType::f32, 0.5, 2.0)};
  nn::ModelState dev = host.to(Device::cuda);
  const Tensor mean = seeded(Shape{4}, 6, DType::f32), var = seeded(Shape{4}, 7, DType::f32, 0.5, 2.0);
  nn::update_running_stats(host, 0, mean, var);
  nn::update_running_stats(dev, 0, mean.to(Device::cuda), var.to(Device::cuda));
  same_bits(host.running_mean[0], dev.running_mean[0], "running mean");
  same_bits(host.running_var[0], dev.running_var[0], "running variance");
  CHECK(g_kernel_calls > 0);
}

TEST_CASE("the user-loss problem of tests/cuda and bench_gpu_hypergradient on a device equals the CPU bit for bit") {
  // tests/cuda/hpo_problem.h's problem (a model over synthetic data, written as user losses),
  // checked here before any GPU session runs it: an MLP (no pooling: the emulator has none).
  use_emulator();
  nn::MlpOptions mo;
  mo.hidden = {16};
  mo.activation = nn::Activation::tanh;
  const auto model = std::make_shared<nn::Mlp>(Shape{1, 4, 4}, 3, mo);
  ModelProblemSpec spec;
  const hpo::BilevelProblem cpu = model_problem(model, spec);
  spec.device = Device::cuda;
  const hpo::BilevelProblem dev = model_problem(model, spec);
  const Tensor theta = cpu.hyper.initial(DType::f64);
  const hpo::Hypergradient reverse_on_device = run_method("reverse", dev, theta);
  same_hypergradient(run_method("reverse", cpu, theta), reverse_on_device);
  same_hypergradient(run_method("forward", cpu, theta), run_method("forward", dev, theta));
  CHECK(reverse_on_device.val_loss < std::log(3.0));  // training made progress
}
