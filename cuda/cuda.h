// gradhpo::cuda — the engine on NVIDIA GPUs. Linking this library registers the CUDA backend
// (engine/backend.h); then a tensor moved with `t.to(Device::cuda)` runs every supported op on
// the GPU, in every mode (plain, reverse, K-tangent forward, forward-over-reverse), with the same
// model code. Ops that have no CUDA kernel yet throw gradhpo::Error when given a device tensor.
//
// All work goes to one stream per process (context.h), so kernels, copies and cuBLAS calls run
// in issue order and a block returned to the storage pool can be reused at once. Host reads of
// device tensors (item, to_vector, to(Device::cpu)) wait for that stream.
#pragma once

#include <string>

namespace gradhpo::cuda {

/// True when a CUDA device can be used (a driver and at least one GPU). Never throws.
bool available();
/// Name, compute capability and memory of the device in use, e.g. "NVIDIA H200 (sm_90, 140 GiB)",
/// or why none can be used.
std::string describe_device();
/// Waits until all work queued on gradhpo's stream has finished (for timing).
void synchronize();
/// TF32 tensor-core GEMMs for float32 (off by default: float32 products are then exact IEEE
/// float32, which the op-by-op checks against the CPU rely on).
void set_tf32(bool enabled);
/// True when this build has the cuDNN convolution path (GRADHPO_CUDNN, on when cuDNN is found).
bool cudnn_available();
/// Convolutions through cuDNN (deterministic algorithms only) where it has one for the geometry,
/// else im2col + cuBLAS; on by default when available. false: always im2col + cuBLAS.
void set_cudnn(bool enabled);
/// Convolution products run through cuDNN so far in this process (tests check the path ran).
std::int64_t cudnn_launches();

}  // namespace gradhpo::cuda
