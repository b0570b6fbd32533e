// Storage: one aligned block of memory, shared by the tensors that view it.
//
// Blocks come from a process-wide caching pool keyed by exact size: when the last tensor on a
// block goes away the block (with its Storage header) returns to the pool, and the next request
// of the same size reuses it. A training step repeats the same shapes every time, so after the
// first step the tape and kernels make no heap allocation for tensors at all — the arena
// property DESIGN.md asks of the tape. Blocks over 64 MiB are cached only while the cached ones
// stay under 1 GiB in all (storage.cpp says why). The reference count is intrusive (kept in the
// Storage, like c10::intrusive_ptr) so that sharing a tensor allocates no control block either.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace gradhpo {

/// Where storage lives. cpu blocks are host memory; a device's blocks come from its backend
/// (engine/backend.h) and are cached by the same pool, each device in its own free lists.
enum class Device : std::uint8_t { cpu, cuda };
const char* device_name(Device d);

class StorageRef;

class Storage {
 public:
  /// A block of at least `bytes` bytes, 64-byte aligned, from the pool. Contents are undefined.
  static StorageRef allocate(std::size_t bytes, Device device = Device::cpu);
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() { return data_; }
  const void* data() const { return data_; }
  std::size_t bytes() const { return bytes_; }
  Device device() const { return device_; }

 private:
  friend class StorageRef;
  friend struct StoragePool;
  Storage(void* data, std::size_t bytes, Device device) : data_(data), bytes_(bytes), device_(device) {}
  ~Storage() = default;
  static void recycle(Storage* s);  // back to the pool once the last reference is gone

  void* data_;
  std::size_t bytes_;
  Device device_;
  std::atomic<long> refs_{0};
};

/// A counted reference to a Storage (what a Tensor holds).
class StorageRef {
 public:
  StorageRef() = default;
  explicit StorageRef(Storage* s) : s_(s) { retain(); }
  StorageRef(const StorageRef& o) : s_(o.s_) { retain(); }
  StorageRef(StorageRef&& o) noexcept : s_(o.s_) { o.s_ = nullptr; }
  StorageRef& operator=(StorageRef o) noexcept {
    Storage* t = s_;
    s_ = o.s_;
    o.s_ = t;
    return *this;
  }
  ~StorageRef() { release(); }

  Storage* operator->() const { return s_; }
  Storage* get() const { return s_; }
  explicit operator bool() const { return s_ != nullptr; }
  bool operator==(const StorageRef& o) const { return s_ == o.s_; }
  bool operator==(std::nullptr_t) const { return s_ == nullptr; }
  long use_count() const { return s_ ? s_->refs_.load(std::memory_order_relaxed) : 0; }

 private:
  void retain() {
    if (s_) s_->refs_.fetch_add(1, std::memory_order_relaxed);
  }
  void release() {
    if (s_ && s_->refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) Storage::recycle(s_);
    s_ = nullptr;
  }
  Storage* s_ = nullptr;
};

/// Statistics of the caching pool (of one device's blocks), for tests and benchmarks.
struct PoolStats {
  std::size_t heap_allocations = 0;  // blocks obtained from the system (or device) since start
  std::size_t cached_bytes = 0;      // bytes held in the pool, free for reuse
  std::size_t live_bytes = 0;        // bytes in blocks currently owned by tensors
  std::size_t peak_live_bytes = 0;
};
PoolStats pool_stats(Device device = Device::cpu);
/// Returns every cached (unused) block, of every device, to the system.
void pool_release_cached();
/// Restarts peak_live_bytes from the current live bytes (to measure one phase's peak).
void pool_reset_peak(Device device = Device::cpu);

}  // namespace gradhpo
