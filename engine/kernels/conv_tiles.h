// The register tiles of the direct convolution kernels (conv_direct.cpp): tiles of SIMD packets
// (packet.h) sized to the machine's registers, the sweep of OB-channel × RB-row tiles that does the
// multiply-adds of a correlation (or of any product whose operand rows are packets), and the
// padded, phase-split input images it reads. Internal to the kernels.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>

#include "image_loop.h"
#include "packet.h"

namespace gradhpo::kernels::conv_tiles {

using image_loop::copy_row;

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

using image_loop::Padded;

/// Elements read past the end of a padded image by a tile whose last vector holds fewer than
/// its lanes' worth of pixels; the scratch buffers keep this many zeros after the image.
template <class T> constexpr std::int64_t kSlack = kLanes<FullPacket<T>>;

// ---- the sweep ------------------------------------------------------------------------------------
// out[o][r][p] (+)= Σ_q w[o][q] · src[offset[q] + r·in_row + p] for O channels, `rows` rows of
// `width` pixels: a correlation (q a (channel, tap) pair, src a padded image) or a matrix
// product (q an input channel, the rows packets of columns). Register tiles of OB channels ×
// RB rows × one packet of pixels, each a flat loop over the steps q.

struct Sweep {
  const std::int64_t* offset;  // of each step, into src
  std::int64_t steps;
  std::int64_t O, rows, width;
  std::int64_t in_row, out_row;  // from one row to the next, in src and in each output channel
};

/// Weights packed for the tiles: the block of `ob` channels starting at o0 (ob as sweep takes
/// them) is [steps][ob] at offset o0·steps, so that one step's ob weights are adjacent.
/// weight(o, q) is channel o's weight of step q.
template <class T, class Weight> void pack_blocks(std::int64_t O, std::int64_t steps, Weight&& weight, T* packed) {
  for (std::int64_t o0 = 0; o0 < O;) {
    const int ob = block_of(kOutBlock, O - o0);
    for (std::int64_t q = 0; q < steps; ++q)
      for (int b = 0; b < ob; ++b) packed[o0 * steps + q * ob + b] = weight(o0 + b, q);
    o0 += ob;
  }
}

/// One register tile: src and out[b] (channel b) at the tile's first row and pixel; n ≤ lanes
/// pixels of each row are stored. The loop is flat over precomputed offsets: with nested loops
/// over channels and taps, GCC stored and reloaded every sum at each pass of the inner ones.
template <class T, class P, int OB, int RB>
void sweep_tile(const Sweep& s, const T* src, const T* w, T* const* out, std::int64_t n, bool accumulate) {
  P acc[OB][RB];
  for (int b = 0; b < OB; ++b)
    for (int r = 0; r < RB; ++r)
      acc[b][r] = accumulate ? load_some<T, P>(out[b] + r * s.out_row, n) : ei::pset1<P>(T(0));
  for (std::int64_t q = 0; q < s.steps; ++q, w += OB) {
    const T* at = src + s.offset[q];
    P x[RB];
    for (int r = 0; r < RB; ++r) x[r] = ei::ploadu<P>(at + r * s.in_row);
    for (int b = 0; b < OB; ++b) {
      const P weight = ei::pset1<P>(w[b]);
      for (int r = 0; r < RB; ++r) acc[b][r] = ei::pmadd(weight, x[r], acc[b][r]);
    }
  }
  for (int b = 0; b < OB; ++b)
    for (int r = 0; r < RB; ++r) store_some(out[b] + r * s.out_row, acc[b][r], n);
}

/// The whole sweep: packed as pack_blocks lays it out, chan[o] the start of output channel o.
template <class T, class P> void sweep(const Sweep& s, const T* src, const T* packed, T* const* chan, bool accumulate) {
  constexpr std::int64_t V = kLanes<P>;
  for (std::int64_t o0 = 0; o0 < s.O;) {
    const int ob = block_of(kOutBlock, s.O - o0);
    with_constant<kOutBlock, 4, 2, 1>(ob, [&](auto OB) {
      T* out[OB.value];
      for (std::int64_t r0 = 0; r0 < s.rows;) {
        const int rb = static_cast<int>(std::min<std::int64_t>(kRowBlock, s.rows - r0));
        with_constant<kRowBlock, 2, 1>(rb, [&](auto RB) {
          for (std::int64_t p0 = 0; p0 < s.width; p0 += V) {
            for (int b = 0; b < OB.value; ++b) out[b] = chan[o0 + b] + r0 * s.out_row + p0;
            sweep_tile<T, P, OB.value, RB.value>(s, src + r0 * s.in_row + p0, packed + o0 * s.steps, out,
                                                 std::min(V, s.width - p0), accumulate);
          }
        });
        r0 += rb;
      }
    });
    o0 += ob;
  }
}

}  // namespace gradhpo::kernels::conv_tiles
