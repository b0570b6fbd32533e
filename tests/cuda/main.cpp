// tests/cuda's main. Two suites: "host" needs no GPU (error messages, registration), "device"
// runs every op and model on the GPU against the CPU. Without a device the device suite is
// skipped with one line saying why; `--require-device` (ctest's cuda/device) then exits 77,
// which ctest reports as skipped — so CI machines, which have no GPU, are unaffected.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <gradhpo/cuda/cuda.h>

int main(int argc, char** argv) {
  std::vector<char*> args;
  bool require_device = false;
  for (int i = 0; i < argc; ++i) {
    if (std::strcmp(argv[i], "--require-device") == 0) require_device = true;
    else args.push_back(argv[i]);
  }
  doctest::Context context(static_cast<int>(args.size()), args.data());
  if (!gradhpo::cuda::available()) {
    std::printf("tests/cuda: device suite skipped: %s\n", gradhpo::cuda::describe_device().c_str());
    if (require_device) return 77;
    context.addFilter("test-suite-exclude", "device");
  } else {
    std::printf("tests/cuda: on %s\n", gradhpo::cuda::describe_device().c_str());
  }
  return context.run();
}
