// Resources before work (hpo/resources.h): the memory available from /proc/meminfo and the
// cgroup's limits (v2 and v1, on a fake tree), the refusal of a run that does not fit, before any
// work, and the estimates of online methods and searches. (Every offline method's estimate is
// checked against the peak it reports by the registry-wide tests, test_registry.cpp.)
#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <limits>

#include <gradhpo/hpo/methods/reverse.h>
#include <gradhpo/hpo/resources.h>

#include "toy.h"

using namespace gradhpo;
using namespace gradhpo::testing;
namespace fs = std::filesystem;

namespace {

/// A fake root with /proc and /sys/fs/cgroup files, removed with the object.
struct FakeRoot {
  fs::path dir;
  explicit FakeRoot(const std::string& name)
      : dir(fs::temp_directory_path() / ("gradhpo-res-" + name + "-" + std::to_string(::getpid()))) {
    fs::remove_all(dir);
  }
  ~FakeRoot() { fs::remove_all(dir); }
  FakeRoot(const FakeRoot&) = delete;
  FakeRoot& operator=(const FakeRoot&) = delete;
  void write(const std::string& file, const std::string& text) const {
    const fs::path p = dir / fs::path(file).relative_path();
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
  }
  std::string root() const { return dir.string(); }
};

constexpr std::size_t kGiB = std::size_t{1} << 30;

}  // namespace

TEST_CASE("available memory: MemAvailable alone, when no cgroup limits") {
  FakeRoot r("meminfo");
  r.write("/proc/meminfo", "MemTotal:       32000000 kB\nMemFree:         1000000 kB\nMemAvailable:    8000000 kB\n");
  r.write("/proc/self/cgroup", "0::/\n");
  r.write("/sys/fs/cgroup/cgroup.controllers", "cpu memory\n");
  r.write("/sys/fs/cgroup/memory.max", "max\n");
  const hpo::MemoryAvailable m = hpo::available_memory(r.root());
  CHECK(m.bytes == std::size_t{8000000} * 1024);
  CHECK(contains(m.source, "MemAvailable"));
}

TEST_CASE("available memory: cgroup v2 memory.max minus memory.current, the tightest along the chain") {
  FakeRoot r("v2");
  r.write("/proc/meminfo", "MemAvailable:   16000000 kB\n");
  r.write("/proc/self/cgroup", "0::/jobs/run7\n");
  r.write("/sys/fs/cgroup/cgroup.controllers", "cpu memory\n");
  r.write("/sys/fs/cgroup/jobs/run7/memory.max", std::to_string(4 * kGiB) + "\n");
  r.write("/sys/fs/cgroup/jobs/run7/memory.current", std::to_string(1 * kGiB) + "\n");
  r.write("/sys/fs/cgroup/jobs/memory.max", "max\n");
  hpo::MemoryAvailable m = hpo::available_memory(r.root());
  CHECK(m.bytes == 3 * kGiB);
  CHECK(contains(m.source, "memory.max minus memory.current"));
  // A parent's limit binds too: 2 GiB with 1.5 GiB used leaves 0.5 GiB.
  r.write("/sys/fs/cgroup/jobs/memory.max", std::to_string(2 * kGiB) + "\n");
  r.write("/sys/fs/cgroup/jobs/memory.current", std::to_string(3 * kGiB / 2) + "\n");
  m = hpo::available_memory(r.root());
  CHECK(m.bytes == kGiB / 2);
  CHECK(contains(m.source, "/jobs)"));
  // Usage above the limit leaves nothing, not a wrapped-around size.
  r.write("/sys/fs/cgroup/jobs/memory.current", std::to_string(3 * kGiB) + "\n");
  CHECK(hpo::available_memory(r.root()).bytes == 0);
}

TEST_CASE("available memory: cgroup v1 memory.limit_in_bytes minus memory.usage_in_bytes") {
  FakeRoot r("v1");
  r.write("/proc/meminfo", "MemAvailable:   16000000 kB\n");
  r.write("/proc/self/cgroup", "5:cpu,cpuacct:/\n4:memory:/batch/job\n0::/\n");
  r.write("/sys/fs/cgroup/memory/batch/job/memory.limit_in_bytes", std::to_string(6 * kGiB) + "\n");
  r.write("/sys/fs/cgroup/memory/batch/job/memory.usage_in_bytes", std::to_string(2 * kGiB) + "\n");
  r.write("/sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n");  // v1's "no limit"
  const hpo::MemoryAvailable m = hpo::available_memory(r.root());
  CHECK(m.bytes == 4 * kGiB);
  CHECK(contains(m.source, "memory.limit_in_bytes minus memory.usage_in_bytes"));
  // This process's own view on the real machine: some memory, from somewhere.
  const hpo::MemoryAvailable here = hpo::available_memory();
  CHECK(here.bytes > 0);
  CHECK_FALSE(here.source.empty());
}

TEST_CASE("format_bytes writes three significant digits in powers of 1000") {
  CHECK(hpo::format_bytes(512) == "512 bytes");
  CHECK(hpo::format_bytes(1234) == "1.23 kB");
  CHECK(hpo::format_bytes(9.32e9) == "9.32 GB");
  CHECK(hpo::format_bytes(42.2e12) == "42.2 TB");
  CHECK(hpo::format_bytes(340e6) == "340 MB");
}

TEST_CASE("a run whose estimate exceeds the memory available is refused with what would fit") {
  const hpo::ClassificationTask t = toy_task(schedule_spec());  // SGD with momentum, T = 60
  const auto store_all = make_method("reverse");
  const hpo::Estimate e = store_all->estimate(t.problem);
  const auto checkpoint = make_method("reverse", {{"policy", "checkpoint"}});
  const std::size_t fits_checkpoint = checkpoint->estimate(t.problem).buffer_bytes;
  REQUIRE(fits_checkpoint < e.buffer_bytes);

  const hpo::MemoryAvailable plenty{e.buffer_bytes, "a test"};
  hpo::check_memory(*store_all, t.problem, nullptr, plenty);  // exactly enough: no refusal

  const hpo::MemoryAvailable tight{fits_checkpoint, "a test's limit"};
  const std::string msg = error_of([&] { hpo::check_memory(*store_all, t.problem, nullptr, tight); });
  INFO(msg);
  CHECK(contains(msg, "reverse: this run needs about " + hpo::format_bytes(static_cast<double>(e.buffer_bytes))));
  CHECK(contains(msg, "is available (a test's limit)"));
  CHECK(contains(msg, "T = 60 steps"));
  // Both other policies fit, smallest first, each with its estimate.
  const std::size_t fit = msg.find("These would fit:\n  policy=exact-reversal: about ");
  CHECK(fit != std::string::npos);
  CHECK(msg.find("\n  policy=checkpoint checkpoint-every=8: about " + hpo::format_bytes(static_cast<double>(fits_checkpoint))) > fit);

  // Nothing fits: said so, with the way out.
  const std::string none = error_of([&] { hpo::check_memory(*store_all, t.problem, nullptr, {100, "a test"}); });
  CHECK(contains(none, "No other policy fits either"));
  CHECK(contains(none, "Shorten the run"));

  // A segment costs what a run of its length costs: 5 steps fit where 60 do not.
  hpo::Segment seg;
  seg.first = 10;
  seg.steps = 5;
  hpo::check_memory(*store_all, t.problem, &seg, {e.buffer_bytes / 4, "a test"});
}

TEST_CASE("compute refuses a run that cannot fit before any training") {
  // T = 10^12 steps: store-all would need ~ petabytes; compute must throw at once, not train.
  ToySpec spec = schedule_spec();
  hpo::ClassificationTask t = toy_task(spec);
  t.problem.horizon = 1'000'000'000'000;
  const std::string msg = error_of([&] { run_method("reverse", t.problem, t.problem.hyper.initial()); });
  INFO(msg);
  CHECK(contains(msg, "Refused before any work"));
  CHECK(contains(msg, "is available ("));
}

TEST_CASE("online methods estimate their buffers and refuse in init() a run that cannot fit") {
  hpo::register_builtin_methods();
  const hpo::Registry& reg = hpo::Registry::global();
  ToySpec spec = schedule_spec();
  hpo::ClassificationTask t = toy_task(spec);
  const hpo::BilevelProblem& p = t.problem;
  const std::size_t state = 2 * static_cast<std::size_t>(p.num_params()) * sizeof(double);  // SGD: w, v in f64
  ToySpec one_lr = spec;  // hypergradient descent learns one global learning rate only
  one_lr.lr_blocks = 1;
  one_lr.learn_momentum = false;
  const hpo::ClassificationTask t1 = toy_task(one_lr);
  for (const std::string& name : reg.names(hpo::MethodKind::online)) {
    const hpo::BilevelProblem& q = name == "hypergradient-descent" ? t1.problem : p;
    const auto m = reg.make_online(name, q, hpo::OuterOptions{});
    const hpo::Estimate e = m->estimate();
    INFO(name << ": " << e.buffer_bytes << " bytes (" << e.explain << ")");
    // At least S_t, S_{t+1} and the two losses of each step; at most a few dozen states more.
    CHECK(e.buffer_bytes >= 2 * state + 2 * 60 * sizeof(double));
    CHECK(e.buffer_bytes <= 12 * state + 4 * 60 * sizeof(double) + 1024);
    CHECK(contains(e.explain, "T = 60 steps"));
    m->init();  // fits
  }
  // T = 10^12: the per-step losses alone are 16 TB; init() refuses before the first step.
  t.problem.horizon = 1'000'000'000'000;
  const auto big = reg.make_online("online-t1t2", t.problem, hpo::OuterOptions{});
  const std::string msg = error_of([&] { big->init(); });
  INFO(msg);
  CHECK(contains(msg, "online-t1t2: this run needs about "));
  CHECK(contains(msg, "Refused before any work."));
}

TEST_CASE("searches estimate one training run and their trials, which the trial runner checks") {
  const hpo::ClassificationTask t = toy_task(schedule_spec());
  const hpo::BilevelProblem& p = t.problem;
  const std::size_t P = static_cast<std::size_t>(p.num_params()), N = static_cast<std::size_t>(p.hyper.size());
  const hpo::Estimate e = hpo::search_estimate(p, 10);
  INFO(e.explain);
  // S_t, S_{t+1} (w and v each) and g_t in float64, and ten trials' records.
  CHECK(e.buffer_bytes == 5 * P * sizeof(double) + 10 * (2 * N + 16) * sizeof(double));
  CHECK(e.gradient_equivalents == 10.0 * 60);
  CHECK(contains(e.explain, "10 trials"));
  // What the runner would say if it did not fit (the same check_memory as the methods').
  const std::string msg = error_of([&] { hpo::check_memory("random search", e, p, {}, {e.buffer_bytes - 1, "a test"}); });
  CHECK(contains(msg, "random search: this run needs about "));
  CHECK(contains(msg, "one training run's S_t"));
  hpo::Budget budget;
  budget.inner_steps = 120;
  hpo::TrialRunner runner(p, budget, 1, "a test");  // fits: constructed
  CHECK(runner.trials().empty());
}
