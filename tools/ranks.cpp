#include "ranks.h"

#include <cstdlib>
#include <iostream>
#include <memory>
#include <streambuf>

#ifdef GRADHPO_WITH_MPI
#include <gradhpo/hpo/mpi/communicator.h>
#endif

namespace gradhpo::tools {

namespace {

Ranks current;
bool started = false;

/// A stream buffer that drops everything (standard output of ranks other than 0).
class Discard : public std::streambuf {
 protected:
  int overflow(int c) override { return c == traits_type::eof() ? 0 : c; }
  std::streamsize xsputn(const char*, std::streamsize n) override { return n; }
};

bool launched_by_mpirun() { return std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("PMI_SIZE"); }

#ifdef GRADHPO_WITH_MPI
std::unique_ptr<mpi::Session> session;
// The world's duplicate, made once at the start while every rank is there: making one is a
// collective (MPI_Comm_dup), which a rank ending the job after an error must not need — the
// others wait in another collective and would never join it.
std::unique_ptr<mpi::Communicator> world;
#endif

}  // namespace

Ranks start_ranks(int* argc, char*** argv) {
#ifdef GRADHPO_WITH_MPI
  if (launched_by_mpirun()) {
    session = std::make_unique<mpi::Session>(argc, argv);
    world = std::make_unique<mpi::Communicator>(mpi::Communicator::world());
    std::atexit([] {
      world.reset();  // freed while MPI is up
      session.reset();
    });
    current = {world->rank(), world->size()};
    started = true;
    if (!current.root()) {
      // Never destroyed: std::cout is flushed at exit after function-local statics are gone.
      static Discard* const discard = new Discard;
      std::cout.rdbuf(discard);
    }
  }
#else
  (void)argc;
  (void)argv;
#endif
  return current;
}

Ranks ranks() { return current; }

bool under_mpi() { return started; }

std::string from_root(const std::string& text) {
#ifdef GRADHPO_WITH_MPI
  if (started && current.size > 1) {
    std::string bytes = text;
    world->broadcast(bytes);
    return bytes;
  }
#endif
  return text;
}

void abort_other_ranks(const std::string& why) {
#ifdef GRADHPO_WITH_MPI
  if (started && current.size > 1) world->abort(why);
#else
  (void)why;
#endif
}

}  // namespace gradhpo::tools
