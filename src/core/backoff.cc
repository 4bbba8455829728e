#include "core/backoff.h"

#include <algorithm>

namespace rlog::core {

uint64_t Random::Next() {
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t Random::Between(uint64_t lo, uint64_t hi) {
  if (hi <= lo) return lo;
  return lo + Next() % (hi - lo + 1);
}

Tick Backoff::NextDelay(Random& random) {
  base_ = base_ == 0 ? initial_ : std::min(max_, base_ * 2);
  base_ = std::max<Tick>(base_, 1);
  return random.Between((base_ + 1) / 2, base_);
}

}  // namespace rlog::core
