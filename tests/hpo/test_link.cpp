// The program's libraries together: GSL (gradhpo::bayesian) brings a CBLAS of its own, which comes
// before OpenBLAS on this suite's link line as on the gradhpo program's, and the first CBLAS in
// link order answers every plain cblas_* call. The GEMM planner's OpenBLAS products must still
// run in OpenBLAS (with GSL's CBLAS the quickstart's 2-thread numbers changed).
#include <doctest/doctest.h>

#include <string>

#include <gradhpo/engine/kernels/gemm.h>

TEST_CASE("link: the planner's OpenBLAS products run in OpenBLAS, not in another CBLAS linked ahead of it") {
  std::string why;
  if (!gradhpo::kernels::openblas_usable(&why)) {
    MESSAGE("OpenBLAS is not used here: " << why);
    CHECK(gradhpo::kernels::openblas_gemm_object().empty());
    return;
  }
  const std::string object = gradhpo::kernels::openblas_gemm_object();
  INFO("cblas_sgemm is called in " << object);
  CHECK(object.find("openblas") != std::string::npos);
  CHECK(object.find("gslcblas") == std::string::npos);
}
