// Compiled against the installed headers and library: exits 0 iff a 2x3 tensor has 6 elements,
// a user's own bilevel problem gets the same hypergradient from every exact method and, when
// gradhpo::cuda is linked, the CUDA backend registered itself.
#include <gradhpo/engine/backend.h>
#include <gradhpo/engine/tensor.h>

#include <cstdio>

#ifdef CONSUMER_WITH_CUDA
#include <gradhpo/cuda/cuda.h>
#endif

int run_hpo_embed();  // hpo_embed.cpp: a user's own bilevel problem through gradhpo::hpo

int main() {
  const gradhpo::Tensor t = gradhpo::Tensor::zeros({2, 3}, gradhpo::DType::f64);
  std::printf("numel = %lld\n", static_cast<long long>(t.numel()));
  if (t.numel() != 6) return 1;
#ifdef CONSUMER_WITH_CUDA
  try {
    std::printf("cuda backend: %s; %s\n", gradhpo::device_backend(gradhpo::Device::cuda, "consumer").name,
                gradhpo::cuda::describe_device().c_str());
  } catch (const gradhpo::Error& e) {
    std::printf("%s\n", e.what());
    return 1;
  }
#endif
  return run_hpo_embed();
}
