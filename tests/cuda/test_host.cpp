// What tests/cuda can check without a GPU: the backend registers itself when gradhpo::cuda is
// linked, and CUDA / cuBLAS status codes become gradhpo::Error naming the op, the call and the
// code's name.
#include <doctest/doctest.h>

#include <string>

#include <gradhpo/cuda/check.h>
#include <gradhpo/cuda/cuda.h>
#include <gradhpo/engine/backend.h>

using namespace gradhpo;

TEST_SUITE("host") {

TEST_CASE("linking gradhpo::cuda registers the cuda backend") {
  CHECK(std::string(device_backend(Device::cuda, "test").name) == "cuda");
}

TEST_CASE("a CUDA error names the op, the call and the code") {
  try {
    cuda::check(cudaErrorMemoryAllocation, "cudaMalloc(&block, bytes)", "Tensor::empty");
    FAIL("expected an error");
  } catch (const Error& e) {
    const std::string m = e.what();
    CHECK(m.find("Tensor::empty: cudaMalloc(&block, bytes) failed: cudaErrorMemoryAllocation") == 0);
  }
  CHECK_NOTHROW(cuda::check(cudaSuccess, "cudaFree(p)", "Storage"));
}

TEST_CASE("a cuBLAS error names the op, the call and the status") {
  CHECK_THROWS_WITH_AS(cuda::check(CUBLAS_STATUS_INVALID_VALUE, "cublasDgemm(...)", "matmul"),
                       "matmul: cublasDgemm(...) failed: CUBLAS_STATUS_INVALID_VALUE", Error);
}

TEST_CASE("describe_device says what it found, or why there is no device") {
  const std::string d = cuda::describe_device();
  CHECK(!d.empty());
  if (!cuda::available()) CHECK(d.find("no CUDA device") == 0);
}

}  // TEST_SUITE
