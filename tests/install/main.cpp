// Compiled against the installed headers and library: exits 0 iff a 2x3 tensor has 6 elements
// and a user's own bilevel problem gets the same hypergradient from every exact method.
#include <gradhpo/engine/tensor.h>

#include <cstdio>

int run_hpo_embed();  // hpo_embed.cpp: a user's own bilevel problem through gradhpo::hpo

int main() {
  const gradhpo::Tensor t = gradhpo::Tensor::zeros({2, 3}, gradhpo::DType::f64);
  std::printf("numel = %lld\n", static_cast<long long>(t.numel()));
  if (t.numel() != 6) return 1;
  return run_hpo_embed();
}
