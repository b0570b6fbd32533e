// conv2d's products through cuDNN's convolution API (cuda/cudnn_conv.h). Without cuDNN in the
// build every function returns false and conv.cu runs im2col + cuBLAS.
#include "cudnn_conv.h"

#include <atomic>

#include "cuda.h"

#ifdef GRADHPO_HAVE_CUDNN

#include <cudnn.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>

#include "check.h"
#include "context.h"

namespace gradhpo::cuda {
namespace {

std::atomic<bool> g_enabled{true};
std::atomic<bool> g_tf32{false};

void check_cudnn(cudnnStatus_t status, const char* call, const char* op) {
  if (status == CUDNN_STATUS_SUCCESS) return;
  throw Error(std::string(op) + ": " + call + " failed: " + cudnnGetErrorString(status));
}
#define GRADHPO_CUDNN_CALL(op, ...) check_cudnn((__VA_ARGS__), #__VA_ARGS__, op)

constexpr const char* kOp = "conv2d (cuDNN)";

cudnnHandle_t handle() {
  static cudnnHandle_t h = nullptr;
  static std::once_flag once;
  std::call_once(once, [] {
    Context& c = context(kOp);
    GRADHPO_CUDNN_CALL(kOp, cudnnCreate(&h));
    GRADHPO_CUDNN_CALL(kOp, cudnnSetStream(h, c.stream));
  });
  return h;
}

/// The four descriptors of one product: x [count, C, H, W], y [count, O, Ho, Wo], the filters,
/// the convolution (cross-correlation, as the engine's conv2d), built once per plan (below).
struct Descriptors {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  Descriptors(const kernels::ConvGeometry& g, std::int64_t count, DType dtype) {
    const cudnnDataType_t t = dtype == DType::f64 ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
    auto i = [](std::int64_t v) { return static_cast<int>(v); };
    GRADHPO_CUDNN_CALL(kOp, cudnnCreateTensorDescriptor(&x));
    GRADHPO_CUDNN_CALL(kOp, cudnnCreateTensorDescriptor(&y));
    GRADHPO_CUDNN_CALL(kOp, cudnnCreateFilterDescriptor(&w));
    GRADHPO_CUDNN_CALL(kOp, cudnnCreateConvolutionDescriptor(&conv));
    GRADHPO_CUDNN_CALL(kOp, cudnnSetTensor4dDescriptor(x, CUDNN_TENSOR_NCHW, t, i(count), i(g.C), i(g.H), i(g.W)));
    GRADHPO_CUDNN_CALL(kOp, cudnnSetTensor4dDescriptor(y, CUDNN_TENSOR_NCHW, t, i(count), i(g.O), i(g.Ho), i(g.Wo)));
    GRADHPO_CUDNN_CALL(kOp, cudnnSetFilter4dDescriptor(w, t, CUDNN_TENSOR_NCHW, i(g.O), i(g.C), i(g.kh), i(g.kw)));
    GRADHPO_CUDNN_CALL(kOp, cudnnSetConvolution2dDescriptor(conv, i(g.pad), i(g.pad), i(g.stride), i(g.stride), 1, 1,
                                                            CUDNN_CROSS_CORRELATION, t));
    // FMA math: exact IEEE float32 products (no TF32) unless set_tf32(true) asked for them.
    GRADHPO_CUDNN_CALL(kOp, cudnnSetConvolutionMathType(conv, g_tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH));
  }
  ~Descriptors() {
    cudnnDestroyTensorDescriptor(x);
    cudnnDestroyTensorDescriptor(y);
    cudnnDestroyFilterDescriptor(w);
    cudnnDestroyConvolutionDescriptor(conv);
  }
  Descriptors(const Descriptors&) = delete;
  Descriptors& operator=(const Descriptors&) = delete;
};

/// The fastest algorithm cuDNN's heuristics rank that ran its checks, is deterministic and uses
/// the math type asked for; -1 when there is none. Cached per (product, geometry, count, dtype).
struct Choice {
  int algo = -1;
  std::size_t workspace = 0;
};
using Key = std::tuple<int, std::int64_t, std::int64_t, std::int64_t, std::int64_t, std::int64_t, std::int64_t,
                       std::int64_t, std::int64_t, std::int64_t, int, bool>;
Key key_of(int product, const kernels::ConvGeometry& g, std::int64_t count, DType dtype) {
  return {product, g.C, g.H, g.W, g.O, g.kh, g.kw, g.stride, g.pad, count, static_cast<int>(dtype), g_tf32.load()};
}

template <class Perf> Choice pick(const Perf* perf, int n) {
  const cudnnMathType_t math = g_tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH;
  for (int k = 0; k < n; ++k) {
    const Perf& p = perf[k];
    if (p.status == CUDNN_STATUS_SUCCESS && p.determinism == CUDNN_DETERMINISTIC &&
        (p.mathType == math || p.mathType == CUDNN_FMA_MATH))
      return {static_cast<int>(p.algo), p.memory};
  }
  return {};
}

/// One product's descriptors and algorithm, made once per key and reused by every later call
/// (building and destroying four descriptors per call was host work on every convolution).
struct Plan {
  Descriptors d;
  Choice c;
  Plan(const kernels::ConvGeometry& g, std::int64_t count, DType dtype) : d(g, count, dtype) {}
};

/// The plan for `key`, made by `choose(plan)` the first time. Plans are never changed or freed
/// once made, so the reference outlives the lock.
template <class Choose>
const Plan& plan_for(const Key& key, const kernels::ConvGeometry& g, std::int64_t count, DType dtype, Choose&& choose) {
  static std::map<Key, std::unique_ptr<Plan>> cache;
  static std::mutex mutex;
  std::lock_guard<std::mutex> lock(mutex);
  std::unique_ptr<Plan>& p = cache[key];
  if (!p) {
    p = std::make_unique<Plan>(g, count, dtype);
    choose(*p);
  }
  return *p;
}

std::atomic<std::int64_t> g_launches{0};

/// Pooled device scratch of at least `bytes` (no allocation in steady state).
Tensor workspace(std::size_t bytes) {
  return Tensor::empty(Shape{static_cast<std::int64_t>((bytes + 7) / 8) + 1}, DType::f64, Device::cuda);
}

bool usable(DType dtype) { return g_enabled && (dtype == DType::f32 || dtype == DType::f64); }

// α and β in the computation's type: double for float64 data, float otherwise (cuDNN's rule).
struct Scalars {
  double d_alpha = 1, d_beta;
  float f_alpha = 1, f_beta;
  bool is_double;
  Scalars(DType dtype, bool accumulate)
      : d_beta(accumulate ? 1 : 0), f_beta(accumulate ? 1.f : 0.f), is_double(dtype == DType::f64) {}
  const void* alpha() const { return is_double ? static_cast<const void*>(&d_alpha) : &f_alpha; }
  const void* beta() const { return is_double ? static_cast<const void*>(&d_beta) : &f_beta; }
};

}  // namespace

namespace cudnn {

namespace {

/// What the three products share: the path applies, the plan (descriptors, and the algorithm
/// from cuDNN's heuristics: `query(d, perf, &n)`; a failed query or no suitable algorithm means
/// im2col), the workspace and α/β; then `launch(d, algo, workspace, bytes, α, β)`, named `call`
/// in errors. False, having done nothing, when im2col must run instead.
template <class Perf, int kAlgos, class Query, class Launch>
bool run(int product, const char* call, const kernels::ConvGeometry& g, std::int64_t count, DType dtype,
         bool accumulate, Query&& query, Launch&& launch) {
  if (!usable(dtype) || count == 0) return false;
  const Plan& p = plan_for(key_of(product, g, count, dtype), g, count, dtype, [&](Plan& fresh) {
    Perf perf[kAlgos];
    int n = 0;
    if (query(fresh.d, perf, &n) == CUDNN_STATUS_SUCCESS) fresh.c = pick(perf, n);
  });
  if (p.c.algo < 0) return false;
  Tensor ws = workspace(p.c.workspace);
  const Scalars s(dtype, accumulate);
  check_cudnn(launch(p.d, p.c.algo, ws.raw(), p.c.workspace, s.alpha(), s.beta()), call, kOp);
  g_launches.fetch_add(1, std::memory_order_relaxed);
  return true;
}

}  // namespace

bool forward(const kernels::ConvGeometry& g, std::int64_t count, DType dtype, const void* x, const void* w, void* y,
             bool accumulate) {
  return run<cudnnConvolutionFwdAlgoPerf_t, CUDNN_CONVOLUTION_FWD_ALGO_COUNT>(
      0, "cudnnConvolutionForward", g, count, dtype, accumulate,
      [](const Descriptors& d, cudnnConvolutionFwdAlgoPerf_t* perf, int* n) {
        return cudnnGetConvolutionForwardAlgorithm_v7(handle(), d.x, d.w, d.conv, d.y,
                                                      CUDNN_CONVOLUTION_FWD_ALGO_COUNT, n, perf);
      },
      [&](const Descriptors& d, int algo, void* ws, std::size_t bytes, const void* alpha, const void* beta) {
        return cudnnConvolutionForward(handle(), alpha, d.x, x, d.w, w, d.conv,
                                       static_cast<cudnnConvolutionFwdAlgo_t>(algo), ws, bytes, beta, d.y, y);
      });
}

bool backward_input(const kernels::ConvGeometry& g, std::int64_t count, DType dtype, const void* gy, const void* w,
                    void* xb, bool accumulate) {
  return run<cudnnConvolutionBwdDataAlgoPerf_t, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT>(
      1, "cudnnConvolutionBackwardData", g, count, dtype, accumulate,
      [](const Descriptors& d, cudnnConvolutionBwdDataAlgoPerf_t* perf, int* n) {
        return cudnnGetConvolutionBackwardDataAlgorithm_v7(handle(), d.w, d.y, d.conv, d.x,
                                                           CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, n, perf);
      },
      [&](const Descriptors& d, int algo, void* ws, std::size_t bytes, const void* alpha, const void* beta) {
        return cudnnConvolutionBackwardData(handle(), alpha, d.w, w, d.y, gy, d.conv,
                                            static_cast<cudnnConvolutionBwdDataAlgo_t>(algo), ws, bytes, beta, d.x, xb);
      });
}

bool backward_weight(const kernels::ConvGeometry& g, std::int64_t count, DType dtype, const void* gy, const void* x,
                     void* wb, bool accumulate) {
  return run<cudnnConvolutionBwdFilterAlgoPerf_t, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT>(
      2, "cudnnConvolutionBackwardFilter", g, count, dtype, accumulate,
      [](const Descriptors& d, cudnnConvolutionBwdFilterAlgoPerf_t* perf, int* n) {
        return cudnnGetConvolutionBackwardFilterAlgorithm_v7(handle(), d.x, d.y, d.conv, d.w,
                                                             CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, n, perf);
      },
      [&](const Descriptors& d, int algo, void* ws, std::size_t bytes, const void* alpha, const void* beta) {
        return cudnnConvolutionBackwardFilter(handle(), alpha, d.x, x, d.y, gy, d.conv,
                                              static_cast<cudnnConvolutionBwdFilterAlgo_t>(algo), ws, bytes, beta, d.w,
                                              wb);
      });
}

}  // namespace cudnn

bool cudnn_available() { return true; }
std::int64_t cudnn_launches() { return g_launches.load(); }
void set_cudnn(bool enabled) { g_enabled = enabled; }
void cudnn_follow_tf32(bool enabled) { g_tf32 = enabled; }

}  // namespace gradhpo::cuda

#else  // no cuDNN in this build: conv.cu always runs im2col + cuBLAS

namespace gradhpo::cuda {
namespace cudnn {
bool forward(const kernels::ConvGeometry&, std::int64_t, DType, const void*, const void*, void*, bool) { return false; }
bool backward_input(const kernels::ConvGeometry&, std::int64_t, DType, const void*, const void*, void*, bool) {
  return false;
}
bool backward_weight(const kernels::ConvGeometry&, std::int64_t, DType, const void*, const void*, void*, bool) {
  return false;
}
}  // namespace cudnn
bool cudnn_available() { return false; }
std::int64_t cudnn_launches() { return 0; }
void set_cudnn(bool) {}
void cudnn_follow_tf32(bool) {}
}  // namespace gradhpo::cuda

#endif
