#include "work_count.h"

#include <atomic>

namespace gradhpo {

namespace {
std::atomic<std::int64_t> g_multiply_adds{0};
std::atomic<std::int64_t> g_elementwise{0};
}  // namespace

WorkCount work_count() {
  return {g_multiply_adds.load(std::memory_order_relaxed), g_elementwise.load(std::memory_order_relaxed)};
}

void count_multiply_adds(std::int64_t n) { g_multiply_adds.fetch_add(n, std::memory_order_relaxed); }
void count_elementwise(std::int64_t n) { g_elementwise.fetch_add(n, std::memory_order_relaxed); }

}  // namespace gradhpo
