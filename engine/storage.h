// Storage: one aligned block of memory, shared by the tensors that view it.
//
// Blocks come from a process-wide caching pool keyed by exact size: when the last tensor on a
// block goes away the block returns to the pool, and the next request of the same size reuses
// it. A training step repeats the same shapes every time, so after the first step the tape and
// kernels allocate nothing from the heap (the arena property DESIGN.md asks of the tape).
#pragma once

#include <cstddef>
#include <memory>

namespace gradhpo {

class Storage {
 public:
  /// A block of at least `bytes` bytes, 64-byte aligned, from the pool. Contents are undefined.
  static std::shared_ptr<Storage> allocate(std::size_t bytes);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() { return data_; }
  const void* data() const { return data_; }
  std::size_t bytes() const { return bytes_; }

 private:
  Storage(void* data, std::size_t bytes) : data_(data), bytes_(bytes) {}
  void* data_;
  std::size_t bytes_;
};

/// Statistics of the caching pool, for tests and benchmarks.
struct PoolStats {
  std::size_t heap_allocations = 0;  // blocks obtained from the system since start
  std::size_t cached_bytes = 0;      // bytes held in the pool, free for reuse
  std::size_t live_bytes = 0;        // bytes in blocks currently owned by tensors
  std::size_t peak_live_bytes = 0;
};
PoolStats pool_stats();
/// Returns every cached (unused) block to the system.
void pool_release_cached();

}  // namespace gradhpo
