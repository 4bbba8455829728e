// Capped exponential backoff with jitter, in ticks, from a seeded generator (deterministic in
// tests). Each failure doubles the base delay up to the cap; the delay handed out is drawn from
// [base/2, base] so that many masters (or many sentinels of one master) do not retry in step.
#pragma once

#include <cstdint>

#include "core/types.h"

namespace rlog::core {

// SplitMix64: tiny, fast, good enough to spread retries; seeded by the shell.
class Random {
 public:
  explicit Random(uint64_t seed) : state_(seed) {}
  uint64_t Next();
  // Uniform in [lo, hi] (inclusive); lo <= hi.
  uint64_t Between(uint64_t lo, uint64_t hi);

 private:
  uint64_t state_;
};

class Backoff {
 public:
  Backoff(Tick initial, Tick max) : initial_(initial < 1 ? 1 : initial), max_(max), base_(0) {}

  // The delay before the next attempt; grows after every call until Reset().
  Tick NextDelay(Random& random);
  void Reset() { base_ = 0; }

 private:
  Tick initial_;
  Tick max_;
  Tick base_;  // 0 before the first failure.
};

}  // namespace rlog::core
