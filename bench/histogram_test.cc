// LatencyHistogram against a naive reference: sort every sample, take the nearest rank.
#include "histogram.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

namespace rlog::bench {
namespace {

constexpr double kQuantiles[] = {0.0, 0.001, 0.1, 0.5, 0.9, 0.99, 0.999, 0.9999, 1.0};

uint64_t reference_percentile(const std::vector<uint64_t>& sorted, double q) {
  return sorted[nearest_rank(q, sorted.size()) - 1];
}

// Latency-like samples: log-uniform between 1 ns and ~100 s (beyond the 60 s range on purpose),
// with bursts of identical values, as a loaded server produces.
std::vector<uint64_t> random_samples(std::mt19937_64& rng) {
  std::uniform_int_distribution<size_t> size_dist(1, 5000);
  std::uniform_real_distribution<double> log_dist(0.0, std::log(1e11));
  std::bernoulli_distribution repeat(0.2);
  std::vector<uint64_t> samples(size_dist(rng));
  for (size_t i = 0; i < samples.size(); ++i) {
    samples[i] =
        (i > 0 && repeat(rng)) ? samples[i - 1] : static_cast<uint64_t>(std::exp(log_dist(rng)));
  }
  return samples;
}

void expect_matches_reference(std::vector<uint64_t> samples, uint64_t seed) {
  LatencyHistogram h;
  for (uint64_t v : samples) h.record(v);
  std::sort(samples.begin(), samples.end());
  ASSERT_EQ(h.count(), samples.size());
  EXPECT_EQ(h.min(), samples.front());
  EXPECT_EQ(h.max(), samples.back());
  for (double q : kQuantiles) {
    const uint64_t want = reference_percentile(samples, q);
    const uint64_t got = h.percentile(q);
    if (want > LatencyHistogram::kDefaultMaxTrackable) {
      // Beyond the range only the exact maximum is promised.
      if (q == 1.0) {
        EXPECT_EQ(got, want);
      }
      continue;
    }
    EXPECT_GE(got, want) << "seed " << seed << " q " << q;
    EXPECT_LE(got - want, want / 128) << "seed " << seed << " q " << q;
  }
}

TEST(LatencyHistogramTest, PercentilesWithinOnePercentOfSortedReference) {
  for (uint64_t seed = 1; seed <= 300; ++seed) {
    std::mt19937_64 rng(seed);
    expect_matches_reference(random_samples(rng), seed);
  }
}

TEST(LatencyHistogramTest, NarrowRealisticLatenciesMatchReference) {
  for (uint64_t seed = 1; seed <= 100; ++seed) {
    std::mt19937_64 rng(seed);
    std::lognormal_distribution<double> dist(std::log(500'000.0), 0.6);  // ~0.5 ms
    std::vector<uint64_t> samples(20'000);
    for (auto& v : samples) v = static_cast<uint64_t>(dist(rng));
    expect_matches_reference(samples, seed);
  }
}

TEST(LatencyHistogramTest, MergeEqualsRecordingIntoOne) {
  std::mt19937_64 rng(42);
  LatencyHistogram all;
  LatencyHistogram parts[3];
  std::vector<uint64_t> samples = random_samples(rng);
  for (size_t i = 0; i < samples.size(); ++i) {
    all.record(samples[i]);
    parts[i % 3].record(samples[i]);
  }
  LatencyHistogram merged;
  for (const auto& p : parts) merged.merge(p);
  EXPECT_EQ(merged.count(), all.count());
  EXPECT_EQ(merged.min(), all.min());
  EXPECT_EQ(merged.max(), all.max());
  for (double q : kQuantiles) EXPECT_EQ(merged.percentile(q), all.percentile(q)) << q;
}

TEST(LatencyHistogramTest, BucketsTileTheRangeWithoutGaps) {
  const size_t last = LatencyHistogram::bucket_index(LatencyHistogram::kDefaultMaxTrackable);
  for (size_t i = 0; i <= last; ++i) {
    const uint64_t lo = LatencyHistogram::bucket_lowest(i);
    const uint64_t hi = LatencyHistogram::bucket_highest(i);
    ASSERT_EQ(LatencyHistogram::bucket_index(lo), i);
    ASSERT_EQ(LatencyHistogram::bucket_index(hi), i);
    ASSERT_EQ(LatencyHistogram::bucket_lowest(i + 1), hi + 1);
    ASSERT_LE(hi - lo, lo / 128) << i;
  }
}

TEST(LatencyHistogramTest, SmallValuesAreExact) {
  LatencyHistogram h;
  for (uint64_t v = 0; v < 128; ++v) h.record(v);
  EXPECT_EQ(h.percentile(0.5), 63u);
  EXPECT_EQ(h.percentile(1.0), 127u);
}

TEST(LatencyHistogramTest, EmptyReportsZero) {
  LatencyHistogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.percentile(0.99), 0u);
  EXPECT_EQ(h.min(), 0u);
  EXPECT_EQ(h.max(), 0u);
}

}  // namespace
}  // namespace rlog::bench
