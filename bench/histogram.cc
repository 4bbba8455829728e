#include "histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace rlog::bench {
namespace {
constexpr uint64_t kSubCount = uint64_t{1} << LatencyHistogram::kSubBits;
}  // namespace

LatencyHistogram::LatencyHistogram(uint64_t max_trackable)
    : max_trackable_(max_trackable), counts_(bucket_index(max_trackable) + 1, 0) {}

size_t LatencyHistogram::bucket_index(uint64_t value) {
  if (value < kSubCount) return static_cast<size_t>(value);
  const int exponent = static_cast<int>(std::bit_width(value)) - 1;  // >= kSubBits
  const int shift = exponent - kSubBits;
  const uint64_t mantissa = (value >> shift) - kSubCount;  // in [0, kSubCount)
  return static_cast<size_t>((static_cast<uint64_t>(shift + 1) << kSubBits) + mantissa);
}

uint64_t LatencyHistogram::bucket_lowest(size_t index) {
  if (index < kSubCount) return index;
  const uint64_t block = index >> kSubBits;  // >= 1
  const uint64_t mantissa = index & (kSubCount - 1);
  return (kSubCount + mantissa) << (block - 1);
}

uint64_t LatencyHistogram::bucket_highest(size_t index) { return bucket_lowest(index + 1) - 1; }

void LatencyHistogram::record(uint64_t value) {
  ++counts_[bucket_index(std::min(value, max_trackable_))];
  ++count_;
  min_ = std::min(min_, value);
  max_ = std::max(max_, value);
}

void LatencyHistogram::merge(const LatencyHistogram& other) {
  const size_t n = std::min(counts_.size(), other.counts_.size());
  for (size_t i = 0; i < n; ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
}

uint64_t nearest_rank(double q, uint64_t n) {
  if (n == 0) return 0;
  const double rank = std::ceil(std::clamp(q, 0.0, 1.0) * static_cast<double>(n));
  return std::clamp<uint64_t>(static_cast<uint64_t>(rank), 1, n);
}

uint64_t LatencyHistogram::percentile(double q) const {
  if (count_ == 0) return 0;
  const uint64_t rank = nearest_rank(q, count_);
  if (rank == count_) return max_;  // exact, even beyond the trackable range
  uint64_t seen = 0;
  for (size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::clamp(bucket_highest(i), min_, max_);
  }
  return max_;
}

}  // namespace rlog::bench
