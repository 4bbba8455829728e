#include "storage/memory_log.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

namespace rlog::storage {
namespace {

Entry E(LogId id) { return Entry{id, 1000 + static_cast<int64_t>(id), "m" + std::to_string(id)}; }

TEST(MemoryLog, AppendNextGivesDenseIds) {
  MemoryLog log;
  EXPECT_EQ(log.AppendNext(1, "a"), 1u);
  EXPECT_EQ(log.AppendNext(2, "b"), 2u);
  EXPECT_EQ(log.last_id(), 2u);
  auto all = log.Read(1, 10, 1 << 20);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[1].message, "b");
}

TEST(MemoryLog, GapIsNeverExposedUntilFilled) {
  MemoryLog log;
  EXPECT_EQ(log.Apply({E(1), E(2), E(4)}), 2u);
  EXPECT_EQ(log.Read(1, 10, 1 << 20).size(), 2u);
  EXPECT_EQ(log.Read(3, 10, 1 << 20).size(), 0u);
  EXPECT_EQ(log.Apply({E(3)}), 4u);
  EXPECT_EQ(log.Read(1, 10, 1 << 20).back().id, 4u);
  EXPECT_EQ(log.held_back(), 0u);
}

TEST(MemoryLog, ResentEntriesAreIgnored) {
  MemoryLog log;
  log.Apply({E(1), E(2), E(3)});
  Entry changed = E(2);
  changed.message = "different";
  EXPECT_EQ(log.Apply({changed, E(3), E(4)}), 4u);
  EXPECT_EQ(log.Read(2, 1, 1 << 20)[0].message, "m2");
}

TEST(MemoryLog, AnyDeliveryOrderWithDuplicatesYieldsExactlyOnce) {
  std::mt19937_64 rng(5);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<Entry> stream;
    for (LogId id = 1; id <= 50; ++id) {
      stream.push_back(E(id));
      if (rng() % 4 == 0) stream.push_back(E(id));
    }
    std::shuffle(stream.begin(), stream.end(), rng);
    MemoryLog log;
    for (size_t i = 0; i < stream.size(); i += 1 + rng() % 5) {
      std::vector<Entry> batch(stream.begin() + i,
                               stream.begin() + std::min(stream.size(), i + 1 + rng() % 5));
      LogId last = log.Apply(batch);
      auto visible = log.Read(1, 1000, 1 << 30);
      ASSERT_EQ(visible.size(), last);
      for (size_t k = 0; k < visible.size(); ++k) ASSERT_EQ(visible[k].id, k + 1);
    }
    log.Apply(stream);
    ASSERT_EQ(log.last_id(), 50u);
  }
}

TEST(MemoryLog, ReadAndBatchEndStopAtByteBudgetButReturnAtLeastOne) {
  MemoryLog log;
  log.AppendNext(0, std::string(100, 'a'));
  log.AppendNext(0, std::string(100, 'b'));
  log.AppendNext(0, std::string(100, 'c'));
  EXPECT_EQ(log.Read(1, 10, 250).size(), 2u);
  EXPECT_EQ(log.Read(1, 10, 10).size(), 1u);
  EXPECT_EQ(log.BatchEnd(1, 3, 250), 2u);
  EXPECT_EQ(log.BatchEnd(1, 3, 10), 1u);
  EXPECT_EQ(log.BatchEnd(2, 3, 1000), 3u);
}

}  // namespace
}  // namespace rlog::storage
