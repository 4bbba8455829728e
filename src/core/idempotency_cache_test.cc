#include "core/idempotency_cache.h"

#include <gtest/gtest.h>

namespace rlog::core {
namespace {

TEST(IdempotencyCache, RetryFindsFirstId) {
  IdempotencyCache cache(10);
  cache.Insert("k", 5);
  cache.Insert("k", 9);  // A second insert of the same key keeps the first id.
  EXPECT_EQ(cache.Find("k"), std::optional<LogId>(5));
  EXPECT_EQ(cache.Find("other"), std::nullopt);
}

TEST(IdempotencyCache, ForgetsOldestBeyondCapacity) {
  IdempotencyCache cache(3);
  for (LogId id = 1; id <= 5; ++id) cache.Insert("k" + std::to_string(id), id);
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_EQ(cache.Find("k1"), std::nullopt);
  EXPECT_EQ(cache.Find("k2"), std::nullopt);
  EXPECT_EQ(cache.Find("k5"), std::optional<LogId>(5));
}

TEST(IdempotencyCache, ZeroCapacityDisables) {
  IdempotencyCache cache(0);
  cache.Insert("k", 1);
  EXPECT_EQ(cache.Find("k"), std::nullopt);
}

}  // namespace
}  // namespace rlog::core
