#include "core/idempotency_cache.h"

#include <gtest/gtest.h>

#include <string_view>
#include <utility>
#include <vector>

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

TEST(IdempotencyCache, RestoreTakesEachKeysLastUseAndForgetsInLogOrder) {
  IdempotencyCache cache(3);
  cache.Insert("stale", 1);
  // "k" was used for id 10, forgotten, and used again for id 20 (a master keeping fewer keys).
  const std::vector<std::pair<std::string_view, LogId>> log = {
      {"k", 10}, {"a", 11}, {"k", 20}, {"b", 21}};
  cache.Restore(log);
  EXPECT_EQ(cache.Find("stale"), std::nullopt) << "what the cache held before is gone";
  EXPECT_EQ(cache.Find("k"), std::optional<LogId>(20));
  EXPECT_EQ(cache.Find("a"), std::optional<LogId>(11));
  EXPECT_EQ(cache.size(), 3u);
  cache.Insert("c", 22);  // The oldest of the log's keys goes first: "a".
  EXPECT_EQ(cache.Find("a"), std::nullopt);
  EXPECT_EQ(cache.Find("k"), std::optional<LogId>(20));
  cache.Insert("d", 23);
  EXPECT_EQ(cache.Find("k"), std::nullopt);
  EXPECT_EQ(cache.Find("b"), std::optional<LogId>(21));
}

TEST(IdempotencyCache, ZeroCapacityDisables) {
  IdempotencyCache cache(0);
  cache.Insert("k", 1);
  EXPECT_EQ(cache.Find("k"), std::nullopt);
}

}  // namespace
}  // namespace rlog::core
