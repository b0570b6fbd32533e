// Eigen's SIMD packets as the hand-vectorized kernels use them (conv_tiles.h, batch norm's row
// sums): the widest packet of the instruction set this is compiled for, its half, partial loads
// and stores, and the sum of a packet's lanes in a fixed order. Internal to the engine.
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <cstring>

// Eigen's packets are vector types with alignment attributes (__m512 and the like), which GCC
// warns are dropped when they are template arguments; Eigen silences the same warning inside.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wignored-attributes"
#endif

namespace gradhpo::kernels {

namespace ei = Eigen::internal;

template <class T> using FullPacket = typename ei::packet_traits<T>::type;
template <class T> using HalfPacket = typename ei::unpacket_traits<FullPacket<T>>::half;
template <class P> constexpr std::int64_t kLanes = ei::unpacket_traits<P>::size;

/// The first n ≤ lanes elements at p, the other lanes zero.
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
/// Stores the first n ≤ lanes lanes of v at p.
template <class T, class P> void store_some(T* p, const P& v, std::int64_t n) {
  if (n == kLanes<P>) return ei::pstoreu(p, v);
  alignas(64) T buf[kLanes<P>];
  ei::pstoreu(buf, v);
  std::memcpy(p, buf, static_cast<std::size_t>(n) * sizeof(T));
}

}  // namespace gradhpo::kernels
