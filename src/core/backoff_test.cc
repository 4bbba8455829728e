#include "core/backoff.h"

#include <gtest/gtest.h>

#include <set>

namespace rlog::core {
namespace {

TEST(Backoff, GrowsExponentiallyWithinJitterAndIsCapped) {
  Random random(42);
  Backoff backoff(10, 160);
  Tick base = 10;
  for (int attempt = 0; attempt < 20; ++attempt) {
    Tick delay = backoff.NextDelay(random);
    EXPECT_GE(delay, (base + 1) / 2) << attempt;
    EXPECT_LE(delay, base) << attempt;
    base = std::min<Tick>(base * 2, 160);
  }
}

TEST(Backoff, ResetStartsOver) {
  Random random(1);
  Backoff backoff(8, 1000);
  for (int i = 0; i < 6; ++i) (void)backoff.NextDelay(random);
  backoff.Reset();
  EXPECT_LE(backoff.NextDelay(random), 8u);
}

TEST(Backoff, JitterSpreadsRetries) {
  Random random(7);
  std::set<Tick> seen;
  for (int i = 0; i < 50; ++i) {
    Backoff backoff(100, 100);
    seen.insert(backoff.NextDelay(random));
  }
  EXPECT_GT(seen.size(), 10u);
}

TEST(Random, SameSeedSameSequence) {
  Random a(99), b(99);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(a.Next(), b.Next());
}

}  // namespace
}  // namespace rlog::core
