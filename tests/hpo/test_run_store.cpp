// The run store (run_store.h): the one commit primitive and its fault hook, the folder rules,
// and an outer loop whose rows and state reach disk in one commit, killed at every commit (in a
// forked child) and resumed from the store to the uninterrupted run's bits.
#include "toy.h"
#include "wrapped_methods.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>

#include <gradhpo/hpo/run_store.h>
#include <gradhpo/hpo/solve.h>

#include "../data/temp_dir.h"

using namespace gradhpo;
using namespace gradhpo::testing;

namespace {

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

/// Runs `body` in a forked child that dies at its n-th commit (a kill); returns whether it was
/// killed (false: it finished before its n-th commit).
bool killed_at_commit(std::int64_t n, const std::function<void()>& body) {
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    hpo::fail_at_commit(hpo::commits_made() + n);
    try {
      body();
    } catch (...) {
      ::_exit(3);
    }
    ::_exit(0);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  if (WIFSIGNALED(status)) {
    CHECK(WTERMSIG(status) == SIGKILL);
    return true;
  }
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  return false;
}


}  // namespace

TEST_CASE("run store: a kill inside commit_file leaves the old file whole, the new bytes only in the temporary file") {
  TempDir dir;
  const std::string path = dir.file("f.bin");
  CHECK(killed_at_commit(2, [&] {
    hpo::commit_file(path, "one");
    hpo::commit_file(path, "two");
  }));
  CHECK(slurp(path) == "one");
  CHECK(slurp(path + ".tmp") == "two");
  CHECK(!killed_at_commit(3, [&] {
    hpo::commit_file(path, "three");
    hpo::commit_file(path, "four");
  }));
  CHECK(slurp(path) == "four");
  CHECK(!std::filesystem::exists(path + ".tmp"));
}

TEST_CASE("run store: folders — a run is refused where one is, resumed only where one is, checked before use") {
  TempDir dir;
  const std::string folder = dir.file("run");
  hpo::RunStore made = hpo::RunStore::create(folder, "hpo", R"({"seed": 3})");
  made.commit({{"solve", "bytes"}});
  CHECK(hpo::holds_run(folder));
  CHECK_THROWS_WITH_AS(hpo::RunStore::create(folder, "hpo", "{}"), doctest::Contains("already holds a run"), Error);
  CHECK_THROWS_WITH_AS(hpo::RunStore::open(dir.file("none"), "hpo"), doctest::Contains("no such folder"), Error);
  CHECK(!std::filesystem::exists(dir.file("none")));
  CHECK_THROWS_WITH_AS(hpo::RunStore::open(dir.path, "hpo"), doctest::Contains("holds no run to resume"), Error);
  CHECK_THROWS_WITH_AS(hpo::RunStore::open(folder, "compare"), doctest::Contains("holds a run of `gradhpo hpo`"), Error);
  std::ofstream(dir.file("file")) << "x";
  CHECK_THROWS_WITH_AS(hpo::check_run_folder(dir.file("file/run"), hpo::FolderUse::fresh),
                       doctest::Contains("cannot create the run folder"), Error);
  // Opened: the record as committed, and a killed commit's temporary file gone.
  std::ofstream(folder + "/results.json.tmp") << "half";
  const hpo::RunStore opened = hpo::RunStore::open(folder, "hpo");
  CHECK(opened.record().config_json == R"({"seed": 3})");
  CHECK(opened.get("solve") == "bytes");
  CHECK(!std::filesystem::exists(folder + "/results.json.tmp"));
  // Overwritten: a new record, none of the old sections.
  const hpo::RunStore over = hpo::RunStore::create(folder, "hpo", R"({"seed": 4})", hpo::FolderUse::overwrite);
  CHECK(!hpo::RunStore::open(folder, "hpo").has("solve"));
  // A derived file is not rewritten when it holds the text already (no commit).
  over.write_derived("a.txt", "same");
  const std::int64_t before = hpo::commits_made();
  over.write_derived("a.txt", "same");
  CHECK(hpo::commits_made() == before);
}

TEST_CASE("run store: an outer loop killed at every commit (rows, state and a derived file) resumes to the same bits") {
  const TestMethods registered;
  const hpo::ClassificationTask task = toy_task(schedule_spec());
  const hpo::SolveOptions o = forward_options(4);
  const hpo::Summary whole = hpo::solve(task.problem, o);
  // What a command does: the state committed after every step, a file derived from its rows.
  auto run_into = [&](const std::string& folder, bool resume) {
    hpo::RunStore store = resume ? hpo::RunStore::open(folder, "test") : hpo::RunStore::create(folder, "test", "{}");
    std::optional<hpo::SolveState> state;
    if (store.has("solve")) state = hpo::solve_state_from_bytes(store.get("solve"), folder);
    hpo::SolveOptions so = o;
    auto derive = [&](const hpo::SolveState& s) {
      std::string steps;
      for (const hpo::SolveRow& r : s.rows) steps += std::to_string(r.step) + " ";
      store.write_derived("steps.txt", steps);
    };
    if (state) {
      so.resume = &*state;
      derive(*state);  // at the start of a resume: a kill between the commit and this file is repaired
    }
    so.save = [&](const hpo::SolveState& s) {
      store.commit({{"solve", hpo::solve_state_bytes(s)}});
      derive(s);
    };
    return hpo::solve(task.problem, so);
  };
  TempDir dir;
  int killed = 0;
  for (int n = 1;; ++n) {
    CAPTURE(n);
    const std::string folder = dir.file("cut" + std::to_string(n));
    if (!killed_at_commit(n, [&] { (void)run_into(folder, false); })) break;
    ++killed;
    const bool recorded = std::filesystem::exists(folder + "/run.state");
    const hpo::Summary resumed = run_into(folder, recorded);
    REQUIRE(resumed.rows.size() == whole.rows.size());
    for (std::size_t i = 0; i < whole.rows.size(); ++i) {
      CHECK(resumed.rows[i].step == static_cast<int>(i));  // never 0, 1, 1, 2, ...
      CHECK(resumed.rows[i].theta == whole.rows[i].theta);
      CHECK(resumed.rows[i].val_loss == whole.rows[i].val_loss);
    }
    CHECK(resumed.theta.to_vector() == whole.theta.to_vector());
    CHECK(slurp(folder + "/steps.txt") == "0 1 2 3 ");
  }
  CHECK(killed == 1 + 2 * 4);  // the record's creation, then per step the state and the derived file
}
