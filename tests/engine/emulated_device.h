// A host-emulated device for the tests that need no GPU: registered in the Device::cuda slot,
// its memory is host memory and each of its kernels copies the operands to the CPU, runs the
// CPU kernel and copies the result back. Every op that forgets its operands' device (allocates
// on the CPU, reads device memory from host code, skips the dispatch) then fails or differs
// before any GPU session. Because the emulated kernels ARE the CPU kernels, a computation on
// the emulated device equals the CPU's bit for bit wherever the same kernels run in the same
// order (tests/engine/test_device_seam.cpp, tests/hpo/test_device.cpp).
//
// Not emulated (their CPU code is private to the op file; tests/cuda covers them on a GPU):
// pooling and batch norm's standardize kernels.
#pragma once

#include <doctest/doctest.h>

#include <cstdlib>
#include <cstring>

#include <gradhpo/engine/backend.h>
#include <gradhpo/engine/kernels/gemm.h>
#include <gradhpo/engine/kernels/math.h>
#include <gradhpo/engine/kernels/vector.h>
#include <gradhpo/engine/ops.h>
#include <gradhpo/engine/ops/softmax.h>

namespace gradhpo::testing {

inline int g_kernel_calls = 0;  // kernel entries of the emulator called (dispatch happened)

inline Tensor host(const Tensor& t) { return t.to(Device::cpu); }
inline Tensor device(const Tensor& t) { return t.to(Device::cuda); }
inline Dual host(const Dual& d) { return Dual(host(d.value), host(d.tangent)); }
inline Dual device(const Dual& d) { return Dual(device(d.value), device(d.tangent)); }
// A Dual computation on the host, its result moved to the device.
template <class F> inline Dual emulate_dual(F&& f) {
  ++g_kernel_calls;
  return device(f());
}

// A host computation on device tensors: the result is moved to the device.
template <class F> Tensor emulate(F&& f) {
  ++g_kernel_calls;
  return device(f());
}
// An in-place host computation on a device tensor.
template <class F> void emulate_into(Tensor& out, F&& f) {
  ++g_kernel_calls;
  Tensor h = host(out);
  f(h);
  out.copy_from(h);
}

// Entries whose CPU code is private to its op file (softmax, pooling, batch norm) are not
// emulated; the GPU suite covers them.
inline void not_emulated() { FAIL("the emulated device has no kernel for this op: keep it out of these tests"); }

inline DeviceBackend make_emulator() {
  DeviceBackend b{};
  b.name = "emulated";
  b.allocate = [](std::size_t bytes) { return std::aligned_alloc(64, (bytes + 63) / 64 * 64); };
  b.deallocate = [](void* p) { std::free(p); };
  b.copy = [](void* dst, bool, const void* src, bool, std::size_t bytes) { std::memcpy(dst, src, bytes); };
  b.fill = [](Tensor& t, double v) { emulate_into(t, [&](Tensor& h) { h.fill(v); }); };
  b.binary = [](kernels::BinaryOp op, const Tensor& a, const Tensor& c) {
    return emulate([&] { return kernels::binary(op, host(a), host(c)); });
  };
  b.axpy = [](Tensor& acc, const Tensor& x, double alpha) {
    emulate_into(acc, [&](Tensor& h) { kernels::axpy(h, host(x), alpha); });
  };
  b.affine = [](const Tensor& x, double s, double t) { return emulate([&] { return kernels::affine(host(x), s, t); }); };
  b.unary = [](kernels::UnaryOp op, const Tensor& x) { return emulate([&] { return kernels::unary(op, host(x)); }); };
  b.unary_derivative = [](kernels::UnaryOp op, const Tensor& x, const Tensor& y, int order) {
    return emulate([&] { return kernels::unary_derivative(op, host(x), host(y), order); });
  };
  b.reduce_middle = [](const Tensor& x, std::int64_t A, std::int64_t B, std::int64_t C, double s) {
    return emulate([&] { return kernels::reduce_middle(host(x), A, B, C, s); });
  };
  b.expand_middle = [](const Tensor& x, std::int64_t A, std::int64_t B, std::int64_t C, double s) {
    return emulate([&] { return kernels::expand_middle(host(x), A, B, C, s); });
  };
  b.gemm = [](const Tensor& A, const Shape& as, bool ta, const Tensor& B, const Shape& bs, bool tb, Tensor& C,
              bool acc) {
    const Tensor ha = host(A), hb = host(B);
    emulate_into(C, [&](Tensor& hc) {
      dispatch_float(hc.dtype(), "gemm", [&](auto zero) {
        using T = decltype(zero);
        kernels::gemm<T>(ha.data<T>(), as[0], as[1], ta, hb.data<T>(), bs[0], bs[1], tb, hc.data<T>(), T(1),
                         acc ? T(1) : T(0));
      });
    });
  };
  b.log_softmax = [](const Tensor& x) { return emulate([&] { return kernels::log_softmax(host(x)); }); };
  b.log_softmax_tangent = [](const Tensor& y, const Tensor& xt) {
    return emulate([&] { return kernels::log_softmax_tangent(host(y), host(xt)); });
  };
  b.log_softmax_backward = [](const Tensor& y, const Tensor& g, const Tensor& gt, const Tensor& yt, Tensor& xb,
                              Tensor& xbt) {
    ++g_kernel_calls;
    Tensor hxb = host(xb), hxbt = host(xbt);
    kernels::log_softmax_backward(host(y), host(g), host(gt), host(yt), hxb, hxbt);
    xb.copy_from(hxb);
    if (xbt.defined()) xbt.copy_from(hxbt);
  };
  b.gather = [](const Tensor& x, const Tensor& labels, std::int64_t rows, std::int64_t C) {
    return emulate([&] { return kernels::pick_gather(host(x), host(labels), rows, C); });
  };
  b.scatter = [](const Tensor& g, const Tensor& labels, std::int64_t rows, std::int64_t C) {
    return emulate([&] { return kernels::pick_scatter(host(g), host(labels), rows, C); });
  };
  b.channel_affine = [](const Dual& x, const Dual* s, const Dual* t, bool with_value) {
    const Dual hs = s ? host(*s) : Dual(), ht = t ? host(*t) : Dual();
    Dual y = emulate_dual([&] { return dual::channel_affine(host(x), s ? &hs : nullptr, t ? &ht : nullptr); });
    if (!with_value) y.value = Tensor();
    return y;
  };
  b.channel_sum = [](const Dual& x) { return emulate_dual([&] { return dual::channel_sum(host(x)); }); };
  b.channel_dot = [](const Dual& a, const Dual& c) { return emulate_dual([&] { return dual::channel_dot(host(a), host(c)); }); };
  b.channel_broadcast = [](const Dual& v, const Shape& s) {
    return emulate_dual([&] { return dual::channel_broadcast(host(v), s); });
  };
  b.conv2d = [](const Dual& x, const Dual& w, const kernels::ConvGeometry& g, bool with_value) {
    Dual y = emulate_dual([&] { return dual::conv2d(host(x), host(w), static_cast<int>(g.stride), static_cast<int>(g.pad)); });
    if (!with_value) y.value = Tensor();
    return y;
  };
  b.conv2d_backward_input = [](const Dual& gy, const Dual& w, const kernels::ConvGeometry& g, const Shape& xs) {
    return emulate_dual([&] {
      return dual::conv2d_backward_input(host(gy), host(w), xs, static_cast<int>(g.stride), static_cast<int>(g.pad));
    });
  };
  b.conv2d_backward_weight = [](const Dual& gy, const Dual& x, const kernels::ConvGeometry& g, const Shape& ws) {
    return emulate_dual([&] {
      return dual::conv2d_backward_weight(host(gy), host(x), ws, static_cast<int>(g.stride), static_cast<int>(g.pad));
    });
  };
  b.max_pool = [](const PoolWindow&, std::int64_t, const Tensor&, Tensor&, Tensor&) { not_emulated(); };
  b.pool_gather = [](const PoolWindow&, std::int64_t, std::int64_t, const Tensor&, const Tensor&, Tensor&) {
    not_emulated();
  };
  b.pool_scatter = b.pool_gather;
  b.avg_pool = [](const PoolWindow&, std::int64_t, const Tensor&, Tensor&) { not_emulated(); };
  b.avg_pool_adjoint = b.avg_pool;
  b.standardize = [](const Tensor&, double, Tensor&, Tensor&, Tensor&, Tensor&) { not_emulated(); };
  b.standardize_tangent = [](const Tensor&, const Tensor&, const Tensor&, Tensor&) { not_emulated(); };
  b.standardize_backward = [](const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                              const Tensor&, Tensor&, Tensor&) { not_emulated(); };
  // engine/kernels/vector.h: the whole-vector kernels of nn's training loop and hpo/.
  b.dot = [](const Tensor& x, const Tensor& y) { return ++g_kernel_calls, kernels::dot(host(x), host(y)); };
  b.first_non_finite = [](const Tensor& x) { return ++g_kernel_calls, kernels::first_non_finite(host(x)); };
  b.max_abs = [](const Tensor& x) { return ++g_kernel_calls, kernels::max_abs(host(x)); };
  b.clamp = [](Tensor& x, double lo, double hi) { emulate_into(x, [&](Tensor& h) { kernels::clamp(h, lo, hi); }); };
  b.lerp = [](Tensor& acc, const Tensor& x, double m) { emulate_into(acc, [&](Tensor& h) { kernels::lerp(h, host(x), m); }); };
  b.sgd_update = [](Tensor& w, Tensor& v, const Tensor& g, const Tensor& mask, const kernels::SgdUpdate& h) {
    ++g_kernel_calls;
    Tensor hw = host(w), hv = host(v);
    kernels::sgd_update(hw, hv, host(g), host(mask), h);
    w.copy_from(hw);
    v.copy_from(hv);
  };
  b.adam_update = [](Tensor& w, Tensor& m, Tensor& v, const Tensor& g, const Tensor& mask, const kernels::AdamUpdate& h) {
    ++g_kernel_calls;
    Tensor hw = host(w), hm = host(m), hv = host(v);
    kernels::adam_update(hw, hm, hv, host(g), host(mask), h);
    w.copy_from(hw);
    m.copy_from(hm);
    v.copy_from(hv);
  };
  return b;
}

inline const DeviceBackend kEmulator = make_emulator();
inline void use_emulator() { register_device_backend(Device::cuda, &kEmulator); }

}  // namespace gradhpo::testing
