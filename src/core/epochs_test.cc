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

// A master whose own log is empty (its directory was lost).
RecoveryPlan PlanFromNothing(const Positions& positions) {
  return PlanRecovery({}, 0, 0, positions);
}

TEST(Epochs, RecoveryCopiesTheNewestEpochNotTheLongestLog) {
  // The master lost its directory. S1 took ids 9-10 from the master of epoch 3 (acknowledged by
  // master + S1); S2, cut off meanwhile, holds 9-12 of epoch 2 that nobody acknowledged.
  Positions positions = {{3, 10}, {2, 12}};
  RecoveryPlan plan = PlanFromNothing(positions);
  ASSERT_TRUE(plan.source.has_value());
  EXPECT_EQ(*plan.source, 0u);
  EXPECT_EQ(plan.keep, 0u);
  EXPECT_EQ(plan.copy_to, 10u);
  // Order of the answers does not matter.
  Positions reversed = {{2, 12}, {3, 10}};
  EXPECT_EQ(PlanFromNothing(reversed).source, 1u);
}

TEST(Epochs, RecoveryTakesTheLongestLogOfTheNewestEpoch) {
  RecoveryPlan plan = PlanFromNothing({{2, 7}, {2, 9}, {1, 20}});
  ASSERT_TRUE(plan.source.has_value());
  EXPECT_EQ(*plan.source, 1u);
  EXPECT_EQ(plan.copy_to, 9u);
}

TEST(Epochs, RecoveryCountsAPositionOnlyAsFarAsItExtendsTheOwnLog) {
  // Our own log: epoch 1 from id 1, epoch 3 from id 6, up to id 8 (its last entry: epoch 3).
  History history = {{1, 1}, {3, 6}};
  auto plan = [&](const Positions& p) { return PlanRecovery(history, 8, 3, p); };
  // An epoch-1 sentinel holds 1-9: only 1-5 are ours (epoch 1 ended at 5); nothing to copy.
  EXPECT_FALSE(plan({{1, 9, 9}}).source.has_value());
  EXPECT_EQ(plan({{1, 9, 9}}).keep, 8u);
  // An epoch-3 sentinel ahead of us: copy 9-11 from it, not from the longer epoch-1 one.
  RecoveryPlan ahead = plan({{1, 30, 30}, {3, 11, 11}});
  ASSERT_TRUE(ahead.source.has_value());
  EXPECT_EQ(*ahead.source, 1u);
  EXPECT_EQ(ahead.keep, 8u);
  EXPECT_EQ(ahead.copy_to, 11u);
  // Nobody ahead of us, and empty sentinels: nothing to copy, everything kept.
  RecoveryPlan none = plan({{3, 8, 8}, {0, 0, 0}});
  EXPECT_FALSE(none.source.has_value());
  EXPECT_EQ(none.keep, 8u);
  EXPECT_FALSE(PlanFromNothing({{0, 0, 0}}).source.has_value());
}

TEST(Epochs, RecoveryDropsTheOwnTailThatANewerMasterReplaced) {
  // Our log (epoch 1) holds 1-5; 4 and 5 only we ever had. Meanwhile a master that had lost its
  // directory took over in epoch 2 from id 4 and wrote 4-6 of its own (acknowledged by w=3).
  History history = {{1, 1}};
  Positions positions = {{2, 6, /*own_epoch_end=*/3}};
  RecoveryPlan plan = PlanRecovery(history, 5, 1, positions);
  EXPECT_EQ(plan.keep, 3u) << "ids 4-5 of epoch 1 are not in the newer history";
  ASSERT_TRUE(plan.source.has_value());
  EXPECT_EQ(plan.copy_to, 6u);
  // The same when the newer log is no longer than ours: ids 4-5 are still two messages each.
  RecoveryPlan same_length = PlanRecovery(history, 5, 1, Positions{{2, 5, 3}});
  EXPECT_EQ(same_length.keep, 3u);
  ASSERT_TRUE(same_length.source.has_value());
  EXPECT_EQ(same_length.copy_to, 5u);
  // A newer master that took over after our last id: all of ours is in its log.
  RecoveryPlan after = PlanRecovery(history, 5, 1, Positions{{2, 9, 5}});
  EXPECT_EQ(after.keep, 5u);
  EXPECT_EQ(after.copy_to, 9u);
  // The epoch end of an older or equal epoch says nothing: we are its newest writer.
  EXPECT_EQ(PlanRecovery(history, 5, 1, Positions{{1, 4, 0}}).keep, 5u);
}

}  // namespace
}  // namespace rlog::core
