// The CUDA backend's table (engine/backend.h), registered when this library is loaded.
//
// A static library member is linked only when something refers to it, and nothing in the
// engine refers to cuda/; so gradhpo::cuda's link interface marks gradhpo_cuda_link_anchor
// undefined (cuda/CMakeLists.txt), which pulls this file, and its registration, into every
// program that links the library.
#include "../engine/backend.h"
#include "kernels.h"

namespace gradhpo::cuda {
namespace {

const DeviceBackend kBackend = {
    "cuda",
    allocate,
    deallocate,
    copy,
    fill,
    binary,
    axpy,
    affine,
    unary,
    unary_derivative,
    reduce_middle,
    expand_middle,
    gemm,
    log_softmax,
    log_softmax_tangent,
    log_softmax_backward,
    gather,
    scatter,
    channel_affine,
    channel_sum,
    channel_dot,
    channel_broadcast,
    conv2d,
    conv2d_backward_input,
    conv2d_backward_weight,
    max_pool,
    pool_gather,
    pool_scatter,
    avg_pool,
    avg_pool_adjoint,
    standardize,
    standardize_tangent,
    standardize_backward,
    dot,
    first_non_finite,
    max_abs,
    clamp,
    lerp,
    sgd_update,
    adam_update,
};

// Registration needs no CUDA call: the device is first touched by the first device tensor.
const bool kRegistered = (register_device_backend(Device::cuda, &kBackend), true);

}  // namespace
}  // namespace gradhpo::cuda

extern "C" int gradhpo_cuda_link_anchor() { return gradhpo::cuda::kRegistered ? 1 : 0; }
