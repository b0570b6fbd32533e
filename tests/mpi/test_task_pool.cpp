// Dynamic scheduling of independent tasks: every task runs once, outcomes come back by index
// whatever the rank count, a task's error is a failed outcome (the job goes on), and with
// several ranks the work is done by the workers while rank 0 coordinates.
#include <doctest/doctest.h>

#include <set>
#include <string>

#include <gradhpo/engine/error.h>
#include <gradhpo/hpo/mpi/task_pool.h>

using gradhpo::mpi::Communicator;
using gradhpo::mpi::TaskOutcome;

namespace {

std::string square_or_fail(std::int64_t i) {
  if (i % 5 == 3) throw gradhpo::Error("task " + std::to_string(i) + " diverged");
  return std::to_string(i * i);
}

}  // namespace

TEST_CASE("run_tasks: each task once, by index, failures recorded") {
  const Communicator c = Communicator::world();
  std::set<std::int64_t> seen;
  const std::vector<TaskOutcome> out =
      gradhpo::mpi::run_tasks(c, 23, square_or_fail, [&](const TaskOutcome& o) { seen.insert(o.index); });
  if (!c.is_root()) {
    CHECK(out.empty());
    CHECK(seen.empty());
    return;
  }
  REQUIRE(out.size() == 23);
  CHECK(seen.size() == 23);
  for (std::int64_t i = 0; i < 23; ++i) {
    const TaskOutcome& o = out[static_cast<std::size_t>(i)];
    CHECK(o.index == i);
    if (i % 5 == 3) {
      CHECK_FALSE(o.ok);
      CHECK(o.error == "task " + std::to_string(i) + " diverged");
    } else {
      CHECK(o.ok);
      CHECK(o.bytes == std::to_string(i * i));
    }
    // Rank 0 coordinates when there are workers, and runs everything itself when alone.
    if (c.size() == 1) CHECK(o.rank == 0);
    else CHECK((o.rank >= 1 && o.rank < c.size()));
  }
}

TEST_CASE("run_tasks: no tasks, and fewer tasks than workers") {
  const Communicator c = Communicator::world();
  CHECK(gradhpo::mpi::run_tasks(c, 0, square_or_fail).empty());
  const std::vector<TaskOutcome> one = gradhpo::mpi::run_tasks(c, 1, square_or_fail);
  if (c.is_root()) {
    REQUIRE(one.size() == 1);
    CHECK(one[0].bytes == "0");
  }
}
