// LatencyHistogram: a log-linear (HDR-style) histogram of non-negative integer samples.
//
// rlog-bench records latencies in nanoseconds. Values below 2^kSubBits are kept exactly; above
// that, every power-of-two range [2^e, 2^(e+1)) is split into 2^kSubBits equal buckets, so a
// bucket is never wider than 1/128 (0.8%) of the values it holds. Samples above the trackable
// maximum (60 s by default) fall into the last bucket; min() and max() are always exact.
//
// Not thread-safe: keep one per thread and merge() them once the threads have stopped.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace rlog::bench {

class LatencyHistogram {
 public:
  static constexpr int kSubBits = 7;
  static constexpr uint64_t kDefaultMaxTrackable = 60'000'000'000ULL;  // 60 s in ns

  explicit LatencyHistogram(uint64_t max_trackable = kDefaultMaxTrackable);

  void record(uint64_t value);
  // Precondition: other was built with the same max_trackable.
  void merge(const LatencyHistogram& other);

  uint64_t count() const { return count_; }
  uint64_t min() const { return count_ == 0 ? 0 : min_; }
  uint64_t max() const { return max_; }

  // Nearest-rank quantile, q in [0, 1]: the sample of rank max(1, ceil(q * count)) is reported
  // as the highest value of its bucket, clamped to [min(), max()]. So the answer is never below
  // the true sample and exceeds it by at most 1/128 of it. Samples beyond the trackable range
  // report as its end, except the largest, which is exact. 0 when empty.
  uint64_t percentile(double q) const;

  // The bucket layout, public so that tests can check it.
  static size_t bucket_index(uint64_t value);
  static uint64_t bucket_lowest(size_t index);
  static uint64_t bucket_highest(size_t index);

 private:
  uint64_t max_trackable_;
  std::vector<uint64_t> counts_;  // counts_[bucket_index(v)] for every recorded v
  uint64_t count_ = 0;
  uint64_t min_ = std::numeric_limits<uint64_t>::max();
  uint64_t max_ = 0;
};

// The nearest rank (1-based) of quantile q among n samples; shared with the tests' reference.
uint64_t nearest_rank(double q, uint64_t n);

}  // namespace rlog::bench
