#include "storage/memory_log.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

namespace rlog::storage {
namespace {

using EpochStarts = std::vector<core::EpochStart>;

Entry E(LogId id, uint64_t epoch = 0) {
  return Entry{id, 1000 + static_cast<int64_t>(id), "m" + std::to_string(id), epoch};
}

// The reference EpochStarts is checked against: a scan of every entry.
EpochStarts NaiveEpochStarts(const MemoryLog& log) {
  EpochStarts starts;
  for (const Entry& e : log.Read(1, SIZE_MAX, UINT64_MAX)) {
    if (starts.empty() || starts.back().epoch != e.epoch) starts.push_back({e.epoch, e.id});
  }
  return starts;
}

TEST(MemoryLog, AppendNextGivesDenseIds) {
  MemoryLog log;
  EXPECT_EQ(log.AppendNext(0, 1, "a"), 1u);
  EXPECT_EQ(log.AppendNext(0, 2, "b"), 2u);
  EXPECT_EQ(log.last_id(), 2u);
  auto all = log.Read(1, 10, 1 << 20);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[1].message, "b");
  EXPECT_EQ(all[1].timestamp_ms, 2);
}

TEST(MemoryLog, EntriesCarryTheirEpoch) {
  MemoryLog log;
  EXPECT_EQ(log.LastEpoch(), 0u);
  log.AppendNext(2, 1, "a");
  log.AppendNext(5, 2, "b");
  auto all = log.Read(1, 10, 1 << 20);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].epoch, 2u);
  EXPECT_EQ(all[1].epoch, 5u);
  EXPECT_EQ(log.LastEpoch(), 5u);
}

TEST(MemoryLog, AppendNextRefusesAnOlderEpoch) {
  MemoryLog log;
  ASSERT_EQ(log.AppendNext(3, 1, "a"), 1u);
  EXPECT_EQ(log.AppendNext(2, 2, "b"), 0u);
  EXPECT_EQ(log.last_id(), 1u);
  EXPECT_EQ(log.AppendNext(3, 3, "c"), 2u);
}

TEST(MemoryLog, EpochStartsSaysWhereEachEpochsRunBegins) {
  MemoryLog log;
  EXPECT_EQ(log.EpochStarts(), EpochStarts{});
  for (uint64_t epoch : {1, 1, 3, 3, 3, 4}) log.AppendNext(epoch, 0, "m");
  EXPECT_EQ(log.EpochStarts(), (EpochStarts{{1, 1}, {3, 3}, {4, 6}}));
  EXPECT_EQ(log.LastEpoch(), 4u);
}

TEST(MemoryLog, HeldBackEntriesCountOnlyOnceContiguous) {
  MemoryLog log;
  log.Apply({E(1, 1), E(2, 1), E(4, 3)});
  EXPECT_EQ(log.LastEpoch(), 1u);
  EXPECT_EQ(log.EpochStarts(), (EpochStarts{{1, 1}}));
  log.Apply({E(3, 2)});
  EXPECT_EQ(log.LastEpoch(), 3u);
  EXPECT_EQ(log.EpochStarts(), (EpochStarts{{1, 1}, {2, 3}, {3, 4}}));
}

TEST(MemoryLog, ApplyRefusesAnEntryWhoseEpochGoesBackwards) {
  MemoryLog log;
  log.Apply({E(1, 2), E(2, 2)});
  LogId refused = 99;
  EXPECT_EQ(log.Apply({E(3, 1), E(4, 2)}, &refused), 2u);
  EXPECT_EQ(refused, 3u);
  EXPECT_EQ(log.held_back(), 1u);  // Id 4 waits for a valid id 3.
  EXPECT_EQ(log.Apply({E(3, 2)}, &refused), 4u);
  EXPECT_EQ(refused, 0u);
  // A held-back entry is checked when it becomes contiguous.
  log.Apply({E(6, 1)});
  EXPECT_EQ(log.Apply({E(5, 3)}, &refused), 5u);
  EXPECT_EQ(refused, 6u);
  EXPECT_EQ(log.held_back(), 0u);
  EXPECT_EQ(log.EpochStarts(), (EpochStarts{{2, 1}, {3, 5}}));
}

TEST(MemoryLog, TruncateAfterDropsTheTailAndItsEpochStarts) {
  MemoryLog log;
  for (uint64_t epoch : {1, 1, 2, 2, 3}) log.AppendNext(epoch, 0, "m");
  log.Apply({E(8, 3)});
  log.TruncateAfter(3);
  EXPECT_EQ(log.last_id(), 3u);
  EXPECT_EQ(log.EpochStarts(), (EpochStarts{{1, 1}, {2, 3}}));
  EXPECT_EQ(log.LastEpoch(), 2u);
  EXPECT_EQ(log.held_back(), 1u);
  log.TruncateAfter(10);  // Beyond the end: nothing.
  EXPECT_EQ(log.last_id(), 3u);
  EXPECT_EQ(log.AppendNext(2, 0, "again"), 4u);
  log.TruncateAfter(0);
  EXPECT_EQ(log.last_id(), 0u);
  EXPECT_EQ(log.EpochStarts(), EpochStarts{});
}

TEST(MemoryLog, ClearDropsEntriesAndHeldBackOnes) {
  MemoryLog log;
  log.Apply({E(1, 4), E(2, 4), E(5, 4)});
  log.Clear();
  EXPECT_EQ(log.last_id(), 0u);
  EXPECT_EQ(log.held_back(), 0u);
  EXPECT_EQ(log.LastEpoch(), 0u);
  EXPECT_EQ(log.EpochStarts(), EpochStarts{});
  EXPECT_EQ(log.Apply({E(1, 1)}), 1u);  // Any history may follow.
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

// Random delivery orders of random epoch histories: exactly once, in order, and EpochStarts equal
// to a scan of the entries after every batch.
TEST(MemoryLog, AnyDeliveryOrderWithDuplicatesYieldsExactlyOnceAndTheEpochHistory) {
  std::mt19937_64 rng(5);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<Entry> stream;
    uint64_t epoch = rng() % 3;
    for (LogId id = 1; id <= 50; ++id) {
      if (rng() % 6 == 0) epoch += 1 + rng() % 3;
      stream.push_back(E(id, epoch));
      if (rng() % 4 == 0) stream.push_back(E(id, epoch));
    }
    std::shuffle(stream.begin(), stream.end(), rng);
    MemoryLog log;
    for (size_t i = 0; i < stream.size(); i += 1 + rng() % 5) {
      std::vector<Entry> batch(stream.begin() + i,
                               stream.begin() + std::min(stream.size(), i + 1 + rng() % 5));
      LogId refused = 0;
      LogId last = log.Apply(batch, &refused);
      ASSERT_EQ(refused, 0u);
      auto visible = log.Read(1, 1000, 1 << 30);
      ASSERT_EQ(visible.size(), last);
      for (size_t k = 0; k < visible.size(); ++k) ASSERT_EQ(visible[k].id, k + 1);
      ASSERT_EQ(log.EpochStarts(), NaiveEpochStarts(log));
      ASSERT_EQ(log.LastEpoch(), visible.empty() ? 0 : visible.back().epoch);
    }
    log.Apply(stream);
    ASSERT_EQ(log.last_id(), 50u);
    if (trial % 10 == 0) {
      log.TruncateAfter(rng() % 50);
      ASSERT_EQ(log.EpochStarts(), NaiveEpochStarts(log));
    }
  }
}

TEST(MemoryLog, IdempotencyKeysAreReadWithTheirEntriesAndGoWithThem) {
  MemoryLog log;
  EXPECT_EQ(log.AppendNext(1, 1, "a", "k1"), 1u);
  EXPECT_EQ(log.AppendNext(1, 2, "b"), 2u);
  Entry c = E(3, 1);
  c.idempotency_key = "k3";
  Entry d = E(4, 1);
  d.idempotency_key = "k4";
  log.Apply({d, c});  // Out of order: 4 waits for 3, and keeps its key meanwhile.
  auto keys_of = [&](LogId from, size_t n) {
    std::vector<std::string> keys;
    for (const Entry& e : log.Read(from, n, UINT64_MAX)) keys.push_back(e.idempotency_key);
    return keys;
  };
  EXPECT_EQ(keys_of(1, 10), (std::vector<std::string>{"k1", "", "k3", "k4"}));
  EXPECT_EQ(keys_of(2, 2), (std::vector<std::string>{"", "k3"}));
  EXPECT_EQ(keys_of(4, 1), (std::vector<std::string>{"k4"}));
  EXPECT_EQ(log.Read(3, 1, UINT64_MAX)[0].message, "m3");
  ASSERT_EQ(log.Keys().size(), 3u);
  EXPECT_EQ(log.Keys()[1].id, 3u);
  EXPECT_EQ(log.Keys()[1].key, "k3");
  log.TruncateAfter(3);
  EXPECT_EQ(keys_of(1, 10), (std::vector<std::string>{"k1", "", "k3"}));
  EXPECT_EQ(log.AppendNext(1, 5, "e"), 4u);  // Id 4 again, without the cut entry's key.
  EXPECT_EQ(keys_of(4, 1), (std::vector<std::string>{""}));
  log.Clear();
  EXPECT_TRUE(log.Keys().empty());
}

TEST(MemoryLog, OnlyTheNewestKeysAreKept) {
  MemoryLog log;
  log.set_key_capacity(3);
  for (int i = 1; i <= 6; ++i) log.AppendNext(1, i, "m", i == 2 ? "" : "k" + std::to_string(i));
  const std::vector<MemoryLog::KeyedId> keys = log.Keys();
  ASSERT_EQ(keys.size(), 3u);
  EXPECT_EQ(keys[0].key, "k4");
  EXPECT_EQ(keys[2].key, "k6");
  EXPECT_EQ(log.Read(3, 1, UINT64_MAX)[0].idempotency_key, "");  // Forgotten; the entry stays.
  EXPECT_EQ(log.last_id(), 6u);
  log.set_key_capacity(1);
  ASSERT_EQ(log.Keys().size(), 1u);
  EXPECT_EQ(log.Keys()[0].id, 6u);
  log.set_key_capacity(0);  // Keys disabled: none kept, none taken.
  log.AppendNext(1, 7, "m", "k7");
  EXPECT_TRUE(log.Keys().empty());
}

TEST(MemoryLog, MemoryBytesCountsSlotsAndPayloadChunks) {
  MemoryLog log;
  EXPECT_EQ(log.memory_bytes(), 0u);
  log.AppendNext(0, 1, "first");
  const uint64_t one = log.memory_bytes();
  EXPECT_GE(one, PayloadArena::kChunkBytes);  // The first chunk is reserved whole.
  log.AppendNext(0, 2, "second");
  const uint64_t slot = log.memory_bytes() - one;  // Same chunk: only a slot more.
  EXPECT_GT(slot, 0u);
  EXPECT_LE(slot, 32u);
  std::string big(PayloadArena::kDedicatedBytes, 'b');
  log.AppendNext(0, 3, big);
  EXPECT_EQ(log.memory_bytes(), one + 2 * slot + big.size());
  log.TruncateAfter(2);
  EXPECT_EQ(log.memory_bytes(), one + slot);
  log.Apply({Entry{3, 3, "c", 0}});
  EXPECT_EQ(log.memory_bytes(), one + 2 * slot);
  log.Clear();
  EXPECT_EQ(log.memory_bytes(), 0u);
}

TEST(MemoryLog, ReadAndBatchEndStopAtByteBudgetButReturnAtLeastOne) {
  MemoryLog log;
  log.AppendNext(0, 0, std::string(100, 'a'));
  log.AppendNext(0, 0, std::string(100, 'b'));
  log.AppendNext(0, 0, std::string(100, 'c'));
  EXPECT_EQ(log.Read(1, 10, 250).size(), 2u);
  EXPECT_EQ(log.Read(1, 10, 10).size(), 1u);
  EXPECT_EQ(log.BatchEnd(1, 3, 250), 2u);
  EXPECT_EQ(log.BatchEnd(1, 3, 10), 1u);
  EXPECT_EQ(log.BatchEnd(2, 3, 1000), 3u);
}

}  // namespace
}  // namespace rlog::storage
