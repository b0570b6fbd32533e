// Run state that outlives a process (hpo/state.h): the CRC, the atomic write, SolveState's round
// trip field by field, and each refusal of a file that is not what it should be — naming the
// file and the problem, never returning a half-read state.
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>

#include <doctest/doctest.h>

#include <gradhpo/hpo/state.h>

#include "../data/temp_dir.h"

using namespace gradhpo;
using gradhpo::testing::TempDir;

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void write(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

bool same_bits(const Tensor& a, const Tensor& b) {
  if (a.defined() != b.defined()) return false;
  if (!a.defined()) return true;
  return a.dtype() == b.dtype() && a.shape() == b.shape() && a.nbytes() == b.nbytes() &&
         std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

/// A state with every field set to something other than its default.
hpo::SolveState full_state() {
  hpo::SolveState s;
  s.method = "forward";
  s.options_json = R"({"method": {"clip-hessian": 3}, "outer": {"kind": "sign"}})";
  s.theta = Tensor::from({0.1, -0.25, 1e-300}, Shape{3}, DType::f64);
  s.previous_theta = Tensor::from({0.3, 0.2, -0.1}, Shape{3}, DType::f64);
  s.outer.step = {0.1, 0.05, 4e-4};
  s.outer.last_sign = {1, -1, 0};
  s.outer.halvings = {0, 1, 3};
  s.outer.m = {1.5, -2.5, 0.125};
  s.outer.v = {0.5, 0.25, 1e-20};
  s.outer.t = 7;
  s.next_step = 2;
  s.rejections = 1;
  s.pass = 1;
  s.first_inner = 40;
  s.start.parts = {Tensor::from({1.0f, 2.0f, -3.5f, 4.0f}, Shape{2, 2}, DType::f32),
                   Tensor::from({0.5f, 0.25f, 0.125f, 1.0f}, Shape{2, 2}, DType::f32)};
  hpo::SolveRow ok;
  ok.step = 0;
  ok.first_inner = 20;
  ok.theta = {0.1, 0.2, 0.3};
  ok.hypergradient = {-1.0 / 3, 2.0 / 7, std::numeric_limits<double>::denorm_min()};
  ok.val_loss = 0.4288;
  ok.train_loss = 1.0 / 3;
  ok.hypergradient_norm = 0.43;
  ok.cost.seconds = 1.25;
  ok.cost.gradient_evals = 120;
  ok.cost.fwd_over_rev_passes = 60;
  ok.cost.directions = 3;
  ok.cost.step_passes = 180;
  ok.cost.trajectory_bytes = 1000;
  ok.cost.info_buffer_bytes = 2000;
  ok.cost.checkpoint_bytes = 3000;
  ok.cost.tangent_bytes = 4000;
  ok.cost.peak_bytes = 10000;
  ok.cost.info_bits_per_parameter_step = 2.5;
  ok.pass = 1;
  ok.pass_end = true;
  ok.metrics = {{"val_accuracy", 0.875}, {"test_accuracy", 0.5}};
  hpo::SolveRow rejected;
  rejected.step = 1;
  rejected.theta = {5.0, 6.0, 7.0};
  rejected.rejected = true;
  rejected.failure.method = "forward";
  rejected.failure.trial = 1;
  rejected.failure.inner_step = 57;
  rejected.failure.value = std::numeric_limits<double>::infinity();
  rejected.failure.hyperparameters = {{"lr[0]", 5.0}, {"momentum", 0.9}};
  rejected.failure.reason = "inner training diverged at step 57: the training loss is inf";
  s.rows = {ok, rejected};
  s.stop_reason = "sign stopping rule: every step size halved 3 times";
  return s;
}

}  // namespace

TEST_CASE("state: the CRC-32 is zlib's (the check value of '123456789')") {
  const std::string check = "123456789";
  CHECK(hpo::detail::crc32_of(check.data(), check.size()) == 0xCBF43926u);
  CHECK(hpo::detail::crc32_of(check.data(), 0) == 0u);
  CHECK(hpo::detail::crc32_of("a", 1) == 0xE8B7BE43u);
}

TEST_CASE("state: write_file_atomically replaces the file whole and leaves no temporary file") {
  TempDir dir;
  const std::string path = dir.file("f.bin");
  hpo::write_file_atomically(path, "first");
  CHECK(slurp(path) == "first");
  hpo::write_file_atomically(path, std::string("second\0with a zero", 18));
  CHECK(slurp(path) == std::string("second\0with a zero", 18));
  CHECK_FALSE(std::filesystem::exists(path + ".tmp"));
  CHECK_THROWS_WITH_AS(hpo::write_file_atomically(dir.file("no/such/folder/f.bin"), "x"),
                       doctest::Contains("no/such/folder/f.bin.tmp"), Error);
}

TEST_CASE("state: a SolveState saves and loads back field by field, bit for bit") {
  TempDir dir;
  const std::string path = dir.file("solve.bin");
  const hpo::SolveState a = full_state();
  hpo::save_state(a, path);
  const hpo::SolveState b = hpo::load_solve_state(path);
  CHECK(b.method == a.method);
  CHECK(b.options_json == a.options_json);
  CHECK(same_bits(b.theta, a.theta));
  CHECK(same_bits(b.previous_theta, a.previous_theta));
  CHECK(b.outer.step == a.outer.step);
  CHECK(b.outer.last_sign == a.outer.last_sign);
  CHECK(b.outer.halvings == a.outer.halvings);
  CHECK(b.outer.m == a.outer.m);
  CHECK(b.outer.v == a.outer.v);
  CHECK(b.outer.t == a.outer.t);
  CHECK(b.next_step == a.next_step);
  CHECK(b.rejections == a.rejections);
  CHECK(b.pass == a.pass);
  CHECK(b.first_inner == a.first_inner);
  CHECK(b.stop_reason == a.stop_reason);
  // The same record as bytes (what a run store keeps in its section).
  CHECK(hpo::solve_state_bytes(a) == slurp(path));
  CHECK(hpo::solve_state_from_bytes(slurp(path), "bytes").stop_reason == a.stop_reason);
  REQUIRE(b.start.parts.size() == 2);
  for (std::size_t i = 0; i < 2; ++i) CHECK(same_bits(b.start.parts[i], a.start.parts[i]));
  REQUIRE(b.rows.size() == 2);
  for (std::size_t i = 0; i < 2; ++i) {
    CAPTURE(i);
    const hpo::SolveRow &x = a.rows[i], &y = b.rows[i];
    CHECK(y.step == x.step);
    CHECK(y.first_inner == x.first_inner);
    CHECK(y.theta == x.theta);
    CHECK(y.hypergradient == x.hypergradient);
    CHECK(y.val_loss == x.val_loss);
    CHECK(y.train_loss == x.train_loss);
    CHECK(y.hypergradient_norm == x.hypergradient_norm);
    CHECK(y.cost.seconds == x.cost.seconds);
    CHECK(y.cost.gradient_evals == x.cost.gradient_evals);
    CHECK(y.cost.fwd_over_rev_passes == x.cost.fwd_over_rev_passes);
    CHECK(y.cost.directions == x.cost.directions);
    CHECK(y.cost.step_passes == x.cost.step_passes);
    CHECK(y.cost.trajectory_bytes == x.cost.trajectory_bytes);
    CHECK(y.cost.info_buffer_bytes == x.cost.info_buffer_bytes);
    CHECK(y.cost.checkpoint_bytes == x.cost.checkpoint_bytes);
    CHECK(y.cost.tangent_bytes == x.cost.tangent_bytes);
    CHECK(y.cost.peak_bytes == x.cost.peak_bytes);
    CHECK(y.cost.info_bits_per_parameter_step == x.cost.info_bits_per_parameter_step);
    CHECK(y.rejected == x.rejected);
    CHECK(y.failure.method == x.failure.method);
    CHECK(y.failure.trial == x.failure.trial);
    CHECK(y.failure.inner_step == x.failure.inner_step);
    CHECK(std::memcmp(&y.failure.value, &x.failure.value, sizeof(double)) == 0);  // NaN and inf by their bits
    CHECK(y.failure.hyperparameters == x.failure.hyperparameters);
    CHECK(y.failure.reason == x.failure.reason);
    CHECK(y.pass == x.pass);
    CHECK(y.pass_end == x.pass_end);
    CHECK(y.metrics == x.metrics);
  }
  // An empty state (no θ yet, no rows) is a state too.
  hpo::save_state(hpo::SolveState(), path);
  const hpo::SolveState empty = hpo::load_solve_state(path);
  CHECK_FALSE(empty.theta.defined());
  CHECK(empty.rows.empty());
}

TEST_CASE("state: truncated, corrupt, foreign and other-version files are refused, naming the file") {
  TempDir dir;
  const std::string path = dir.file("solve.bin");
  hpo::save_state(full_state(), path);
  const std::string bytes = slurp(path);
  const std::string named = "'" + path + "'";
  auto refused = [&](const std::string& what) {
    try {
      (void)hpo::load_solve_state(path);
    } catch (const Error& e) {
      const std::string m = e.what();
      CHECK_MESSAGE(m.find(named) != std::string::npos, m);
      CHECK_MESSAGE(m.find(what) != std::string::npos, m);
      return;
    }
    FAIL("loaded a file that should be refused: " << what);
  };
  SUBCASE("truncated anywhere") {
    for (const std::size_t keep : {bytes.size() - 1, bytes.size() - 7, bytes.size() / 2, std::size_t{30}, std::size_t{12}}) {
      CAPTURE(keep);
      write(path, bytes.substr(0, keep));
      refused("truncated");
    }
  }
  SUBCASE("one flipped bit in the payload or in the checksum") {
    for (const std::size_t at : {std::size_t{30}, bytes.size() / 2, bytes.size() - 5, bytes.size() - 1}) {
      CAPTURE(at);
      std::string flipped = bytes;
      flipped[at] = static_cast<char>(flipped[at] ^ 0x10);
      write(path, flipped);
      refused("corrupt (checksum mismatch)");
    }
  }
  SUBCASE("another format version") {
    std::string other = bytes;
    const std::uint32_t version = 7;
    std::memcpy(other.data() + 12, &version, 4);
    write(path, other);
    refused("has format version 7");
    refused("this build reads version " + std::to_string(hpo::SolveState::kVersion));
  }
  SUBCASE("another record type, and no state file at all") {
    hpo::BilevelState online;
    online.method = "t1t2";
    hpo::save_state(online, path);
    refused("holds an online method's state (BilevelState), not an outer loop's state (SolveState)");
    write(path, "hello");
    refused("is not a gradhpo state file");
    std::filesystem::remove(path);
    refused("cannot open state file");
  }
  SUBCASE("bytes after the checksum") {
    write(path, bytes + "x");
    refused("1 bytes after its checksum");
  }
}

TEST_CASE("state: a BilevelState keeps its fields, and is not read as a SolveState") {
  TempDir dir;
  const std::string path = dir.file("online.bin");
  hpo::BilevelState s;
  s.method = "hyperdistill";
  s.inner.parts = {Tensor::from({1.0, 2.0}, Shape{2}, DType::f64)};
  s.theta = Tensor::from({0.5}, Shape{1}, DType::f64);
  s.outer.step = {0.1};
  s.outer.t = 3;
  s.step = 9;
  s.rng = 0x123456789abcdefULL;
  s.extra["w_star"] = Tensor::from({4.0, 5.0}, Shape{2}, DType::f64);
  s.train_losses = {1.0, 0.5};
  s.val_losses = {0.75, std::numeric_limits<double>::quiet_NaN()};
  hpo::save_state(s, path);
  const hpo::BilevelState b = hpo::load_state(path);
  CHECK(b.method == s.method);
  CHECK(same_bits(b.inner.w(), s.inner.w()));
  CHECK(same_bits(b.theta, s.theta));
  CHECK(b.outer.step == s.outer.step);
  CHECK(b.outer.t == 3);
  CHECK(b.step == 9);
  CHECK(b.rng == s.rng);
  CHECK(same_bits(b.extra.at("w_star"), s.extra.at("w_star")));
  CHECK(b.train_losses == s.train_losses);
  CHECK(std::isnan(b.val_losses.at(1)));
  CHECK_THROWS_WITH_AS(hpo::load_solve_state(path), doctest::Contains("holds an online method's state"), Error);
  hpo::save_state(hpo::SolveState(), path);
  CHECK_THROWS_WITH_AS(hpo::load_state(path), doctest::Contains("holds an outer loop's state (SolveState)"), Error);
}

TEST_CASE("state: a RunRecord goes to bytes and back, and corrupt bytes are refused naming their source") {
  hpo::RunRecord r;
  r.command = "compare";
  r.config_json = R"({"seed": 3})";
  r.sections = {{"method/000000", std::string("row\0with a zero", 15)}, {"solve", "x"}};
  const std::string bytes = hpo::run_record_bytes(r);
  const hpo::RunRecord back = hpo::run_record_from_bytes(bytes, "here");
  CHECK(back.command == r.command);
  CHECK(back.config_json == r.config_json);
  CHECK(back.sections == r.sections);
  std::string bad = bytes;
  bad[bad.size() / 2] ^= 1;
  CHECK_THROWS_WITH_AS(hpo::run_record_from_bytes(bad, "here"), doctest::Contains("'here' is corrupt"), Error);
  CHECK_THROWS_WITH_AS(hpo::solve_state_from_bytes(bytes, "here"), doctest::Contains("holds a run store's record"), Error);
}

TEST_CASE("state: a BilevelState goes to bytes and back as save_state writes it") {
  TempDir dir;
  hpo::BilevelState a;
  a.method = "online-t1t2";
  a.step = 7;
  a.rng = 42;
  a.theta = Tensor::from(std::vector<double>{0.5, -1.25}, Shape{2}, DType::f64);
  a.train_losses = {1.5, 1.25};
  hpo::save_state(a, dir.file("b.bin"));
  CHECK(hpo::bilevel_state_bytes(a) == slurp(dir.file("b.bin")));
  const hpo::BilevelState b = hpo::bilevel_state_from_bytes(hpo::bilevel_state_bytes(a), "bytes");
  CHECK(b.method == a.method);
  CHECK(b.step == 7);
  CHECK(b.rng == 42);
  CHECK(b.theta.to_vector() == a.theta.to_vector());
  CHECK(b.train_losses == a.train_losses);
}
