// The communicator at whatever rank count mpirun started (1, 2 and 4 in ctest): collectives
// deliver what they promise, sums are added in rank order (the same bits on every rank, and
// the bits of a sequential sum in that order), and MPI's errors arrive as gradhpo::Error.
#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <vector>

#include <gradhpo/engine/error.h>
#include <gradhpo/hpo/mpi/communicator.h>

#include "bits.h"

using gradhpo::testing::bits_of;

using gradhpo::mpi::Communicator;

namespace {

// A contribution whose sum depends on the order of additions: 1e16 + 1 rounds to 1e16, so
// adding in another order than 0, 1, 2, ... gives other bits.
double contribution(int rank, int i) {
  const double pattern[] = {1e16, 1.0, -1e16, 1.0, 0.1, 3e-17};
  return pattern[(rank + i) % 6] * (1 + 0.25 * i);
}

}  // namespace

TEST_CASE("world: rank and size as MPI has them") {
  const Communicator c = Communicator::world();
  int rank = -1, size = -1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  CHECK(c.rank() == rank);
  CHECK(c.size() == size);
  CHECK(c.is_root() == (rank == 0));
  CHECK(c.where() == "rank " + std::to_string(rank) + " of " + std::to_string(size));
}

TEST_CASE("broadcast and gather move bytes by rank") {
  const Communicator c = Communicator::world();
  std::string text = c.is_root() ? std::string("from the root\0with a zero byte", 30) : "not yet";
  c.broadcast(text);
  CHECK(text == std::string("from the root\0with a zero byte", 30));

  const std::vector<std::string> all = c.gather(std::string(static_cast<std::size_t>(c.rank()), 'x') + "!");
  if (c.is_root()) {
    REQUIRE(all.size() == static_cast<std::size_t>(c.size()));
    for (int r = 0; r < c.size(); ++r) CHECK(all[static_cast<std::size_t>(r)] == std::string(static_cast<std::size_t>(r), 'x') + "!");
  } else {
    CHECK(all.empty());
  }
}

TEST_CASE("sum_in_rank_order: a sequential sum in rank order, the same bits on every rank") {
  const Communicator c = Communicator::world();
  constexpr int n = 13;  // not a multiple of the rank count: chunks of unequal size
  std::vector<double> mine(n);
  for (int i = 0; i < n; ++i) mine[static_cast<std::size_t>(i)] = contribution(c.rank(), i);

  std::vector<double> expected(n);
  for (int i = 0; i < n; ++i) {
    double s = contribution(0, i);
    for (int r = 1; r < c.size(); ++r) s += contribution(r, i);
    expected[static_cast<std::size_t>(i)] = s;
  }
  c.sum_in_rank_order(mine.data(), n);
  CHECK(bits_of(mine) == bits_of(expected));
  const std::vector<std::string> everyone = c.gather(bits_of(mine));
  for (const std::string& b : everyone) CHECK(b == bits_of(expected));

  std::vector<float> f(3, static_cast<float>(c.rank() + 1));
  c.sum_in_rank_order(f.data(), 3);
  CHECK(f[2] == static_cast<float>(c.size() * (c.size() + 1) / 2));
}

TEST_CASE("an embedder's communicator: duplicated, its error handler left alone") {
  MPI_Comm halves = MPI_COMM_NULL;
  int world_rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
  MPI_Comm_split(MPI_COMM_WORLD, world_rank % 2, world_rank, &halves);
  {
    const Communicator c(halves);
    int size = 0;
    MPI_Comm_size(halves, &size);
    CHECK(c.size() == size);
    CHECK(c.rank() == world_rank / 2);
    std::vector<double> one{1.0};
    c.sum_in_rank_order(one.data(), 1);
    CHECK(one[0] == size);
  }
  MPI_Errhandler handler;
  MPI_Comm_get_errhandler(halves, &handler);
  CHECK(handler == MPI_ERRORS_ARE_FATAL);
  MPI_Errhandler_free(&handler);
  MPI_Comm_free(&halves);
}

TEST_CASE("a failed MPI call is an Error naming the call and the rank") {
  const Communicator c = Communicator::world();
  try {
    c.send(c.size(), 7, "to a rank that does not exist");
    FAIL("MPI_Send to rank " << c.size() << " of " << c.size() << " did not throw");
  } catch (const gradhpo::Error& e) {
    const std::string what = e.what();
    CHECK(what.find("MPI_Send failed on " + c.where()) == 0);
    INFO(what);
    CHECK(what.find("rank") != std::string::npos);
  }
}
