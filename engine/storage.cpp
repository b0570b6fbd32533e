#include "storage.h"

#include <cstdlib>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

namespace gradhpo {
namespace {

constexpr std::size_t kAlignment = 64;

struct Pool {
  std::mutex mutex;
  std::unordered_map<std::size_t, std::vector<void*>> free_blocks;  // exact size -> blocks
  PoolStats stats;
};

Pool& pool() {
  static Pool* p = new Pool;  // never destroyed: tensors may outlive static destruction order
  return *p;
}

std::size_t rounded(std::size_t bytes) {
  if (bytes == 0) bytes = kAlignment;
  return (bytes + kAlignment - 1) / kAlignment * kAlignment;
}

}  // namespace

std::shared_ptr<Storage> Storage::allocate(std::size_t bytes) {
  const std::size_t size = rounded(bytes);
  Pool& p = pool();
  void* block = nullptr;
  {
    std::lock_guard<std::mutex> lock(p.mutex);
    auto it = p.free_blocks.find(size);
    if (it != p.free_blocks.end() && !it->second.empty()) {
      block = it->second.back();
      it->second.pop_back();
      p.stats.cached_bytes -= size;
    } else {
      ++p.stats.heap_allocations;
    }
    p.stats.live_bytes += size;
    if (p.stats.live_bytes > p.stats.peak_live_bytes) p.stats.peak_live_bytes = p.stats.live_bytes;
  }
  if (block == nullptr) {
    block = std::aligned_alloc(kAlignment, size);
    if (block == nullptr) throw std::bad_alloc();
  }
  return std::shared_ptr<Storage>(new Storage(block, size));
}

Storage::~Storage() {
  Pool& p = pool();
  std::lock_guard<std::mutex> lock(p.mutex);
  p.free_blocks[bytes_].push_back(data_);
  p.stats.cached_bytes += bytes_;
  p.stats.live_bytes -= bytes_;
}

PoolStats pool_stats() {
  std::lock_guard<std::mutex> lock(pool().mutex);
  return pool().stats;
}

void pool_release_cached() {
  Pool& p = pool();
  std::lock_guard<std::mutex> lock(p.mutex);
  for (auto& [size, blocks] : p.free_blocks)
    for (void* b : blocks) std::free(b);
  p.free_blocks.clear();
  p.stats.cached_bytes = 0;
}

}  // namespace gradhpo
