#include "conv_direct.h"

#include <Eigen/Core>
#include <algorithm>
#include <cstring>
#include <type_traits>
#include <utility>
#include <vector>

#include "image_loop.h"

// Eigen's packets are vector types with alignment attributes (__m512 and the like), which GCC
// warns are dropped when they are template arguments; Eigen silences the same warning inside.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wignored-attributes"
#endif

namespace gradhpo::kernels {

bool direct_conv_applies(ConvKernel kernel, const ConvGeometry& g) {
  return kernel != ConvKernel::backward_input || (g.stride == 1 && g.pad < g.kh && g.pad < g.kw);
}

namespace {

namespace ei = Eigen::internal;
using image_loop::for_images;
using image_loop::image_threads;
using image_loop::copy_row;
using image_loop::Scratch;

// ---- register tiles -----------------------------------------------------------------------------
// Sized to the SIMD registers of the instruction set this file is compiled for (Eigen's packets
// follow the same flags): AVX-512 has 32, AVX2 and SSE 16. A tile's sums, the operand vectors
// of one step and a broadcast must all fit, or the compiler spills sums to the stack.

#if defined(__AVX512F__)
constexpr int kVectorRegisters = 32;
#else
constexpr int kVectorRegisters = 16;
#endif
// Correlation (forward, backward_input): kOutBlock channels × kRowBlock rows of sums
// (24 of 32 registers, 12 of 16), plus kRowBlock image vectors and a broadcast filter tap.
constexpr int kOutBlock = kVectorRegisters >= 32 ? 8 : 4;
constexpr int kRowBlock = 3;
// backward_weight: kWeightOut channels × kWeightTaps taps of sums (27 of 32, 10 of 16), plus
// kWeightOut adjoint vectors and an image vector.
constexpr int kWeightOut = kVectorRegisters >= 32 ? 3 : 2;
constexpr int kWeightTaps = kVectorRegisters >= 32 ? 9 : 5;

template <class T> using FullPacket = typename ei::packet_traits<T>::type;
template <class T> using HalfPacket = typename ei::unpacket_traits<FullPacket<T>>::half;
template <class P> constexpr std::int64_t kLanes = ei::unpacket_traits<P>::size;

/// Calls f(std::type_identity<P>) with the packet (full or half width) that leaves fewest
/// unused lanes in rows of `width` pixels: 8-pixel rows (WRN's last group) take half packets
/// rather than leave half of every full one idle.
template <class T, class F> void with_packet(std::int64_t width, F&& f) {
  constexpr std::int64_t full = kLanes<FullPacket<T>>, half = kLanes<HalfPacket<T>>;
  const std::int64_t unused_full = (width + full - 1) / full * full - width;
  const std::int64_t unused_half = (width + half - 1) / half * half - width;
  if (full == half || unused_full <= unused_half) f(std::type_identity<FullPacket<T>>{});
  else f(std::type_identity<HalfPacket<T>>{});
}

/// Calls f(std::integral_constant<int, v>) for the first of Vs equal to v: a run-time block
/// size turned into a compile-time one, so that a tile's sums live in registers.
template <int... Vs, class F> void with_constant(int v, F&& f) {
  const bool found = ((v == Vs ? (f(std::integral_constant<int, Vs>{}), true) : false) || ...);
  (void)found;
}

/// The largest of max, 4, 2, 1 that is at most max and at most n (n ≥ 1).
inline int block_of(int max, std::int64_t n) {
  for (int b : {max, 4, 2, 1})
    if (b <= max && b <= n) return b;
  return 1;
}

template <class T, class P> P load_some(const T* p, std::int64_t n) {
  if (n == kLanes<P>) return ei::ploadu<P>(p);
  alignas(64) T buf[kLanes<P>] = {};
  std::memcpy(buf, p, static_cast<std::size_t>(n) * sizeof(T));
  return ei::ploadu<P>(buf);
}
/// The sum of a packet's lanes, in lane order. (Eigen's predux, on AVX-512, draws GCC 12's
/// false "may be used uninitialized" for the undefined upper half it extracts.)
template <class T, class P> T sum_lanes(const P& v) {
  alignas(64) T buf[kLanes<P>];
  ei::pstoreu(buf, v);
  T s = buf[0];
  for (std::int64_t l = 1; l < kLanes<P>; ++l) s += buf[l];
  return s;
}
template <class T, class P> void store_some(T* p, const P& v, std::int64_t n) {
  if (n == kLanes<P>) return ei::pstoreu(p, v);
  alignas(64) T buf[kLanes<P>];
  ei::pstoreu(buf, v);
  std::memcpy(p, buf, static_cast<std::size_t>(n) * sizeof(T));
}

// ---- the padded input ------------------------------------------------------------------------------
// An image [C, H, W] zero-padded by (ph, pw) and split into s × s phases (s the stride), so that
// output pixels next to each other read inputs next to each other: padded element (c, r, q) is
// at ((c·s + r % s)·s + q % s)·Hq·Wq + (r / s)·Wq + q / s. Output pixel (oh, ow) then reads tap
// (i, j) of channel c at tap(c, i, j) + oh·Wq + ow. With s = 1 this is the padded image itself.

struct Padded {
  std::int64_t C, H, W, ph, pw, s;
  std::int64_t Hq, Wq;  // rows and columns of one phase

  Padded(std::int64_t C, std::int64_t H, std::int64_t W, std::int64_t ph, std::int64_t pw, std::int64_t s)
      : C(C), H(H), W(W), ph(ph), pw(pw), s(s), Hq((H + 2 * ph + s - 1) / s), Wq((W + 2 * pw + s - 1) / s) {}
  std::int64_t plane() const { return Hq * Wq; }
  std::int64_t size() const { return C * s * s * plane(); }
  std::int64_t tap(std::int64_t c, std::int64_t i, std::int64_t j) const {
    return ((c * s + i % s) * s + j % s) * plane() + (i / s) * Wq + j / s;
  }
  /// Writes image x into the interior of dst (whose border stays as it is: zero).
  template <class T> void fill(const T* x, T* dst) const {
    for (std::int64_t c = 0; c < C; ++c)
      for (std::int64_t h = 0; h < H; ++h) {
        const T* src = x + (c * H + h) * W;
        const std::int64_t r = h + ph;
        T* row = dst + (c * s + r % s) * s * plane() + (r / s) * Wq;
        if (s == 1) {
          copy_row(row + pw, src, W);
          continue;
        }
        for (std::int64_t b = 0; b < s; ++b) {  // phase b holds padded columns q ≡ b (mod s)
          T* phase = row + b * plane();
          const std::int64_t w0 = ((b - pw) % s + s) % s;  // first w with w + pw ≡ b
          T* d = phase + (w0 + pw) / s;
          for (std::int64_t w = w0; w < W; w += s) *d++ = src[w];
        }
      }
  }
};

/// Elements read past the end of a padded image by a tile whose last vector holds fewer than
/// its lanes' worth of pixels; the scratch buffers keep this many zeros after the image.
template <class T> constexpr std::int64_t kSlack = kLanes<FullPacket<T>>;

// ---- the correlation ------------------------------------------------------------------------------
// out[o][oh][ow] (+)= Σ_{c,i,j} w[o][c][i][j] · src[c][oh·s + i][ow·s + j], src the input
// zero-padded by (ph, pw). Forward is this with the image and the filters; backward_input (for
// stride 1) with the output adjoint, padded by k − 1 − pad, and the filters flipped and
// transposed.

struct Correlation {
  Padded in;
  std::int64_t kh, kw;               // filter taps
  std::int64_t O;                    // output channels (of all banks)
  std::int64_t Ho, Wo;
  std::vector<std::int64_t> offset;  // step q = (c·kh + i)·kw + j → in.tap(c, i, j)

  Correlation(const Padded& in, std::int64_t kh, std::int64_t kw, std::int64_t O)
      : in(in), kh(kh), kw(kw), O(O), Ho((in.H + 2 * in.ph - kh) / in.s + 1), Wo((in.W + 2 * in.pw - kw) / in.s + 1) {
    for (std::int64_t c = 0; c < in.C; ++c)
      for (std::int64_t i = 0; i < kh; ++i)
        for (std::int64_t j = 0; j < kw; ++j) offset.push_back(in.tap(c, i, j));
  }
  std::int64_t patch() const { return in.C * kh * kw; }
};

/// Filters packed for the tiles: the block of `ob` output channels starting at o0 (ob as
/// correlate_image takes them) is [C·kh·kw][ob] at offset o0·C·kh·kw, so that one step's ob
/// taps are adjacent. tap(o, q) is filter o's element q = (c·kh + i)·kw + j.
template <class T, class Tap> std::vector<T> pack_filters(const Correlation& k, Tap&& tap) {
  const std::int64_t Q = k.patch();
  std::vector<T> packed(static_cast<std::size_t>(k.O * Q));
  for (std::int64_t o0 = 0; o0 < k.O;) {
    const int ob = block_of(kOutBlock, k.O - o0);
    for (std::int64_t q = 0; q < Q; ++q)
      for (int b = 0; b < ob; ++b) packed[static_cast<std::size_t>(o0 * Q + q * ob + b)] = tap(o0 + b, q);
    o0 += ob;
  }
  return packed;
}

/// One register tile: OB channels × RB rows × one packet of pixels, src the padded input at
/// channel 0 and the tile's first output row and column. out[b] is channel b's output at the
/// same place, rows Wo apart; n ≤ lanes pixels of each row are stored. One flat loop over the
/// (channel, tap) steps, their input offsets precomputed: with the three nested loops, GCC
/// stored and reloaded every sum at each pass of the inner ones.
template <class T, class P, int OB, int RB>
void correlate_tile(const Correlation& k, const T* src, const T* w, T* const* out, std::int64_t n, bool accumulate) {
  const std::int64_t Wq = k.in.Wq, Wo = k.Wo, Q = k.patch();
  const std::int64_t* offset = k.offset.data();
  P acc[OB][RB];
  for (int b = 0; b < OB; ++b)
    for (int r = 0; r < RB; ++r) acc[b][r] = accumulate ? load_some<T, P>(out[b] + r * Wo, n) : ei::pset1<P>(T(0));
  for (std::int64_t q = 0; q < Q; ++q, w += OB) {
    const T* at = src + offset[q];
    P x[RB];
    for (int r = 0; r < RB; ++r) x[r] = ei::ploadu<P>(at + r * Wq);
    for (int b = 0; b < OB; ++b) {
      const P tap = ei::pset1<P>(w[b]);
      for (int r = 0; r < RB; ++r) acc[b][r] = ei::pmadd(tap, x[r], acc[b][r]);
    }
  }
  for (int b = 0; b < OB; ++b)
    for (int r = 0; r < RB; ++r) store_some(out[b] + r * Wo, acc[b][r], n);
}

/// All output channels of one image: xp is its padded input, chan[o] its output channel o.
template <class T, class P>
void correlate_image(const Correlation& k, const T* xp, const T* packed, T* const* chan, bool accumulate) {
  constexpr std::int64_t V = kLanes<P>;
  const std::int64_t Ho = k.Ho, Wo = k.Wo, Wq = k.in.Wq, Q = k.patch();
  for (std::int64_t o0 = 0; o0 < k.O;) {
    const int ob = block_of(kOutBlock, k.O - o0);
    with_constant<kOutBlock, 4, 2, 1>(ob, [&](auto OB) {
      T* out[OB.value];
      for (std::int64_t oh0 = 0; oh0 < Ho;) {
        const int rb = static_cast<int>(std::min<std::int64_t>(kRowBlock, Ho - oh0));
        with_constant<kRowBlock, 2, 1>(rb, [&](auto RB) {
          for (std::int64_t ow0 = 0; ow0 < Wo; ow0 += V) {
            for (int b = 0; b < OB.value; ++b) out[b] = chan[o0 + b] + oh0 * Wo + ow0;
            correlate_tile<T, P, OB.value, RB.value>(k, xp + oh0 * Wq + ow0, packed + o0 * Q, out,
                                                     std::min(V, Wo - ow0), accumulate);
          }
        });
        oh0 += rb;
      }
    });
    o0 += ob;
  }
}

/// The correlation over `count` images: input(i) is image i [C, H, W] (unpadded), channel(i, o)
/// where its output channel o goes. Images are split over threads, each with its own padded copy.
template <class T, class Input, class Channel>
void correlate_images(const Correlation& k, std::int64_t count, const std::vector<T>& packed, Input&& input,
                      Channel&& channel, bool accumulate) {
  const int threads = image_threads(count, 2.0 * count * k.O * k.patch() * k.Ho * k.Wo);
  const std::int64_t padded = k.in.size() + kSlack<T>;
  Scratch<T> pad_buf(threads, padded);
  std::vector<T*> chan_buf(static_cast<std::size_t>(threads * k.O));
  with_packet<T>(k.Wo, [&](auto packet) {
    using P = typename decltype(packet)::type;
    for_images(threads, count, [&](int t, std::int64_t begin, std::int64_t end) {
      T* xp = pad_buf(t);
      T** chan = chan_buf.data() + t * k.O;
      std::fill(xp, xp + padded, T(0));  // border and slack; fill never writes them
      for (std::int64_t i = begin; i < end; ++i) {
        k.in.fill(input(i), xp);
        for (std::int64_t o = 0; o < k.O; ++o) chan[o] = channel(i, o);
        correlate_image<T, P>(k, xp, packed.data(), chan, accumulate);
      }
    });
  });
}

// ---- backward_weight ---------------------------------------------------------------------------
// W̄[o][c][i][j] (+)= Σ_images Σ_{oh,ow} ḡ[o][oh][ow] · xp[c][oh + i][ow + j]. Per thread, images
// are taken a group at a time: their padded (phase-split) inputs xs [G][Cs][...] and adjoints gs
// [G][Os][Ho][Wr] (rows rounded up to whole packets, the extra lanes zero). A tile keeps OB × TB
// vector sums over every pixel of the group, then adds each sum's lanes to the thread's partial
// result; the group is sized so that this reduction is a small part of the tile's work.

struct WeightPass {
  Padded in;                                        // one bank's image, padded and phase-split
  std::int64_t Os = 0, Cs = 0;                      // adjoint and input channels (of all banks)
  std::int64_t Ho = 0, Wo = 0, Wr = 0;
  std::int64_t taps = 0;
  std::vector<std::int64_t> offset;                 // tap (i, j) → in.tap(0, i, j)
  // The packet steps over a group's pixels, (adjoint offset, input offset) from channel 0 of
  // image 0: first those whose lanes are all in the row, then the last packet of each row when
  // Wo is not a whole number of packets. Image by image, so a group of n takes a prefix.
  std::vector<std::pair<std::int64_t, std::int64_t>> whole, tail;
  std::int64_t whole_per_image = 0, tail_per_image = 0;

  void plan_steps(std::int64_t V, std::int64_t images) {
    const std::int64_t full = Wo / V, segs = Wr / V;
    whole_per_image = Ho * full, tail_per_image = Ho * (segs - full);
    for (std::int64_t im = 0; im < images; ++im)
      for (std::int64_t oh = 0; oh < Ho; ++oh)
        for (std::int64_t seg = 0; seg < segs; ++seg)
          (seg < full ? whole : tail)
              .emplace_back((im * Os * Ho + oh) * Wr + seg * V, im * x_image() + oh * in.Wq + seg * V);
  }
  std::int64_t x_channel() const { return in.s * in.s * in.plane(); }
  std::int64_t x_image() const { return Cs * x_channel();
  }
};

template <class T, class P, int OB, int TB>
void weight_tile(const WeightPass& s, const T* gs, const T* xs, std::int64_t images, std::int64_t o0, std::int64_t c,
                 std::int64_t t0, const P& tail_mask, T* partial) {
  const std::int64_t* off = s.offset.data() + t0;
  const std::int64_t plane = s.Ho * s.Wr;
  const T* g0 = gs + o0 * plane;
  const T* x0 = xs + c * s.x_channel();
  P acc[OB][TB];
  for (int b = 0; b < OB; ++b)
    for (int t = 0; t < TB; ++t) acc[b][t] = ei::pset1<P>(T(0));
  auto steps = [&](const std::pair<std::int64_t, std::int64_t>* step, std::int64_t n, auto masked) {
    for (std::int64_t k = 0; k < n; ++k) {
      const T* g = g0 + step[k].first;
      const T* x = x0 + step[k].second;
      P gv[OB];
      for (int b = 0; b < OB; ++b) gv[b] = ei::ploadu<P>(g + b * plane);
      for (int t = 0; t < TB; ++t) {
        P xv = ei::ploadu<P>(x + off[t]);
        // Lanes past the row read the next pixels; their adjoint is zero, and so is the pixel
        // here, so that an infinite input there cannot make a NaN of 0 · ∞.
        if constexpr (decltype(masked)::value) xv = ei::pand(xv, tail_mask);
        for (int b = 0; b < OB; ++b) acc[b][t] = ei::pmadd(gv[b], xv, acc[b][t]);
      }
    }
  };
  steps(s.whole.data(), images * s.whole_per_image, std::false_type{});
  steps(s.tail.data(), images * s.tail_per_image, std::true_type{});
  for (int b = 0; b < OB; ++b)
    for (int t = 0; t < TB; ++t) partial[((o0 + b) * s.Cs + c) * s.taps + t0 + t] += sum_lanes<T>(acc[b][t]);
}

template <class T, class P>
void weight_group(const WeightPass& s, const T* gs, const T* xs, std::int64_t images, T* partial) {
  constexpr std::int64_t V = kLanes<P>;
  // All bits set in the lanes of the last segment that hold pixels of the row, zero after.
  alignas(64) T bits[V];
  for (std::int64_t l = 0; l < V; ++l) {
    using Bits = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
    const Bits v = l < s.Wo % V || s.Wo % V == 0 ? ~Bits(0) : Bits(0);
    std::memcpy(bits + l, &v, sizeof(T));
  }
  const P tail_mask = ei::ploadu<P>(bits);
  for (std::int64_t c = 0; c < s.Cs; ++c)
    for (std::int64_t o0 = 0; o0 < s.Os;) {
      const int ob = block_of(kWeightOut, s.Os - o0);
      with_constant<kWeightOut, 2, 1>(ob, [&](auto OB) {
        for (std::int64_t t0 = 0; t0 < s.taps;) {
          const int tb = block_of(kWeightTaps, s.taps - t0);
          with_constant<kWeightTaps, 4, 2, 1>(tb, [&](auto TB) {
            weight_tile<T, P, OB.value, TB.value>(s, gs, xs, images, o0, c, t0, tail_mask, partial);
          });
          t0 += tb;
        }
      });
      o0 += ob;
    }
}

}  // namespace

// ---- the entry points ---------------------------------------------------------------------------

template <class T>
void direct_conv2d_forward(const ConvGeometry& g, std::int64_t count, const T* x, Banks<const T> w, Banks<T> out,
                           bool accumulate) {
  const Correlation k(Padded(g.C, g.H, g.W, g.pad, g.pad, g.stride), g.kh, g.kw, w.count * g.O);
  const std::int64_t Q = g.patch();
  const std::vector<T> packed = pack_filters<T>(k, [&](std::int64_t o, std::int64_t q) { return w[o / g.O][(o % g.O) * Q + q]; });
  correlate_images<T>(
      k, count, packed, [&](std::int64_t i) { return x + i * g.in_image(); },
      [&](std::int64_t i, std::int64_t o) { return out[o / g.O] + i * g.out_image() + (o % g.O) * g.pixels(); },
      accumulate);
}

template <class T>
void direct_conv2d_backward_input(const ConvGeometry& g, std::int64_t count, const T* gy, Banks<const T> w,
                                  Banks<T> out, bool accumulate) {
  // x̄[c][h][w] = Σ_{o,i,j} ḡ[o][h + pad − i][w + pad − j] W[o][c][i][j]: a correlation of ḡ padded
  // by k − 1 − pad with W'[c][o][i'][j'] = W[o][c][kh − 1 − i'][kw − 1 − j'], output H × W.
  GRADHPO_CHECK(direct_conv_applies(ConvKernel::backward_input, g),
                "direct conv2d_backward_input: needs stride 1 and padding < kernel, got stride " +
                    std::to_string(g.stride) + ", padding " + std::to_string(g.pad));
  const Correlation k(Padded(g.O, g.Ho, g.Wo, g.kh - 1 - g.pad, g.kw - 1 - g.pad, 1), g.kh, g.kw, w.count * g.C);
  const std::int64_t taps = g.kh * g.kw;
  const std::vector<T> packed = pack_filters<T>(k, [&](std::int64_t oc, std::int64_t q) {
    const std::int64_t o = q / taps, i = q % taps / g.kw, j = q % g.kw;
    return w[oc / g.C][((o * g.C + oc % g.C) * g.kh + g.kh - 1 - i) * g.kw + g.kw - 1 - j];
  });
  correlate_images<T>(
      k, count, packed, [&](std::int64_t i) { return gy + i * g.out_image(); },
      [&](std::int64_t i, std::int64_t c) { return out[c / g.C] + i * g.in_image() + (c % g.C) * g.H * g.W; },
      accumulate);
}

template <class T>
void direct_conv2d_backward_weight(const ConvGeometry& g, std::int64_t count, Banks<const T> gy, Banks<const T> x,
                                   Banks<T> out, bool accumulate) {
  GRADHPO_CHECK(gy.count == 1 || x.count == 1, "conv2d_backward_weight: one operand must have a single bank");
  const std::int64_t Mg = gy.count, Mx = x.count, M = std::max(Mg, Mx);
  WeightPass s{Padded(g.C, g.H, g.W, g.pad, g.pad, g.stride)};
  s.Os = Mg * g.O, s.Cs = Mx * g.C, s.Ho = g.Ho, s.Wo = g.Wo;
  s.taps = g.kh * g.kw;
  for (std::int64_t i = 0; i < g.kh; ++i)
    for (std::int64_t j = 0; j < g.kw; ++j) s.offset.push_back(s.in.tap(0, i, j));
  const int threads = image_threads(count, 2.0 * count * M * g.O * g.patch() * g.pixels());
  const std::int64_t result = s.Os * s.Cs * s.taps;
  Scratch<T> partial_buf(threads, result);
  // Zeroed here, not in the region: a thread that gets no image still adds its (zero) part.
  for (int t = 0; t < threads; ++t) std::fill(partial_buf(t), partial_buf(t) + result, T(0));
  with_packet<T>(g.Wo, [&](auto packet) {
    using P = typename decltype(packet)::type;
    constexpr std::int64_t V = kLanes<P>;
    s.Wr = (g.Wo + V - 1) / V * V;
    // Images per group: at least ~48 packet steps per tile between reductions.
    const std::int64_t group = std::clamp<std::int64_t>((48 + s.Ho * (s.Wr / V) - 1) / (s.Ho * (s.Wr / V)), 1, count);
    const std::int64_t x_image = s.x_image(), g_image = s.Os * s.Ho * s.Wr;
    // With one adjoint bank and rows of whole packets, a group's adjoints are read in place.
    const bool stage_g = Mg > 1 || s.Wr != g.Wo;
    s.plan_steps(V, group);
    Scratch<T> x_buf(threads, group * x_image + kSlack<T>);
    Scratch<T> g_buf(threads, stage_g ? group * g_image : 0);
    for_images(threads, count, [&](int t, std::int64_t begin, std::int64_t end) {
      T* xs = x_buf(t);
      T* gs = g_buf(t);
      std::fill(xs, xs + group * x_image + kSlack<T>, T(0));  // borders and slack stay zero
      if (stage_g) std::fill(gs, gs + group * g_image, T(0));  // and the lanes past each row
      for (std::int64_t i0 = begin; i0 < end; i0 += group) {
        const std::int64_t images = std::min(group, end - i0);
        for (std::int64_t im = 0; im < images; ++im) {
          for (std::int64_t m = 0; m < Mx; ++m)
            s.in.fill(x[m] + (i0 + im) * g.in_image(), xs + im * x_image + m * s.in.size());
          if (stage_g)
            for (std::int64_t m = 0; m < Mg; ++m)
              for (std::int64_t o = 0; o < g.O; ++o)
                for (std::int64_t oh = 0; oh < g.Ho; ++oh)
                  copy_row(gs + ((im * s.Os + m * g.O + o) * s.Ho + oh) * s.Wr,
                           gy[m] + (i0 + im) * g.out_image() + o * g.pixels() + oh * g.Wo, g.Wo);
        }
        weight_group<T, P>(s, stage_g ? gs : gy[0] + i0 * g.out_image(), xs, images, partial_buf(t));
      }
    });
  });
  // The threads' partial sums, in thread order (reproducible), into the banks: bank m is
  // channels m·O.. of the adjoint when it has the banks, input channels m·C.. when x has them.
  for (std::int64_t m = 0; m < M; ++m) {
    T* dst = out[m];
    const std::int64_t o_base = Mg > 1 ? m * g.O : 0, c_base = Mx > 1 ? m * g.C : 0;
    for (std::int64_t o = 0; o < g.O; ++o)
      for (std::int64_t c = 0; c < g.C; ++c)
        for (std::int64_t t = 0; t < s.taps; ++t) {
          T sum = 0;
          for (int th = 0; th < threads; ++th) sum += partial_buf(th)[((o_base + o) * s.Cs + c_base + c) * s.taps + t];
          T& d = dst[(o * g.C + c) * s.taps + t];
          d = accumulate ? d + sum : sum;
        }
  }
}

#define GRADHPO_DIRECT_CONV_INSTANTIATE(T)                                                                   \
  template void direct_conv2d_forward<T>(const ConvGeometry&, std::int64_t, const T*, Banks<const T>, Banks<T>, \
                                         bool);                                                              \
  template void direct_conv2d_backward_input<T>(const ConvGeometry&, std::int64_t, const T*, Banks<const T>,   \
                                                Banks<T>, bool);                                             \
  template void direct_conv2d_backward_weight<T>(const ConvGeometry&, std::int64_t, Banks<const T>,            \
                                                 Banks<const T>, Banks<T>, bool);
GRADHPO_DIRECT_CONV_INSTANTIATE(float)
GRADHPO_DIRECT_CONV_INSTANTIATE(double)
#undef GRADHPO_DIRECT_CONV_INSTANTIATE

}  // namespace gradhpo::kernels
