// The program among MPI ranks (`mpirun -np N gradhpo <subcommand> --distribute ...`): which rank
// this process is, and rank 0's text on every rank. Without MPI (a build without gradhpo::mpi,
// or a process not started by mpirun) the program is rank 0 of 1 and these are identities.
// Only rank 0 writes the run folder and prints; every rank computes.
#pragma once

#include <string>

namespace gradhpo::tools {

struct Ranks {
  int rank = 0, size = 1;
  bool root() const { return rank == 0; }
};

/// Starts MPI when the process was started by mpirun (Open MPI's OMPI_COMM_WORLD_SIZE, or
/// PMI_SIZE) and the build has gradhpo::mpi; on every rank but 0, standard output is discarded.
/// Returns this process's place. Call once, at the start of main; MPI ends at exit.
Ranks start_ranks(int* argc, char*** argv);
/// This process's place (rank 0 of 1 before start_ranks or without MPI).
Ranks ranks();
/// Whether the program runs under MPI (start_ranks started it).
bool under_mpi();
/// Rank 0's `text` on every rank (a broadcast; `text` itself without MPI).
std::string from_root(const std::string& text);
/// Ends every rank with `why`, naming this rank (MPI_Abort), when running on several ranks: an
/// error on one rank while the others wait in a collective would hang the job. Needs nothing of
/// the other ranks (no collective), so it works wherever they are. Returns without MPI or on a
/// single rank.
void abort_other_ranks(const std::string& why);

}  // namespace gradhpo::tools
