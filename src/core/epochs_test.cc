#include "core/epochs.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace rlog::core {
namespace {

using History = std::vector<EpochStart>;

TEST(Epochs, EpochEndIsTheIdBeforeTheNextEpochOrTheMastersLastId) {
  History history = {{1, 1}, {2, 6}, {4, 9}};
  EXPECT_EQ(EpochEnd(history, 0, 12), 0u);
  EXPECT_EQ(EpochEnd(history, 1, 12), 5u);
  EXPECT_EQ(EpochEnd(history, 2, 12), 8u);
  EXPECT_EQ(EpochEnd(history, 3, 12), 8u);  // Epoch 3 appended nothing.
  EXPECT_EQ(EpochEnd(history, 4, 12), 12u);
  EXPECT_EQ(EpochEnd(history, 7, 12), 12u);
}

TEST(Epochs, SentinelAheadOfARestartedMasterInTheOldEpochDiverges) {
  // Epoch 1 reached id 7 on the sentinel, but the master restarted with ids 1..5 and appended
  // 6.. in epoch 2: the sentinel's 6 and 7 were never in the master's log.
  History history = {{1, 1}, {2, 6}};
  EXPECT_TRUE(Diverges(history, 8, 1, 7));
  EXPECT_TRUE(Diverges(history, 8, 1, 6));
  EXPECT_FALSE(Diverges(history, 8, 1, 5));  // Behind, on the common prefix: just catches up.
}

TEST(Epochs, SentinelThatSkippedAnEpochDiverges) {
  // Epoch 2 appended only id 10. A sentinel whose id 10 came from epoch 1 holds another entry.
  History history = {{1, 1}, {2, 10}, {3, 11}};
  EXPECT_TRUE(Diverges(history, 20, 1, 10));
  EXPECT_FALSE(Diverges(history, 20, 1, 9));
  EXPECT_FALSE(Diverges(history, 20, 2, 10));
  EXPECT_FALSE(Diverges(history, 20, 3, 15));
}

TEST(Epochs, EqualLogsDoNotDiverge) {
  History history = {{1, 1}, {2, 4}};
  EXPECT_FALSE(Diverges(history, 9, 2, 9));
}

TEST(Epochs, SentinelAheadOfTheMasterInTheCurrentEpochDiverges) {
  History history = {{1, 1}, {2, 4}};
  EXPECT_TRUE(Diverges(history, 9, 2, 10));
}

TEST(Epochs, EmptySentinelNeverDiverges) {
  History history = {{1, 1}, {2, 4}};
  EXPECT_FALSE(Diverges(history, 9, 0, 0));
  EXPECT_FALSE(Diverges(history, 0, 0, 0));
  EXPECT_FALSE(Diverges({}, 0, 0, 0));
}

TEST(Epochs, EmptyHistoryDivergesOnlyWhenTheSentinelIsAhead) {
  EXPECT_FALSE(Diverges({}, 10, 1, 10));
  EXPECT_FALSE(Diverges({}, 10, 0, 3));
  EXPECT_TRUE(Diverges({}, 10, 1, 11));
  EXPECT_TRUE(Diverges({}, 0, 1, 1));
}

// The naive reference: the epoch of every id of the master's log, then "the sentinel's last id
// is an id of the master's log whose epoch is <= the sentinel's last epoch".
bool NaiveDiverges(const History& history, LogId master_last_id, uint64_t sentinel_last_epoch,
                   LogId sentinel_last_id) {
  if (sentinel_last_id == 0) return false;
  if (sentinel_last_id > master_last_id) return true;
  uint64_t epoch_of = 0;  // Epoch of sentinel_last_id in the master's log.
  for (const EpochStart& step : history) {
    if (step.first_id <= sentinel_last_id) epoch_of = step.epoch;
  }
  if (history.empty()) epoch_of = sentinel_last_epoch;
  return epoch_of > sentinel_last_epoch;
}

TEST(Epochs, DivergesMatchesNaiveReferenceOverSeededRandomHistories) {
  std::mt19937_64 rng(20261121);
  for (int trial = 0; trial < 20000; ++trial) {
    History history;
    uint64_t epoch = 0;
    LogId first = 1;
    size_t steps = rng() % 6;
    for (size_t i = 0; i < steps; ++i) {
      epoch += 1 + rng() % 3;
      if (i > 0) first += rng() % 5;  // An epoch may append nothing.
      history.push_back({epoch, first});
    }
    LogId master_last = history.empty() ? rng() % 20 : first - 1 + rng() % 5;
    uint64_t sentinel_epoch = rng() % (epoch + 3);
    LogId sentinel_last = rng() % (master_last + 4);
    ASSERT_EQ(Diverges(history, master_last, sentinel_epoch, sentinel_last),
              NaiveDiverges(history, master_last, sentinel_epoch, sentinel_last))
        << "trial " << trial;
  }
}

using Positions = std::vector<RecoveryPosition>;

TEST(Epochs, RecoveryCopiesTheNewestEpochNotTheLongestLog) {
  // The master lost its directory. S1 took ids 9-10 from the master of epoch 3 (acknowledged by
  // master + S1); S2, cut off meanwhile, holds 9-12 of epoch 2 that nobody acknowledged.
  Positions positions = {{3, 10}, {2, 12}};
  auto source = ChooseRecoverySource({}, 0, positions);
  ASSERT_TRUE(source.has_value());
  EXPECT_EQ(source->index, 0u);
  EXPECT_EQ(source->last, 10u);
  // Order of the answers does not matter.
  Positions reversed = {{2, 12}, {3, 10}};
  EXPECT_EQ(ChooseRecoverySource({}, 0, reversed)->index, 1u);
}

TEST(Epochs, RecoveryTakesTheLongestLogOfTheNewestEpoch) {
  Positions positions = {{2, 7}, {2, 9}, {1, 20}};
  auto source = ChooseRecoverySource({}, 0, positions);
  ASSERT_TRUE(source.has_value());
  EXPECT_EQ(source->index, 1u);
  EXPECT_EQ(source->last, 9u);
}

TEST(Epochs, RecoveryCountsAPositionOnlyAsFarAsItExtendsTheOwnLog) {
  // Our own log: epoch 1 from id 1, epoch 3 from id 6, up to id 8.
  History history = {{1, 1}, {3, 6}};
  // An epoch-1 sentinel holds 1-9: only 1-5 are ours (epoch 1 ended at 5); nothing to copy.
  EXPECT_FALSE(ChooseRecoverySource(history, 8, Positions{{1, 9}}).has_value());
  // An epoch-3 sentinel ahead of us: copy 9-11 from it, not from the longer epoch-1 one.
  auto source = ChooseRecoverySource(history, 8, Positions{{1, 30}, {3, 11}});
  ASSERT_TRUE(source.has_value());
  EXPECT_EQ(source->index, 1u);
  EXPECT_EQ(source->last, 11u);
  // Nobody ahead of us, and empty sentinels: nothing to copy.
  EXPECT_FALSE(ChooseRecoverySource(history, 8, Positions{{3, 8}, {0, 0}}).has_value());
  EXPECT_FALSE(ChooseRecoverySource({}, 0, Positions{{0, 0}}).has_value());
}

}  // namespace
}  // namespace rlog::core
