#include "storage.h"

#include <cstdlib>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

namespace gradhpo {

constexpr std::size_t kAlignment = 64;

struct StoragePool {
  std::mutex mutex;
  std::unordered_map<std::size_t, std::vector<Storage*>> free;  // exact size -> idle storages
  PoolStats stats;

  static StoragePool& get() {
    static StoragePool* p = new StoragePool;  // never destroyed: tensors may outlive statics
    return *p;
  }
  static Storage* make(void* data, std::size_t bytes) { return new Storage(data, bytes); }
  static void destroy(Storage* s) {
    std::free(s->data_);
    delete s;
  }
};

namespace {
std::size_t rounded(std::size_t bytes) {
  if (bytes == 0) bytes = kAlignment;
  return (bytes + kAlignment - 1) / kAlignment * kAlignment;
}
}  // namespace

StorageRef Storage::allocate(std::size_t bytes) {
  const std::size_t size = rounded(bytes);
  StoragePool& p = StoragePool::get();
  Storage* s = nullptr;
  {
    std::lock_guard<std::mutex> lock(p.mutex);
    auto it = p.free.find(size);
    if (it != p.free.end() && !it->second.empty()) {
      s = it->second.back();
      it->second.pop_back();
      p.stats.cached_bytes -= size;
    } else {
      ++p.stats.heap_allocations;
    }
    p.stats.live_bytes += size;
    if (p.stats.live_bytes > p.stats.peak_live_bytes) p.stats.peak_live_bytes = p.stats.live_bytes;
  }
  if (s == nullptr) {
    void* block = std::aligned_alloc(kAlignment, size);
    if (block == nullptr) throw std::bad_alloc();
    s = StoragePool::make(block, size);
  }
  return StorageRef(s);
}

// Blocks this large are one-off (a whole dataset, say), not the per-step tensors the pool is for:
// they go back to the system at once instead of staying cached.
constexpr std::size_t kLargestCachedBlock = std::size_t{64} << 20;

void Storage::recycle(Storage* s) {
  StoragePool& p = StoragePool::get();
  if (s->bytes_ > kLargestCachedBlock) {
    {
      std::lock_guard<std::mutex> lock(p.mutex);
      p.stats.live_bytes -= s->bytes_;
    }
    StoragePool::destroy(s);
    return;
  }
  std::lock_guard<std::mutex> lock(p.mutex);
  p.free[s->bytes_].push_back(s);
  p.stats.cached_bytes += s->bytes_;
  p.stats.live_bytes -= s->bytes_;
}

PoolStats pool_stats() {
  StoragePool& p = StoragePool::get();
  std::lock_guard<std::mutex> lock(p.mutex);
  return p.stats;
}

void pool_release_cached() {
  StoragePool& p = StoragePool::get();
  std::lock_guard<std::mutex> lock(p.mutex);
  for (auto& [size, list] : p.free)
    for (Storage* s : list) StoragePool::destroy(s);
  p.free.clear();
  p.stats.cached_bytes = 0;
}

void pool_reset_peak() {
  StoragePool& p = StoragePool::get();
  std::lock_guard<std::mutex> lock(p.mutex);
  p.stats.peak_live_bytes = p.stats.live_bytes;
}

}  // namespace gradhpo
