// The device half of data-parallel sums (hpo/mpi/nccl_sums.h). Everywhere: host parts pass
// through to the rank-ordered host sum untouched, and no NCCL communicator is made. Where there is
// a GPU (and this build has NCCL), at one rank — one GPU is one rank, NCCL refuses two on one
// device — data-parallel training with its weights on the GPU goes through NCCL (the host sum
// would refuse a device tensor) and gives the CPU's hypergradient to float64 rounding.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include <gradhpo/hpo/mpi/data_parallel.h>
#include <gradhpo/hpo/mpi/nccl_sums.h>

#if GRADHPO_HAVE_CUDA
#include <gradhpo/cuda/cuda.h>
#include <gradhpo/cuda/nccl.h>
#endif

#include "../hpo/toy.h"
#include "bits.h"

using gradhpo::mpi::Communicator;
using namespace gradhpo;
using namespace gradhpo::testing;

TEST_CASE("nccl sums: host parts go on to the host sum untouched, and no NCCL communicator is made") {
  mpi::NcclSums sums(Communicator::world());
  Tensor loss = Tensor::from({0.5}, Shape{}, DType::f64);
  Tensor grad = Tensor::from({1.0, 2.0, 3.0}, Shape{3}, DType::f32);
  const Tensor grad_before = grad;
  const std::vector<Tensor*> parts{&loss, &grad};
  CHECK(sums.sum_device_parts(parts) == parts);
  CHECK(grad.shares_storage_with(grad_before));
  CHECK(sums.allreduce_calls() == 0);
}

TEST_CASE("nccl sums: data-parallel training on the GPU, one rank: through NCCL, the CPU's hypergradient") {
#if GRADHPO_HAVE_CUDA
  const Communicator comm = Communicator::world();
  if (!cuda::nccl_built() || !cuda::available() || comm.size() != 1) {
    MESSAGE("skipped: needs a GPU, NCCL and one rank (" << comm.size() << " here)");
    return;
  }
  ToySpec spec;
  spec.horizon = 12;
  const hpo::ClassificationTask cpu = toy_task(spec);
  spec.device = Device::cuda;
  spec.shard_count = comm.size();
  spec.shard_rank = comm.rank();
  hpo::ClassificationTask gpu = toy_task(spec);
  mpi::train_data_parallel(gpu.problem, comm);
  const Tensor theta = cpu.problem.hyper.initial();
  for (const char* method : {"reverse", "forward"}) {
    INFO(method);
    const hpo::Hypergradient want = run_method(method, cpu.problem, theta);
    const hpo::Hypergradient got = run_method(method, gpu.problem, theta);  // the host sum alone would throw
    CHECK(rel(got.d_theta, want.d_theta) <= 1e-12);
    CHECK(std::abs(got.val_loss - want.val_loss) <= 1e-12 * std::abs(want.val_loss));
  }
#else
  MESSAGE("skipped: a build without CUDA");
#endif
}
