// Which rows of a batch one process of a data-parallel run holds (hpo/mpi/data_parallel.h):
// contiguous, in rank order, sizes differing by at most one — so that concatenating the shards
// of ranks 0, 1, ..., N-1 gives the batch back in its own order.
#pragma once

#include <cstdint>
#include <string>

#include "../engine/error.h"

namespace gradhpo::hpo {

struct Shard {
  std::int64_t begin = 0, end = 0;  ///< rows [begin, end) of the batch
  std::int64_t size() const { return end - begin; }
};

/// Shard `rank` of `count` of a batch of n rows: the first n % count shards hold one row more.
/// Throws Error for a count < 1, a rank outside [0, count), or fewer rows than shards (a shard
/// with no rows would have no loss to differentiate).
inline Shard shard_of(std::int64_t n, int rank, int count) {
  require(count >= 1 && rank >= 0 && rank < count,
          "data-parallel shard " + std::to_string(rank) + " of " + std::to_string(count) + ": no such shard");
  require(n >= count, "data-parallel training: a batch of " + std::to_string(n) + " examples cannot be split over " +
                          std::to_string(count) + " processes (each needs at least one)");
  const std::int64_t base = n / count, extra = n % count;
  const std::int64_t begin = rank * base + std::min<std::int64_t>(rank, extra);
  return {begin, begin + base + (rank < extra ? 1 : 0)};
}

}  // namespace gradhpo::hpo
