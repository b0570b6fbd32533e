// The program's libraries together: GSL (gradhpo::bayesian) brings a CBLAS of its own, and the
// first CBLAS in link order answers every cblas_* call. This suite links every library, as the
// gradhpo program does: OpenBLAS must still be the one the GEMM planner calls.
#include <doctest/doctest.h>

#include <string>

#include <gradhpo/engine/kernels/gemm.h>

TEST_CASE("link: the planner's OpenBLAS products reach OpenBLAS, not another CBLAS linked beside it") {
  std::string why;
  if (!gradhpo::kernels::openblas_usable(&why)) {
    INFO(why);
    // Built without OpenBLAS, or its serial build loaded: fine here. Another CBLAS taking the calls is not.
    CHECK(why.find("resolve to") == std::string::npos);
  }
}
