#include "conv_direct.h"

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <utility>
#include <vector>

#include "conv_tiles.h"
#include "cpu.h"
#include "image_loop.h"

namespace gradhpo::kernels {

bool direct_conv_applies(ConvKernel kernel, const ConvGeometry& g) {
  return kernel != ConvKernel::backward_input || g.stride > 1 || (g.pad < g.kh && g.pad < g.kw);
}

double direct_lane_use(std::int64_t width, std::size_t element_bytes) {
  std::int64_t lanes = 0;
  auto count = [&](auto packet) { lanes = kLanes<typename decltype(packet)::type>; };
  if (element_bytes == sizeof(double)) conv_tiles::with_packet<double>(width, count);
  else conv_tiles::with_packet<float>(width, count);
  return static_cast<double>(width) / static_cast<double>((width + lanes - 1) / lanes * lanes);
}

namespace {

using namespace conv_tiles;
using image_loop::for_images;
using image_loop::image_threads;
using image_loop::Scratch;

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

/// body(t, i, xp) for each of `count` images on `threads` threads, xp image i (input(i),
/// unpadded [C, H, W]) zero-padded as `in` lays it out, in thread t's own buffer.
template <class T, class Input, class Body>
void for_padded_images(const Padded& in, int threads, std::int64_t count, Input&& input, Body&& body) {
  const std::int64_t padded = in.size() + kSlack<T>;
  Scratch<T> pad_buf(threads, padded);
  for_images(threads, count, [&](int t, std::int64_t begin, std::int64_t end) {
    T* xp = pad_buf(t);
    std::fill(xp, xp + padded, T(0));  // border and slack; fill never writes them
    for (std::int64_t i = begin; i < end; ++i) {
      in.fill(input(i), xp);
      body(t, i, static_cast<const T*>(xp));
    }
  });
}

/// The correlation over `count` images: input(i) is image i [C, H, W] (unpadded), channel(i, o)
/// where its output channel o goes, weight(o, q) filter o's tap q = (c·kh + i)·kw + j. Images
/// are split over threads, each with its own padded copy.
template <class T, class Weight, class Input, class Channel>
void correlate_images(const Correlation& k, std::int64_t count, Weight&& weight, Input&& input, Channel&& channel,
                      bool accumulate) {
  const int threads = image_threads(count, 2.0 * count * k.O * k.patch() * k.Ho * k.Wo);
  std::vector<T*> chan_buf(static_cast<std::size_t>(threads * k.O));
  std::vector<T> packed(static_cast<std::size_t>(k.O * k.patch()));
  pack_blocks<T>(k.O, k.patch(), weight, packed.data());
  const Sweep sw{k.offset.data(), k.patch(), k.O, k.Ho, k.Wo, k.in.Wq, k.Wo};
  with_packet<T>(k.Wo, [&](auto packet) {
    for_padded_images<T>(k.in, threads, count, input, [&](int t, std::int64_t i, const T* xp) {
      T** chan = chan_buf.data() + t * k.O;
      for (std::int64_t o = 0; o < k.O; ++o) chan[o] = channel(i, o);
      sweep<T, typename decltype(packet)::type>(sw, xp, packed.data(), chan, accumulate);
    });
  });
}

// ---- backward_input at stride s > 1 --------------------------------------------------------------
// x̄[c][h][w] = Σ_{o,i,j} ḡ[o][(h + pad − i)/s][(w + pad − j)/s] · W[o][c][i][j], over the taps
// where both divisions are exact. Split x̄ into its s × s phases, h = s·a + ph and w = s·b + pw:
// in phase (ph, pw) only the taps i = i0 + s·t with i0 = (ph + pad) mod s (and likewise j) meet
// an adjoint pixel, at row a + dh − t with dh = (ph + pad − i0)/s. So each phase is a stride-1
// correlation of the padded ḡ with the sub-filter of its taps, flipped, whose Hp × Wp outputs
// go to every s-th pixel of x̄: the multiply-adds of the definition and no others (im2col's
// col2im, or a correlation of ḡ with zeros inserted, would do s² times as many).

/// The taps of one dimension that meet the adjoint in phase p: i0 + s·t, t < count, at adjoint
/// index (phase index) + d − t.
struct PhaseTaps {
  std::int64_t i0 = 0, count = 0, d = 0, size = 0;  // size: the phase's pixels in that dimension
  PhaseTaps(std::int64_t p, std::int64_t k, std::int64_t pad, std::int64_t s, std::int64_t extent)
      : i0((p + pad) % s), count(i0 < k ? (k - i0 + s - 1) / s : 0), d((p + pad - i0) / s),
        size(p < extent ? (extent - p + s - 1) / s : 0) {}
  /// The lowest and highest adjoint index the phase reads (before padding).
  std::int64_t lowest() const { return d - (count - 1); }
  std::int64_t highest() const { return size - 1 + d; }
};

/// The zero padding of ḡ (each side) that every phase's reads stay inside.
std::int64_t adjoint_padding(std::int64_t k, std::int64_t pad, std::int64_t s, std::int64_t extent, std::int64_t out) {
  std::int64_t p = 0;
  for (std::int64_t ph = 0; ph < s; ++ph) {
    const PhaseTaps t(ph, k, pad, s, extent);
    if (t.count == 0 || t.size == 0) continue;
    p = std::max({p, -t.lowest(), t.highest() - (out - 1)});
  }
  return p;
}

template <class T>
void strided_backward_input(const ConvGeometry& g, std::int64_t count, const T* gy, Banks<const T> w, Banks<T> out,
                            bool accumulate) {
  const std::int64_t s = g.stride, C = w.count * g.C;  // output channels of all banks
  const Padded adj(g.O, g.Ho, g.Wo, adjoint_padding(g.kh, g.pad, s, g.H, g.Ho), adjoint_padding(g.kw, g.pad, s, g.W, g.Wo), 1);
  struct Phase {
    PhaseTaps rows, cols;
    std::vector<std::int64_t> offset;  // step q = (o·rows.count + t)·cols.count + u
    std::vector<T> packed;
  };
  std::vector<Phase> phases;
  std::int64_t largest = 0;  // elements of the largest phase output, all channels
  for (std::int64_t ph = 0; ph < s; ++ph)
    for (std::int64_t pw = 0; pw < s; ++pw) {
      Phase p{PhaseTaps(ph, g.kh, g.pad, s, g.H), PhaseTaps(pw, g.kw, g.pad, s, g.W), {}, {}};
      const std::int64_t taps = p.rows.count * p.cols.count;
      for (std::int64_t o = 0; o < g.O; ++o)
        for (std::int64_t t = 0; t < p.rows.count; ++t)
          for (std::int64_t u = 0; u < p.cols.count; ++u)
            p.offset.push_back(adj.tap(o, adj.ph + p.rows.d - t, adj.pw + p.cols.d - u));
      p.packed.resize(static_cast<std::size_t>(C * g.O * taps));
      pack_blocks<T>(C, g.O * taps, [&](std::int64_t oc, std::int64_t q) {
        const std::int64_t o = q / taps, t = q % taps / p.cols.count, u = q % p.cols.count;
        const std::int64_t i = p.rows.i0 + s * t, j = p.cols.i0 + s * u;
        return w[oc / g.C][((o * g.C + oc % g.C) * g.kh + i) * g.kw + j];
      }, p.packed.data());
      largest = std::max(largest, C * p.rows.size * p.cols.size);
      phases.push_back(std::move(p));
    }
  const int threads = image_threads(count, 2.0 * count * C * g.O * g.kh * g.kw * g.Ho * g.Wo);
  Scratch<T> phase_buf(threads, largest);
  std::vector<T*> chan_buf(static_cast<std::size_t>(threads * C));
  auto adjoint = [&](std::int64_t i) { return gy + i * g.out_image(); };
  for_padded_images<T>(adj, threads, count, adjoint, [&](int th, std::int64_t i, const T* xp) {
    T* res = phase_buf(th);
    T** chan = chan_buf.data() + th * C;
    for (std::int64_t f = 0; f < s * s; ++f) {
      const Phase& p = phases[static_cast<std::size_t>(f)];
      const std::int64_t ph = f / s, pw = f % s, Hp = p.rows.size, Wp = p.cols.size;
      if (Hp == 0 || Wp == 0) continue;
      const bool empty = p.offset.empty();  // no tap meets the adjoint: the phase is zero
      if (!empty) {
        for (std::int64_t c = 0; c < C; ++c) chan[c] = res + c * Hp * Wp;
        const Sweep sw{p.offset.data(), static_cast<std::int64_t>(p.offset.size()), C, Hp, Wp, adj.Wq, Wp};
        with_packet<T>(Wp, [&](auto packet) {
          sweep<T, typename decltype(packet)::type>(sw, xp, p.packed.data(), chan, false);
        });
      }
      if (empty && accumulate) continue;
      for (std::int64_t c = 0; c < C; ++c) {  // to every s-th pixel of x̄, from row ph, column pw
        const T* from = res + c * Hp * Wp;
        T* to = out[c / g.C] + i * g.in_image() + (c % g.C) * g.H * g.W + ph * g.W + pw;
        for (std::int64_t a = 0; a < Hp; ++a, to += s * g.W, from += Wp)
          for (std::int64_t b = 0; b < Wp; ++b) {
            const T v = empty ? T(0) : from[b];
            to[s * b] = accumulate ? to[s * b] + v : v;
          }
      }
    }
  });
}

// ---- backward_weight ---------------------------------------------------------------------------
// W̄[o][c][i][j] (+)= Σ_images Σ_{oh,ow} ḡ[o][oh][ow] · xp[c][oh·s + i][ow·s + j]. Per thread, images
// are taken a group at a time: their padded (phase-split) inputs xs [G][Cs][...] and adjoints gs
// [G][Os][Ho][Wr] (rows rounded up to whole packets, the extra lanes zero). A tile keeps OB × TB
// vector sums over every pixel of the group, then adds each sum's lanes to the thread's partial
// result; the group is sized so that this reduction is a small part of the tile's work.

struct WeightPass {
  explicit WeightPass(const Padded& in) : in(in) {}
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
  std::int64_t x_image() const { return Cs * x_channel(); }
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
  correlate_images<T>(
      k, count, [&](std::int64_t o, std::int64_t q) { return w[o / g.O][(o % g.O) * Q + q]; },
      [&](std::int64_t i) { return x + i * g.in_image(); },
      [&](std::int64_t i, std::int64_t o) { return out[o / g.O] + i * g.out_image() + (o % g.O) * g.pixels(); },
      accumulate);
}

template <class T>
void direct_conv2d_backward_input(const ConvGeometry& g, std::int64_t count, const T* gy, Banks<const T> w,
                                  Banks<T> out, bool accumulate) {
  // x̄[c][h][w] = Σ_{o,i,j} ḡ[o][h + pad − i][w + pad − j] W[o][c][i][j]: a correlation of ḡ padded
  // by k − 1 − pad with W'[c][o][i'][j'] = W[o][c][kh − 1 − i'][kw − 1 − j'], output H × W.
  GRADHPO_CHECK(direct_conv_applies(ConvKernel::backward_input, g),
                "direct conv2d_backward_input: at stride 1 needs padding < kernel, got padding " + std::to_string(g.pad) +
                    " for a " + std::to_string(g.kh) + "x" + std::to_string(g.kw) + " kernel");
  if (g.stride > 1) return strided_backward_input<T>(g, count, gy, w, out, accumulate);
  const Correlation k(Padded(g.O, g.Ho, g.Wo, g.kh - 1 - g.pad, g.kw - 1 - g.pad, 1), g.kh, g.kw, w.count * g.C);
  const std::int64_t taps = g.kh * g.kw;
  auto flipped = [&](std::int64_t oc, std::int64_t q) {
    const std::int64_t o = q / taps, i = q % taps / g.kw, j = q % g.kw;
    return w[oc / g.C][((o * g.C + oc % g.C) * g.kh + g.kh - 1 - i) * g.kw + g.kw - 1 - j];
  };
  correlate_images<T>(
      k, count, flipped, [&](std::int64_t i) { return gy + i * g.out_image(); },
      [&](std::int64_t i, std::int64_t c) { return out[c / g.C] + i * g.in_image() + (c % g.C) * g.H * g.W; },
      accumulate);
}

template <class T>
void direct_conv2d_backward_weight(const ConvGeometry& g, std::int64_t count, Banks<const T> gy, Banks<const T> x,
                                   Banks<T> out, bool accumulate) {
  GRADHPO_CHECK(gy.count == 1 || x.count == 1, "conv2d_backward_weight: one operand must have a single bank");
  const std::int64_t Mg = gy.count, Mx = x.count, M = std::max(Mg, Mx);
  // Image rows start on 64-byte boundaries, so that the taps of column 0 load without crossing
  // a cache line: on 8×8 images (64→64, 128 images) 7.5-7.7 ms against 6.6-6.8 at 1 thread,
  // 4.0 against 3.6 at 2 (no change on 16×16 and 32×32, nor for the forward and input-gradient
  // correlations, which keep their tighter rows).
  WeightPass s(Padded(g.C, g.H, g.W, g.pad, g.pad, g.stride, 64 / static_cast<std::int64_t>(sizeof(T))));
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
    const std::int64_t x_image = s.x_image(), g_image = s.Os * s.Ho * s.Wr;
    // With one adjoint bank and rows of whole packets, a group's adjoints are read in place.
    const bool stage_g = Mg > 1 || s.Wr != g.Wo;
    // Images per group: a tile reduces its OB × TB vector sums to numbers once per group, which
    // costs (27 sums, AVX-512) about as much as 17 of its steps, so a group takes ~256 packet
    // steps per tile (WRN's
    // filter gradients, 1 thread: 16→16 on 32×32 7.9 ms with 48 steps, 6.6-7.0 with 256; 32→32
    // on 16×16 7.6 against 6.4), as far as one bank's adjoints of the group fit in half the L2:
    // the tiles of each input channel read all of them again, while the one channel of images
    // they read stays in L1 (capped by the whole staged group instead, 32→32 on 16×16 took 6.9
    // ms against 6.3-6.4). (One bank's, not all banks': the group, and with it the order of
    // each sum, must not depend on the banks, so that a value has the same bits alone and
    // banked with tangents.)
    const std::int64_t steps_per_image = s.Ho * (s.Wr / V);
    const std::int64_t staged_bytes = static_cast<std::int64_t>(sizeof(T)) * g.O * s.Ho * s.Wr;
    const std::int64_t group = std::clamp<std::int64_t>(
        std::min((256 + steps_per_image - 1) / steps_per_image, l2_cache_bytes() / 2 / staged_bytes), 1, count);
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
