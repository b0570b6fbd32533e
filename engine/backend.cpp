#include "backend.h"

#include <string>

namespace gradhpo {
namespace {
// One slot per Device; written once at load time by the backend library, read by every op.
const DeviceBackend* g_backends[2] = {nullptr, nullptr};

}  // namespace

void register_device_backend(Device d, const DeviceBackend* backend) {
  g_backends[static_cast<int>(d)] = backend;
}

const DeviceBackend& device_backend(Device d, const char* op) {
  const DeviceBackend* b = d == Device::cpu ? nullptr : g_backends[static_cast<int>(d)];
  GRADHPO_CHECK(b != nullptr, std::string(op) + ": no " + device_name(d) + " backend in this program (" +
                                  (d == Device::cuda ? "build with GRADHPO_CUDA=ON and link gradhpo::cuda"
                                                     : "the CPU needs none") + ")");
  return *b;
}

namespace detail {
const DeviceBackend* offload_slow(const char* op, std::initializer_list<const Tensor*> tensors) {
  // Undefined tensors (zero tangents) sit on no device and match any.
  Device device = Device::cpu;
  bool mixed = false;
  for (const Tensor* t : tensors) {
    if (!t->defined()) continue;
    if (t->device() != Device::cpu) device = t->device();
  }
  for (const Tensor* t : tensors)
    if (t->defined() && t->device() != device) mixed = true;
  GRADHPO_CHECK(!mixed, std::string(op) + ": operands are on different devices (cpu and " + device_name(device) +
                            "); move them with Tensor::to(Device) first");
  return device == Device::cpu ? nullptr : &device_backend(device, op);
}
}  // namespace detail

}  // namespace gradhpo
