// Compiled against the installed headers and library: exits 0 iff a 2x3 tensor has 6 elements.
#include <gradhpo/engine/tensor.h>

#include <cstdio>

int main() {
  const gradhpo::Tensor t = gradhpo::Tensor::zeros({2, 3}, gradhpo::DType::f64);
  std::printf("numel = %lld\n", static_cast<long long>(t.numel()));
  return t.numel() == 6 ? 0 : 1;
}
