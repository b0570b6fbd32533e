// The im2col algorithm of the convolution kernels (conv.h, same contracts): per image, the
// patches are copied into an im2col buffer (a block of output rows at a time) and multiplied by
// the stacked filter banks with one GEMM (gemm.h: Eigen or OpenBLAS, as planned); col2im adds
// the backward-input columns back into the image. Any stride, padding and kernel size.
//
// Threading: images are split over OpenMP threads, each running single-threaded GEMMs on a
// per-thread im2col buffer taken once per call from the storage pool (no per-image
// allocation). Eigen's own GEMM stays single-threaded inside the region (it checks
// omp_get_num_threads()); when Eigen routes products to a pthreads OpenBLAS (EIGEN_USE_BLAS),
// OpenBLAS is set to one thread for the duration of the region (Note [BLAS threads] in
// image_loop.h).
#pragma once

#include "conv.h"

namespace gradhpo::kernels {

template <class T>
void im2col_conv2d_forward(const ConvGeometry& g, std::int64_t count, const T* x, Banks<const T> w, Banks<T> out,
                           bool accumulate);
template <class T>
void im2col_conv2d_backward_input(const ConvGeometry& g, std::int64_t count, const T* gy, Banks<const T> w,
                                  Banks<T> out, bool accumulate);
template <class T>
void im2col_conv2d_backward_weight(const ConvGeometry& g, std::int64_t count, Banks<const T> gy, Banks<const T> x,
                                   Banks<T> out, bool accumulate);

}  // namespace gradhpo::kernels
