// The optional cuDNN path of conv2d's three products (cuda/conv.cu), used when gradhpo::cuda was
// built with cuDNN (GRADHPO_CUDNN, on when cudnn.h and libcudnn are found) and cuda::set_cudnn
// has not turned it off. Each function computes the same product as conv.cu's im2col + GEMM path
// on `count` NCHW images, adding into the output when `accumulate` (cuDNN's β = 1):
//   forward          y  (+)= F(x, W)          [count, O, Ho, Wo]
//   backward_input   x̄  (+)= Fᵀ(ḡ, W)         [count, C, H, W]
//   backward_weight  W̄  (+)= Σ_i ḡ_i ⋆ x_i    [O, C, kh, kw]
// Only algorithms cuDNN reports deterministic, with FMA math (no TF32 unless cuda::set_tf32),
// are used, so runs repeat bit for bit like the rest of the backend. Each returns false, having
// done nothing, when the path is off or cuDNN offers no such algorithm for the geometry: the
// caller then runs the im2col product (which is also what tests/cuda compares this path with).
#pragma once

#include <cstdint>

#include "../engine/kernels/conv.h"
#include "../engine/tensor.h"

namespace gradhpo::cuda::cudnn {

bool forward(const kernels::ConvGeometry& g, std::int64_t count, DType dtype, const void* x, const void* w, void* y,
             bool accumulate);
bool backward_input(const kernels::ConvGeometry& g, std::int64_t count, DType dtype, const void* gy, const void* w,
                    void* xb, bool accumulate);
bool backward_weight(const kernels::ConvGeometry& g, std::int64_t count, DType dtype, const void* gy, const void* x,
                     void* wb, bool accumulate);

}  // namespace gradhpo::cuda::cudnn

namespace gradhpo::cuda {
/// set_tf32 tells the cuDNN path too (its convolutions then may use TF32 tensor cores).
void cudnn_follow_tf32(bool enabled);
}  // namespace gradhpo::cuda
