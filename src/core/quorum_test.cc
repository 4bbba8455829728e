#include "core/quorum.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace rlog::core {
namespace {

// The naive reference: the highest x such that at least w positions are >= x.
LogId NaiveCommittedAt(const std::vector<LogId>& positions, size_t w) {
  LogId best = 0;
  for (LogId candidate : positions) {
    size_t holding = 0;
    for (LogId p : positions) holding += p >= candidate ? 1 : 0;
    if (holding >= w && candidate > best) best = candidate;
  }
  return best;
}

TEST(Quorum, MatchesNaiveReferenceForEveryWOverSeededRandomCases) {
  std::mt19937_64 rng(20261121);
  for (int trial = 0; trial < 20000; ++trial) {
    size_t n = 1 + rng() % 24;  // Crosses the 16-entry stack buffer.
    LogId range = 1 + rng() % (trial % 2 == 0 ? 5 : 1000000);
    std::vector<LogId> positions(n);
    for (LogId& p : positions) p = rng() % range;
    for (size_t w = 0; w <= n + 1; ++w) {
      LogId expected = (w == 0 || w > n) ? 0 : NaiveCommittedAt(positions, w);
      ASSERT_EQ(CommittedAt(positions, w), expected) << "trial " << trial << " w " << w;
    }
  }
}

TEST(Quorum, WOneIsTheMaximumAndWAllIsTheMinimum) {
  std::vector<LogId> positions = {7, 3, 9};
  EXPECT_EQ(CommittedAt(positions, 1), 9u);
  EXPECT_EQ(CommittedAt(positions, 2), 7u);
  EXPECT_EQ(CommittedAt(positions, 3), 3u);
  EXPECT_EQ(CommittedAt(positions, 4), 0u);
}

}  // namespace
}  // namespace rlog::core
