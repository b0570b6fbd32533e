// An embedder that runs MPI itself (gradhpo_consumer starts it as `mpirun -np 2`): it calls
// MPI_Init, makes its own communicator — MPI_COMM_WORLD split with the ranks in reverse order,
// so that gradhpo's rank r is not the world's — and hands it to gradhpo::mpi::Communicator. The
// forward-mode hypergradient of its own problem (embed_problem.h: an L2 coefficient and two
// learning rates, 3 columns over 2 ranks) is then computed with the columns sharded over that
// communicator through the public API (mpi::forward_hypergradient), and must equal the one-process forward
// hypergradient bit for bit (gradhpo_consumer sets GRADHPO_GEMM=eigen, hpo/mpi/forward_columns.h),
// with the same bits on every rank. The embedder's communicator stays its own: usable after
// gradhpo is done with it. Exits 0 on every rank iff all of that holds.
#include <mpi.h>

#include <gradhpo/hpo/mpi/communicator.h>
#include <gradhpo/hpo/mpi/forward_columns.h>
#include <gradhpo/hpo/registry.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "embed_problem.h"

using namespace gradhpo;

namespace {

std::string bits_of(const Tensor& t) { return std::string(static_cast<const char*>(t.raw()), t.nbytes()); }

/// Whether every rank of `comm` says yes.
bool everyone(bool mine, MPI_Comm comm) {
  int ok = mine ? 1 : 0, all = 0;
  MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_LAND, comm);
  return all == 1;
}

/// The embedder's work on its own communicator; true where this rank's checks hold.
bool run_sharded(MPI_Comm own) {
  const mpi::Communicator comm(own);
  hpo::register_builtin_methods();
  const hpo::Registry& registry = hpo::Registry::global();
  const hpo::BilevelProblem p = consumer::make_problem();
  const Tensor th = p.hyper.initial();
  const hpo::Hypergradient one = registry.make_offline("forward")->compute(p, th);
  const hpo::Hypergradient sharded = mpi::forward_hypergradient(comm, p, th);
  const bool same = bits_of(sharded.d_theta) == bits_of(one.d_theta);
  bool same_everywhere = true;
  const std::vector<std::string> all = comm.gather(bits_of(sharded.d_theta));
  for (const std::string& b : all) same_everywhere = same_everywhere && b == bits_of(sharded.d_theta);
  std::printf("%s: %lld of %lld columns here; dL_val/d%s = %.17g (one process: %.17g)%s\n", comm.where().c_str(),
              static_cast<long long>(sharded.cost.directions), static_cast<long long>(th.numel()),
              p.hyper.entry_name(0).c_str(), sharded.d_theta.at(0), one.d_theta.at(0),
              same ? ", the same bits" : ", DIFFERENT bits");
  return same && same_everywhere && sharded.cost.directions < th.numel();
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int world_rank = 0, world_size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world_size);
  MPI_Comm own = MPI_COMM_NULL;
  MPI_Comm_split(MPI_COMM_WORLD, 0, world_size - 1 - world_rank, &own);  // reversed rank order
  int own_rank = -1;
  MPI_Comm_rank(own, &own_rank);
  bool ok = world_size == 2 && own_rank == world_size - 1 - world_rank;
  try {
    ok = run_sharded(own) && ok;
  } catch (const std::exception& e) {
    std::printf("world rank %d: %s\n", world_rank, e.what());
    ok = false;
  }
  ok = everyone(ok, own);  // the embedder's communicator, still its own after gradhpo's duplicate
  if (world_rank == 0) std::printf("sharded forward mode on the embedder's communicator: %s\n", ok ? "ok" : "FAILED");
  MPI_Comm_free(&own);
  MPI_Finalize();
  return ok ? 0 : 1;
}
