#include "conv_dnnl.h"

#include <type_traits>

#ifdef GRADHPO_HAVE_DNNL
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <tuple>
#include <unordered_map>

#include <oneapi/dnnl/dnnl.hpp>

#include "cpu.h"
#endif

namespace gradhpo::kernels::dnnl_conv {

#ifdef GRADHPO_HAVE_DNNL
namespace {

using dnnl::memory;
using Dims = memory::dims;

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// A stream per calling thread: on the CPU a stream only orders the calls of one thread, and one
// shared by several threads would need a lock around every call.
dnnl::stream& thread_stream() {
  thread_local dnnl::stream stream(cpu_engine());
  return stream;
}

// Scratch of one call, 64-byte aligned, from the engine's storage pool (back to the pool when
// the call returns, like the image loop's scratch: no buffer outlives its call).
class Buffer {
 public:
  void* get(std::size_t bytes) {
    const auto floats = static_cast<std::int64_t>((bytes + sizeof(float) - 1) / sizeof(float));
    if (!tensor_.defined() || tensor_.numel() < floats) tensor_ = Tensor::empty(Shape{floats}, DType::f32);
    return tensor_.data<float>();
  }

 private:
  Tensor tensor_;
};

struct Scratch {
  Buffer a, b, b_shared, out, plain_out, pad;
};

// One primitive for one kernel, geometry, image count and layout, with the reorders between our
// plain layouts and the primitive's. The operands, by kernel:
//   forward          a = src x [n, C, H, W]         b = weights [O, C, kh, kw]   out = dst [n, O, Ho, Wo]
//   backward_input   a = diff_dst ḡ [n, O, Ho, Wo]  b = weights                  out = diff_src [n, C, H, W]
//   backward_weight  a = diff_dst ḡ                 b = src x                    out = diff_weights
struct Primitive {
  bool ok = false;
  dnnl::primitive primitive;
  int a_arg = 0, b_arg = 0, out_arg = 0;
  memory::desc a_plain, b_plain, out_plain, a_inner, b_inner, out_inner, scratchpad;
  std::optional<dnnl::reorder> a_in, b_in, out_back;
  bool sums_into_out = false;  // the sum post-op adds into out (plain forward, accumulating)
  std::string name;            // oneDNN's implementation
};

using Key = std::tuple<int, std::int64_t, std::int64_t, std::int64_t, std::int64_t, std::int64_t, std::int64_t,
                       std::int64_t, std::int64_t, std::int64_t, int, bool, int>;

std::optional<dnnl::reorder> reorder_between(const memory::desc& from, const memory::desc& to) {
  if (from == to) return std::nullopt;
  return dnnl::reorder(dnnl::reorder::primitive_desc(cpu_engine(), from, cpu_engine(), to));
}

Primitive build(ConvKernel kernel, const ConvGeometry& g, std::int64_t count, Layout layout, bool accumulate) {
  const auto f32 = memory::data_type::f32;
  const auto tag = memory::format_tag::any;
  const memory::desc src_plain({count, g.C, g.H, g.W}, f32, memory::format_tag::nchw);
  const memory::desc weights_plain({g.O, g.C, g.kh, g.kw}, f32, memory::format_tag::oihw);
  const memory::desc dst_plain({count, g.O, g.Ho, g.Wo}, f32, memory::format_tag::nchw);
  const bool blocked = layout == Layout::blocked;
  const memory::desc src_md = blocked ? memory::desc(src_plain.dims(), f32, tag) : src_plain;
  const memory::desc weights_md = blocked ? memory::desc(weights_plain.dims(), f32, tag) : weights_plain;
  const memory::desc dst_md = blocked ? memory::desc(dst_plain.dims(), f32, tag) : dst_plain;
  const Dims strides{g.stride, g.stride}, padding{g.pad, g.pad};
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);

  Primitive p;
  // The forward descriptor: the primitive itself, or the hint the backward ones are built from.
  const dnnl::convolution_forward::desc forward_desc(dnnl::prop_kind::forward_training,
                                                     dnnl::algorithm::convolution_direct, src_md, weights_md, dst_md,
                                                     strides, padding, padding);
  if (kernel == ConvKernel::forward) {
    p.sums_into_out = accumulate && !blocked;
    if (p.sums_into_out) {
      dnnl::post_ops sum;
      sum.append_sum(1.0f);
      attr.set_post_ops(sum);
    }
    const dnnl::convolution_forward::primitive_desc pd(forward_desc, attr, cpu_engine());
    p.primitive = dnnl::convolution_forward(pd);
    p.a_arg = DNNL_ARG_SRC, p.b_arg = DNNL_ARG_WEIGHTS, p.out_arg = DNNL_ARG_DST;
    p.a_plain = src_plain, p.b_plain = weights_plain, p.out_plain = dst_plain;
    p.a_inner = pd.src_desc(), p.b_inner = pd.weights_desc(), p.out_inner = pd.dst_desc();
    p.scratchpad = pd.scratchpad_desc();
    p.name = pd.impl_info_str();
  } else {
    dnnl::primitive_attr hint_attr;
    hint_attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    const dnnl::convolution_forward::primitive_desc hint(forward_desc, hint_attr, cpu_engine());
    if (kernel == ConvKernel::backward_input) {
      const dnnl::convolution_backward_data::desc desc(dnnl::algorithm::convolution_direct, src_md, weights_md,
                                                       dst_md, strides, padding, padding);
      const dnnl::convolution_backward_data::primitive_desc pd(desc, attr, cpu_engine(), hint);
      p.primitive = dnnl::convolution_backward_data(pd);
      p.a_arg = DNNL_ARG_DIFF_DST, p.b_arg = DNNL_ARG_WEIGHTS, p.out_arg = DNNL_ARG_DIFF_SRC;
      p.a_plain = dst_plain, p.b_plain = weights_plain, p.out_plain = src_plain;
      p.a_inner = pd.diff_dst_desc(), p.b_inner = pd.weights_desc(), p.out_inner = pd.diff_src_desc();
      p.scratchpad = pd.scratchpad_desc();
      p.name = pd.impl_info_str();
    } else {
      const dnnl::convolution_backward_weights::desc desc(dnnl::algorithm::convolution_direct, src_md, weights_md,
                                                          dst_md, strides, padding, padding);
      const dnnl::convolution_backward_weights::primitive_desc pd(desc, attr, cpu_engine(), hint);
      p.primitive = dnnl::convolution_backward_weights(pd);
      p.a_arg = DNNL_ARG_DIFF_DST, p.b_arg = DNNL_ARG_SRC, p.out_arg = DNNL_ARG_DIFF_WEIGHTS;
      p.a_plain = dst_plain, p.b_plain = src_plain, p.out_plain = weights_plain;
      p.a_inner = pd.diff_dst_desc(), p.b_inner = pd.src_desc(), p.out_inner = pd.diff_weights_desc();
      p.scratchpad = pd.scratchpad_desc();
      p.name = pd.impl_info_str();
    }
  }
  p.a_in = reorder_between(p.a_plain, p.a_inner);
  p.b_in = reorder_between(p.b_plain, p.b_inner);
  p.out_back = reorder_between(p.out_inner, p.out_plain);
  p.ok = true;
  return p;
}

// OpenMP's thread count as oneDNN reads it when it creates a primitive.
int max_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

// The cached primitive (ok = false where oneDNN has none for this case: it is not asked again).
// Creating one takes milliseconds, longer than most calls. Keyed on the threads too: oneDNN fixes
// a primitive's division of work among OpenMP's threads when it creates it.
const Primitive& primitive(ConvKernel kernel, const ConvGeometry& g, std::int64_t count, Layout layout,
                           bool accumulate) {
  cpu_engine();  // made before the cache, so destroyed after the primitives it holds at exit
  static std::mutex mutex;
  static std::map<Key, std::unique_ptr<Primitive>> cache;
  const bool sum_key = kernel == ConvKernel::forward && layout == Layout::plain && accumulate;
  const Key key{int(kernel), g.C, g.H, g.W, g.O, g.kh, g.kw, g.stride, g.pad, count, int(layout), sum_key, max_threads()};
  std::lock_guard<std::mutex> lock(mutex);
  std::unique_ptr<Primitive>& slot = cache[key];
  if (!slot) {
    slot = std::make_unique<Primitive>();
    try {
      *slot = build(kernel, g, count, layout, accumulate);
    } catch (const dnnl::error&) {
      slot->ok = false;  // unimplemented for this case: our kernels run it
    }
  }
  return *slot;
}

memory wrap(const memory::desc& md, const void* data) { return memory(md, cpu_engine(), const_cast<void*>(data)); }

// An operand in the primitive's layout: `plain` itself where the layouts agree, else reordered
// into `buffer`.
const void* inner_operand(const std::optional<dnnl::reorder>& reorder, const memory::desc& plain_md,
                          const memory::desc& inner_md, const float* plain, Buffer& buffer) {
  if (!reorder) return plain;
  void* inner = buffer.get(inner_md.get_size());
  memory from = wrap(plain_md, plain), to = wrap(inner_md, inner);
  reorder->execute(thread_stream(), from, to);
  return inner;
}
const void* inner_a(const Primitive& p, const float* a, Buffer& buffer) {
  return inner_operand(p.a_in, p.a_plain, p.a_inner, a, buffer);
}
const void* inner_b(const Primitive& p, const float* b, Buffer& buffer) {
  return inner_operand(p.b_in, p.b_plain, p.b_inner, b, buffer);
}

// One bank: out (+)= the primitive's product of a and b, both already in its layouts (an
// operand every bank shares is reordered once per call, not once per bank).
void run(const Primitive& p, Scratch& s, const void* a, const void* b, float* out, bool accumulate) {
  dnnl::stream& stream = thread_stream();
  // Where the primitive writes: out itself when the layouts agree and nothing is added after.
  const bool direct_out = !p.out_back && (!accumulate || p.sums_into_out);
  memory out_mem = wrap(p.out_inner, direct_out ? static_cast<void*>(out) : s.out.get(p.out_inner.get_size()));
  std::unordered_map<int, memory> args{{p.a_arg, wrap(p.a_inner, a)}, {p.b_arg, wrap(p.b_inner, b)}, {p.out_arg, out_mem}};
  if (p.scratchpad.get_size() > 0) args.emplace(DNNL_ARG_SCRATCHPAD, wrap(p.scratchpad, s.pad.get(p.scratchpad.get_size())));
  p.primitive.execute(stream, args);
  if (direct_out) return;
  const float* result = static_cast<const float*>(out_mem.get_data_handle());
  if (p.out_back) {
    float* plain = accumulate ? static_cast<float*>(s.plain_out.get(p.out_plain.get_size())) : out;
    memory plain_mem = wrap(p.out_plain, plain);
    p.out_back->execute(stream, out_mem, plain_mem);
    if (!accumulate) return;
    result = plain;
  }
  const std::int64_t n = static_cast<std::int64_t>(p.out_plain.get_size() / sizeof(float));
  parallel_chunks(n, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t i = begin; i < end; ++i) out[i] += result[i];
  });
}

}  // namespace

bool built() { return true; }

std::string implementation(ConvKernel kernel, const ConvGeometry& g, std::int64_t count, Layout layout) {
  const Primitive& p = primitive(kernel, g, count, layout, false);
  return p.ok ? p.name : "";
}

std::string version() {
  const dnnl_version_t* v = dnnl_version();
  return std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch);
}

// forward and backward_input: one operand (the images, or the output adjoint) shared by every
// bank of filters, reordered once; each bank its own call of the one primitive.
template <class T>
bool with_filter_banks(ConvKernel kernel, Layout layout, const ConvGeometry& g, std::int64_t count, const T* a,
                       Banks<const T> w, Banks<T> out, bool accumulate) {
  if constexpr (!std::is_same_v<T, float>) {
    return false;
  } else {
    if (count == 0) return false;
    const Primitive& p = primitive(kernel, g, count, layout, accumulate);
    if (!p.ok) return false;
    Scratch s;
    const void* a_inner = inner_a(p, a, s.a);
    for (std::int64_t m = 0; m < w.count; ++m) run(p, s, a_inner, inner_b(p, w[m], s.b), out[m], accumulate);
    return true;
  }
}

template <class T>
bool forward(Layout layout, const ConvGeometry& g, std::int64_t count, const T* x, Banks<const T> w, Banks<T> out,
             bool accumulate) {
  return with_filter_banks(ConvKernel::forward, layout, g, count, x, w, out, accumulate);
}

template <class T>
bool backward_input(Layout layout, const ConvGeometry& g, std::int64_t count, const T* gy, Banks<const T> w,
                    Banks<T> out, bool accumulate) {
  return with_filter_banks(ConvKernel::backward_input, layout, g, count, gy, w, out, accumulate);
}

template <class T>
bool backward_weight(Layout layout, const ConvGeometry& g, std::int64_t count, Banks<const T> gy, Banks<const T> x,
                     Banks<T> out, bool accumulate) {
  if constexpr (!std::is_same_v<T, float>) {
    return false;
  } else {
    if (count == 0) return false;
    const Primitive& p = primitive(ConvKernel::backward_weight, g, count, layout, accumulate);
    if (!p.ok) return false;
    // Every bank of out is its own call of the same primitive: a sum over images whose order
    // does not depend on how many banks ride along.
    // The single-bank operand is reordered once, into its own buffer.
    Scratch s;
    const void* gy_shared = gy.count == 1 ? inner_a(p, gy[0], s.a) : nullptr;
    const void* x_shared = x.count == 1 ? inner_b(p, x[0], s.b_shared) : nullptr;
    for (std::int64_t m = 0; m < out.count; ++m)
      run(p, s, gy_shared ? gy_shared : inner_a(p, gy[m], s.a), x_shared ? x_shared : inner_b(p, x[m], s.b), out[m],
          accumulate);
    return true;
  }
}

#else  // built without oneDNN: every call declines

bool built() { return false; }
std::string version() { return ""; }
std::string implementation(ConvKernel, const ConvGeometry&, std::int64_t, Layout) { return ""; }

template <class T>
bool forward(Layout, const ConvGeometry&, std::int64_t, const T*, Banks<const T>, Banks<T>, bool) {
  return false;
}
template <class T>
bool backward_input(Layout, const ConvGeometry&, std::int64_t, const T*, Banks<const T>, Banks<T>, bool) {
  return false;
}
template <class T>
bool backward_weight(Layout, const ConvGeometry&, std::int64_t, Banks<const T>, Banks<const T>, Banks<T>, bool) {
  return false;
}

#endif

#define GRADHPO_DNNL_INSTANTIATE(T)                                                                              \
  template bool forward<T>(Layout, const ConvGeometry&, std::int64_t, const T*, Banks<const T>, Banks<T>, bool); \
  template bool backward_input<T>(Layout, const ConvGeometry&, std::int64_t, const T*, Banks<const T>, Banks<T>, \
                                  bool);                                                                         \
  template bool backward_weight<T>(Layout, const ConvGeometry&, std::int64_t, Banks<const T>, Banks<const T>,    \
                                   Banks<T>, bool);
GRADHPO_DNNL_INSTANTIATE(float)
GRADHPO_DNNL_INSTANTIATE(double)
#undef GRADHPO_DNNL_INSTANTIATE

}  // namespace gradhpo::kernels::dnnl_conv
