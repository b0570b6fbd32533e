// The direct algorithm of the convolution kernels (conv.h, same contracts and banks): the three
// bilinear products computed from the zero-padded images
// themselves, with no im2col matrix, no col2im and no packing of a GEMM operand.
//
// Forward: a tile of OB output channels × RB output rows × one SIMD vector of output pixels
// stays in registers while the loop runs over input channels and filter taps; each step loads
// RB shifted image rows and broadcasts OB filter taps (a GEMM micro-kernel whose "packed"
// operand is the padded image, read at an offset per tap). backward_input is the same
// correlation of the output adjoint, padded by k − 1 − pad, with the filters flipped and
// transposed; at stride s > 1, one such correlation for each of x̄'s s × s phases, with the
// taps that meet the adjoint there, written to every s-th pixel. backward_weight keeps OB × TB (channel, tap) sums of products in registers over
// all output pixels of a group of images, then reduces each vector to a number.
//
// Each output element is summed in the same order whatever tile, bank or thread computes it,
// so a value computed alone and one computed banked with tangent directions have the same bits.
// For the small channel counts of CIFAR and MNIST networks (3 to 64) this removes most of what
// the im2col path spends outside its GEMMs (conv_algorithm chooses per geometry).
#pragma once

#include <cstdint>

#include "conv.h"

namespace gradhpo::kernels {

/// Whether the direct kernel can run `g`: forward and backward_weight any geometry (a strided
/// input is split into stride × stride phases, so that neighbouring outputs read neighbouring
/// inputs); backward_input at stride 1 with pad < kh, kw (it pads the output adjoint by
/// k − 1 − pad), and at any stride > 1 (phase by phase of x̄).
bool direct_conv_applies(ConvKernel kernel, const ConvGeometry& g);

/// The fraction of SIMD lanes that hold pixels when the direct kernels cover rows of `width`
/// pixels of `element_bytes` each with packets (full or half width, whichever wastes fewer):
/// 1 for 32-pixel rows of floats under AVX-512, 10/16 for 10-pixel rows.
double direct_lane_use(std::int64_t width, std::size_t element_bytes);

template <class T>
void direct_conv2d_forward(const ConvGeometry& g, std::int64_t count, const T* x, Banks<const T> w, Banks<T> out,
                           bool accumulate);
template <class T>
void direct_conv2d_backward_input(const ConvGeometry& g, std::int64_t count, const T* gy, Banks<const T> w,
                                  Banks<T> out, bool accumulate);
template <class T>
void direct_conv2d_backward_weight(const ConvGeometry& g, std::int64_t count, Banks<const T> gy, Banks<const T> x,
                                   Banks<T> out, bool accumulate);

}  // namespace gradhpo::kernels
