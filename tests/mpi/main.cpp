// The MPI suite's main: MPI for the whole run (gradhpo::mpi::Session), then doctest on every
// rank. Each rank's exit status is its own result; mpirun fails when any rank fails.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <gradhpo/hpo/mpi/communicator.h>

int main(int argc, char** argv) {
  gradhpo::mpi::Session session(&argc, &argv);
  doctest::Context context(argc, argv);
  return context.run();
}
