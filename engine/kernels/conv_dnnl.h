// The optional oneDNN path of conv2d's three products on the CPU (the CPU's counterpart of
// cuda/cudnn_conv.h), used when gradhpo was built with oneDNN (GRADHPO_DNNL, on where Debian's
// libdnnl-dev is found) and conv_algorithm's planner (conv.h) chose it for the geometry. Each
// function computes the same product as conv.h's function of the same name, on the same banks,
// and returns false, having done nothing, when the path is not built, the element type is not
// float (oneDNN 2.6 has no float64 convolution on the CPU) or oneDNN has no implementation for
// the geometry: the caller then runs our kernels.
//
// Exactness, as conv.h promises: oneDNN's direct algorithm only (never Winograd), and every bank
// is its own call of one cached primitive of identical shape, so a value bank has the same bits
// alone and with tangent banks beside it (backward_weight's sum over images included), and a
// call repeats its bits for a given thread count. The primitives run on OpenMP's threads
// (Debian's oneDNN is its OpenMP build); their scratchpads and the reorders' buffers are the
// engine's pooled tensors, held for the call only. One oneDNN engine serves every call, with a
// stream per calling thread.
//
// `layout` picks the memory layouts the primitive computes in: plain (NCHW images, OIHW filters,
// read and written in place) or blocked (the layouts oneDNN prefers, nChw16c and the like, with
// reorders in and out: what PyTorch does). The planner times both.
#pragma once

#include <cstdint>
#include <string>

#include "conv.h"

namespace gradhpo::kernels::dnnl_conv {

enum class Layout { plain, blocked };

/// Whether gradhpo was built with oneDNN.
bool built();
/// oneDNN's version, "major.minor.patch" ("" when not built): part of the plan file's identity.
std::string version();

/// The name of oneDNN's implementation of `kernel` for `count` images of `g` in `layout`
/// (e.g. "jit:avx512_core", "gemm:jit"), "" where it has none or the path is not built: for
/// reports and benchmarks.
std::string implementation(ConvKernel kernel, const ConvGeometry& g, std::int64_t count, Layout layout);

template <class T>
bool forward(Layout layout, const ConvGeometry& g, std::int64_t count, const T* x, Banks<const T> w, Banks<T> out,
             bool accumulate);
template <class T>
bool backward_input(Layout layout, const ConvGeometry& g, std::int64_t count, const T* gy, Banks<const T> w,
                    Banks<T> out, bool accumulate);
template <class T>
bool backward_weight(Layout layout, const ConvGeometry& g, std::int64_t count, Banks<const T> gy, Banks<const T> x,
                     Banks<T> out, bool accumulate);

}  // namespace gradhpo::kernels::dnnl_conv
