// Hypervariance's perturbations spread over MPI ranks (the trials workload; DESIGN.md, "Beyond
// one machine"): every perturbation of hpo::hypervariance (hpo/eval/diagnostics.h) — P per
// factor, its θ drawn up front on every rank exactly as one process draws it — is one task of
// the task pool (task_pool.h: rank 0 hands out indices, dynamic scheduling), and the
// hypergradients are gathered by index, so the rows are the single-process rows bit for bit
// (their seconds aside: the sum of each sample's own time, on whichever rank computed it) for
// any rank count, on every rank.
#pragma once

#include <cstdint>
#include <vector>

#include "../eval/diagnostics.h"
#include "communicator.h"

namespace gradhpo::mpi {

/// hpo::hypervariance over `comm`'s ranks; every rank calls it with the same arguments and gets
/// the same rows. A perturbation that throws ends the call with that Error on every rank, naming
/// the perturbation and the rank that ran it.
std::vector<hpo::HypervarianceRow> hypervariance(const Communicator& comm, const hpo::ProblemFactory& factory,
                                                 const Tensor& theta, const hpo::Method& method, int perturbations,
                                                 const std::vector<hpo::Factor>& factors, std::uint64_t seed = 0);

}  // namespace gradhpo::mpi
