// A user's program, compiled with its own flags (-march=x86-64-v2) against the installed
// headers and library: the header templates (grad, hvp) are instantiated here, under those
// flags. Exits 0 iff H·v of f(x) = Σ x³ at x = (1, 2, 3) along v = (1, 1, 1) is 6x = (6, 12, 18),
// a user's own bilevel problem gets the same hypergradient from every exact method (constructed
// by name) and hpo::solve resumes to the same bits (hpo_embed.cpp), the search components run
// (gradhpo_consumer_search), with MPI an embedder's own communicator shards forward mode's columns
// (gradhpo_consumer_mpi under `mpirun -np 2`), and, when gradhpo::cuda is linked, the CUDA backend
// registered itself.
#include <gradhpo/engine/autodiff.h>
#include <gradhpo/engine/backend.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#if defined(__AVX2__) && defined(GRADHPO_CONSUMER_EXPECTS_V2)
#error "a machine-specific flag (-march=native?) reached the consumer through gradhpo's targets"
#endif

#ifdef CONSUMER_WITH_CUDA
#include <gradhpo/cuda/cuda.h>
#endif

int run_hpo_embed();  // hpo_embed.cpp: a user's own bilevel problem through gradhpo::hpo

int main() {
  using namespace gradhpo;
  const Tensor x = Tensor::from({1.0, 2.0, 3.0}, Shape{3}, DType::f64);
  const Tensor v = Tensor::full(Shape{3}, 1.0, DType::f64);
  const HvpResult r = hvp([](const Var& w) { return sum(w * w * w); }, x, v);
  std::printf("H v = (%g, %g, %g)\n", r.hvp.at(0), r.hvp.at(1), r.hvp.at(2));
  if (r.hvp.at(0) != 6.0 || r.hvp.at(1) != 12.0 || r.hvp.at(2) != 18.0) return 1;
#ifdef CONSUMER_WITH_CUDA
  try {
    std::printf("cuda backend: %s; %s\n", device_backend(Device::cuda, "consumer").name, cuda::describe_device().c_str());
  } catch (const Error& e) {
    std::printf("%s\n", e.what());
    return 1;
  }
#endif
  if (run_hpo_embed() != 0) return 1;
  std::printf("running %s\n", CONSUMER_SEARCH);
  std::fflush(stdout);  // before the child's lines
  if (std::system(CONSUMER_SEARCH) != 0) return 1;
#ifdef CONSUMER_MPI
  // Eigen's products (GRADHPO_GEMM=eigen): the columns' bits then do not depend on the block size.
  const std::string mpirun = std::string("env GRADHPO_GEMM=eigen OMP_NUM_THREADS=1 ") + CONSUMER_MPIEXEC +
                             " --allow-run-as-root --oversubscribe -np 2 " + CONSUMER_MPI;
  std::printf("running %s\n", mpirun.c_str());
  std::fflush(stdout);
  if (std::system(mpirun.c_str()) != 0) return 1;
#endif
  return 0;
}
