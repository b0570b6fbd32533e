#include "storage.h"

#include "backend.h"

#include <cstdlib>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

namespace gradhpo {

constexpr std::size_t kAlignment = 64;

// Blocks up to 64 MiB are the per-step tensors of a training step: always cached. Larger ones
// are either one-off (a whole dataset) or the per-step tensors of a wide pass (forward mode's
// K-direction activations: LeNet-5's first convolution with K = 30 at batch 128 is 72 MiB). The
// latter repeat every step, and handing them back to the system means a page fault and a page
// clear for every 4 KiB each time (15% of forward mode's time at K = 30, measured with perf), so
// large blocks are cached too, while the cached large blocks stay under 1 GiB in all: a block
// freed when that is full evicts cached large blocks of other sizes (the newest free is the one
// the next step asks for), so a dataset freed earlier does not pin the room.
constexpr std::size_t kLargeBlock = std::size_t{64} << 20;
constexpr std::size_t kLargeCacheLimit = std::size_t{1} << 30;

const char* device_name(Device d) { return d == Device::cpu ? "cpu" : "cuda"; }

constexpr int kDevices = 2;

struct StoragePool {
  std::mutex mutex;
  // Per device: exact size -> idle storages. Device blocks are never mixed with host blocks.
  std::unordered_map<std::size_t, std::vector<Storage*>> free[kDevices];
  PoolStats stats[kDevices];
  std::size_t large_cached[kDevices] = {};  // cached bytes in blocks over kLargeBlock (see recycle)

  static StoragePool& get() {
    static StoragePool* p = new StoragePool;  // never destroyed: tensors may outlive statics
    return *p;
  }
  static Storage* make(void* data, std::size_t bytes, Device device) { return new Storage(data, bytes, device); }
  static void* obtain(std::size_t bytes, Device device) {
    if (device != Device::cpu) return device_backend(device, "Tensor::empty").allocate(bytes);
    void* block = std::aligned_alloc(kAlignment, bytes);
    if (block == nullptr) throw std::bad_alloc();
    return block;
  }
  static void destroy(Storage* s) {
    if (s->device_ == Device::cpu) std::free(s->data_);
    else device_backend(s->device_, "Storage").deallocate(s->data_);
    delete s;
  }
};

namespace {
std::size_t rounded(std::size_t bytes) {
  if (bytes == 0) bytes = kAlignment;
  return (bytes + kAlignment - 1) / kAlignment * kAlignment;
}
}  // namespace

StorageRef Storage::allocate(std::size_t bytes, Device device) {
  const std::size_t size = rounded(bytes);
  const int d = static_cast<int>(device);
  StoragePool& p = StoragePool::get();
  Storage* s = nullptr;
  {
    std::lock_guard<std::mutex> lock(p.mutex);
    auto it = p.free[d].find(size);
    if (it != p.free[d].end() && !it->second.empty()) {
      s = it->second.back();
      it->second.pop_back();
      p.stats[d].cached_bytes -= size;
      if (size > kLargeBlock) p.large_cached[d] -= size;
    } else {
      ++p.stats[d].heap_allocations;
    }
    p.stats[d].live_bytes += size;
    if (p.stats[d].live_bytes > p.stats[d].peak_live_bytes) p.stats[d].peak_live_bytes = p.stats[d].live_bytes;
  }
  if (s == nullptr) {
    void* block = nullptr;
    try {
      block = StoragePool::obtain(size, device);
    } catch (...) {
      std::lock_guard<std::mutex> lock(p.mutex);
      p.stats[d].live_bytes -= size;
      throw;
    }
    s = StoragePool::make(block, size, device);
  }
  return StorageRef(s);
}

void Storage::recycle(Storage* s) {
  StoragePool& p = StoragePool::get();
  const int d = static_cast<int>(s->device_);
  std::vector<Storage*> evicted;  // destroyed outside the lock
  {
    std::lock_guard<std::mutex> lock(p.mutex);
    p.stats[d].live_bytes -= s->bytes_;
    if (s->bytes_ > kLargeBlock) {
      if (s->bytes_ > kLargeCacheLimit) {
        evicted.push_back(s);
        s = nullptr;
      } else {
        // The block just freed is the one most likely to be asked for again (the next step's):
        // make room for it by evicting cached large blocks of other sizes.
        for (auto it = p.free[d].begin(); it != p.free[d].end() && p.large_cached[d] + s->bytes_ > kLargeCacheLimit;) {
          if (it->first > kLargeBlock && it->first != s->bytes_) {
            for (Storage* old : it->second) evicted.push_back(old);
            p.large_cached[d] -= it->first * it->second.size();
            p.stats[d].cached_bytes -= it->first * it->second.size();
            it = p.free[d].erase(it);
          } else {
            ++it;
          }
        }
        if (p.large_cached[d] + s->bytes_ > kLargeCacheLimit) {  // only same-size blocks are cached
          evicted.push_back(s);
          s = nullptr;
        } else {
          p.large_cached[d] += s->bytes_;
        }
      }
    }
    if (s) {
      p.free[d][s->bytes_].push_back(s);
      p.stats[d].cached_bytes += s->bytes_;
    }
  }
  for (Storage* e : evicted) StoragePool::destroy(e);
}

PoolStats pool_stats(Device device) {
  StoragePool& p = StoragePool::get();
  std::lock_guard<std::mutex> lock(p.mutex);
  return p.stats[static_cast<int>(device)];
}

void pool_release_cached() {
  StoragePool& p = StoragePool::get();
  std::lock_guard<std::mutex> lock(p.mutex);
  for (int d = 0; d < kDevices; ++d) {
    for (auto& [size, list] : p.free[d])
      for (Storage* s : list) StoragePool::destroy(s);
    p.free[d].clear();
    p.stats[d].cached_bytes = 0;
    p.large_cached[d] = 0;
  }
}

void pool_reset_peak(Device device) {
  StoragePool& p = StoragePool::get();
  std::lock_guard<std::mutex> lock(p.mutex);
  PoolStats& stats = p.stats[static_cast<int>(device)];
  stats.peak_live_bytes = stats.live_bytes;
}

}  // namespace gradhpo
