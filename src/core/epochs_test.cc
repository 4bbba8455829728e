#include "core/epochs.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
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

TEST(Epochs, EqualLogsHaveAllInCommon) {
  History history = {{1, 1}, {2, 4}};
  EXPECT_EQ(CommonPrefix(history, 9, history, 9), 9u);
}

TEST(Epochs, NodeAheadInTheMastersEpochKeepsWhatTheMasterHas) {
  History history = {{1, 1}, {2, 4}};
  EXPECT_EQ(CommonPrefix(history, 9, history, 12), 9u);
  // Behind, on the common prefix: keeps everything and catches up.
  EXPECT_EQ(CommonPrefix(history, 9, History{{1, 1}, {2, 4}}, 7), 7u);
  EXPECT_EQ(CommonPrefix(history, 9, History{{1, 1}}, 3), 3u);
}

TEST(Epochs, NodeAheadOfARestartedMasterInTheOldEpochKeepsTheCommonPrefix) {
  // Epoch 1 reached id 7 on the node, but the master restarted with ids 1..5 and appended 6.. in
  // epoch 2: the node's 6 and 7 were never in the master's log.
  History master = {{1, 1}, {2, 6}};
  History node = {{1, 1}};
  EXPECT_EQ(CommonPrefix(master, 8, node, 7), 5u);
  EXPECT_EQ(CommonPrefix(master, 8, node, 6), 5u);
  EXPECT_EQ(CommonPrefix(master, 8, node, 5), 5u);
  EXPECT_EQ(CommonPrefix(master, 8, node, 3), 3u);
}

TEST(Epochs, NodeThatSkippedAnEpochKeepsWhatPrecedesIt) {
  // Epoch 2 appended only id 10. A node whose id 10 came from epoch 1 holds another entry there.
  History master = {{1, 1}, {2, 10}, {3, 11}};
  EXPECT_EQ(CommonPrefix(master, 20, History{{1, 1}}, 10), 9u);
  EXPECT_EQ(CommonPrefix(master, 20, History{{1, 1}}, 9), 9u);
  EXPECT_EQ(CommonPrefix(master, 20, History{{1, 1}, {2, 10}}, 10), 10u);
  EXPECT_EQ(CommonPrefix(master, 20, master, 15), 15u);
}

TEST(Epochs, NodeWhoseLastEpochTheMasterNeverSawKeepsOnlyWhatPrecedesIt) {
  // The master of epoch 2 took over with 1..5 and appended 6..12, which reached the node but no
  // majority. The master of epoch 3 took over with another node's 1..22, all of epoch 1 (the
  // epoch-1 master had appended them), and appends from 23. Epoch 2 ends at 22 in the master's
  // history, past the node's 12, yet the node's 6..12 are not the master's.
  History master = {{1, 1}, {3, 23}};
  History node = {{1, 1}, {2, 6}};
  EXPECT_EQ(CommonPrefix(master, 25, node, 12), 5u);
  EXPECT_EQ(CommonPrefix(master, 25, node, 6), 5u);
  EXPECT_EQ(CommonPrefix(master, 25, node, 4), 4u);
  // The same with an older epoch of the master's in between (epoch 2 from id 6, not the node's 3).
  EXPECT_EQ(CommonPrefix(History{{1, 1}, {2, 6}, {4, 23}}, 25, History{{1, 1}, {3, 6}}, 12), 5u);
}

TEST(Epochs, NodeWhoseLastEpochsTheMasterNeverSawIsCutBackOneEpochAtATime) {
  // Node: epoch 1 at 1..2, 2 at 3..4, 4 at 5..6, 6 at 7..10. Master: epoch 1 at 1..2, 3 at
  // 3..19, 5 from 20. None of the node's epochs 6, 4 and 2 is in the master's history, and at
  // 3..10 the master holds epoch 3: only 1..2 are common.
  History master = {{1, 1}, {3, 3}, {5, 20}};
  History node = {{1, 1}, {2, 3}, {4, 5}, {6, 7}};
  EXPECT_EQ(CommonPrefix(master, 25, node, 10), 2u);
  // Two levels: the node's epochs 3 and 5 are both missing; its 4..5 of epoch 1 are the master's
  // epoch 2.
  EXPECT_EQ(CommonPrefix(History{{1, 1}, {2, 4}, {4, 20}, {6, 30}}, 32,
                         History{{1, 1}, {3, 6}, {5, 9}}, 12),
            3u);
}

TEST(Epochs, MasterWithOnlyNewerEntriesHasNothingInCommon) {
  // A master that lost its directory took over with nothing and appended in epoch 3.
  EXPECT_EQ(CommonPrefix(History{{3, 1}}, 5, History{{1, 1}, {2, 3}}, 4), 0u);
}

TEST(Epochs, EntriesOfEpochZeroCompareLikeAnyOther) {
  // A log begun before epochs existed: its first entries are of epoch 0.
  History master = {{0, 1}, {1, 6}};
  EXPECT_EQ(CommonPrefix(master, 8, History{{0, 1}}, 7), 5u);
  EXPECT_EQ(CommonPrefix(master, 8, History{{0, 1}}, 4), 4u);
  EXPECT_EQ(CommonPrefix(master, 8, History{{0, 1}, {1, 6}}, 9), 8u);
}

// Two masters given the same epoch (a directory rolled back) write runs of it that start at
// different ids: the logs are not taken to agree there.
TEST(Epochs, RunsOfOneEpochStartingAtDifferentIdsAreNotTakenAsCommon) {
  // Master: epoch 3 from id 6. Node: ids 6-7 of epoch 1, then epoch 3 from id 8.
  History master = {{1, 1}, {3, 6}};
  History node = {{1, 1}, {3, 8}};
  EXPECT_EQ(CommonPrefix(master, 10, node, 12), 5u);
  EXPECT_EQ(CommonPrefix(node, 12, master, 10), 5u);
}

TEST(Epochs, EmptyLogsHaveNothingInCommon) {
  History history = {{1, 1}, {2, 4}};
  EXPECT_EQ(CommonPrefix(history, 9, {}, 0), 0u);
  EXPECT_EQ(CommonPrefix({}, 0, history, 9), 0u);
  EXPECT_EQ(CommonPrefix({}, 0, {}, 0), 0u);
}

TEST(Epochs, EmptyHistoryOfALogWithEntriesAgreesAsFarAsBothGo) {
  // A master from before epochs sends no history: nothing says its entries differ.
  History history = {{1, 1}, {2, 4}};
  EXPECT_EQ(CommonPrefix({}, 10, history, 12), 10u);
  EXPECT_EQ(CommonPrefix({}, 10, history, 7), 7u);
  EXPECT_EQ(CommonPrefix(history, 7, {}, 10), 7u);
}

// A log as the epochs of its entries: log[i] is the epoch of id i + 1.
using Log = std::vector<uint64_t>;

// Its history, as MemoryLog::EpochStarts gives it: where each run of one epoch starts.
History HistoryOf(const Log& log) {
  History history;
  for (size_t i = 0; i < log.size(); ++i) {
    if (history.empty() || history.back().epoch != log[i]) history.push_back({log[i], i + 1});
  }
  return history;
}

// The naive reference: compare the two logs id by id.
LogId NaiveCommonPrefix(const Log& a, const Log& b) {
  LogId n = 0;
  while (n < a.size() && n < b.size() && a[n] == b[n]) ++n;
  return n;
}

// Lineages of masters over a few nodes, each node's log a vector of entry epochs. A take-over
// gives some node a newer epoch and a prefix (any length) of some node's log; the master appends
// in its epoch; a node syncs from the master by keeping the common prefix and copying some of
// the rest; others stay stale. Every pair of logs is checked, the current master's included.
TEST(Epochs, CommonPrefixMatchesNaiveReferenceOverSeededRandomLineages) {
  std::mt19937_64 rng(20261122);
  auto below = [&rng](size_t n) { return static_cast<size_t>(rng() % n); };
  // Pairs that differ at some common id, and those that the last epochs alone get wrong (the
  // node's last id against the end of its last epoch in the other history).
  size_t checked = 0, diverged = 0, last_epoch_check_wrong = 0;
  for (int lineage = 0; lineage < 2000; ++lineage) {
    std::vector<Log> nodes(3 + below(3));
    size_t master = 0;
    uint64_t epoch = below(2);  // 0: the log was begun before epochs existed.
    for (int step = 0; step < 40; ++step) {
      switch (below(4)) {
        case 0: {  // Take-over.
          const Log& from = nodes[below(nodes.size())];
          Log log(from.begin(), from.begin() + static_cast<std::ptrdiff_t>(below(from.size() + 1)));
          epoch += 1 + below(2);
          master = below(nodes.size());
          nodes[master] = std::move(log);
          break;
        }
        case 1:  // Appends.
          nodes[master].insert(nodes[master].end(), 1 + below(6), epoch);
          break;
        case 2: {  // Sync.
          const size_t i = below(nodes.size());
          if (i == master) break;
          Log& node = nodes[i];
          const Log& source = nodes[master];
          node.resize(NaiveCommonPrefix(source, node));
          size_t copy = below(source.size() - node.size() + 1);
          node.insert(node.end(), source.begin() + static_cast<std::ptrdiff_t>(node.size()),
                      source.begin() + static_cast<std::ptrdiff_t>(node.size() + copy));
          break;
        }
        case 3:  // Check.
          for (const Log& a : nodes) {
            for (const Log& b : nodes) {
              const LogId want = NaiveCommonPrefix(a, b);
              ASSERT_EQ(CommonPrefix(HistoryOf(a), a.size(), HistoryOf(b), b.size()), want)
                  << "lineage " << lineage << ", step " << step;
              ++checked;
              if (want < std::min(a.size(), b.size())) ++diverged;
              // A history may go on past the last id given with it (entries not yet durable).
              const size_t a_durable = below(a.size() + 1), b_durable = below(b.size() + 1);
              ASSERT_EQ(CommonPrefix(HistoryOf(a), a_durable, HistoryOf(b), b_durable),
                        NaiveCommonPrefix(Log(a.begin(), a.begin() + a_durable),
                                          Log(b.begin(), b.begin() + b_durable)))
                  << "lineage " << lineage << ", step " << step << ", durable " << a_durable
                  << " and " << b_durable;
              const uint64_t b_last_epoch = b.empty() ? 0 : b.back();
              if (std::min<LogId>(b.size(), EpochEnd(HistoryOf(a), b_last_epoch, a.size())) !=
                  want) {
                ++last_epoch_check_wrong;
              }
            }
          }
          break;
      }
    }
  }
  // Not all trivial (with this seed: 327786, 33874 and 18166).
  EXPECT_GT(checked, 100000u);
  EXPECT_GT(diverged, checked / 20);
  EXPECT_GT(last_epoch_check_wrong, checked / 50);
}

using Positions = std::vector<RecoveryPosition>;

// A master whose own log is empty (its directory was lost).
RecoveryPlan PlanFromNothing(const Positions& positions) {
  return PlanRecovery({}, 0, 0, positions);
}

TEST(Epochs, RecoveryAnswersNeededByClusterSize) {
  // Sentinels: 1..6 (clusters of 2..7 nodes). Without the own log: S - M + 2. With it: the larger
  // of S - M + 1 and M - 1, which is one more than S - M + 1 for even cluster sizes.
  const size_t without[] = {1, 2, 2, 3, 3, 4};
  const size_t with[] = {1, 1, 2, 2, 3, 3};
  for (size_t s = 1; s <= 6; ++s) {
    EXPECT_EQ(RecoveryAnswersNeeded(s, false), without[s - 1]) << s << " sentinels";
    EXPECT_EQ(RecoveryAnswersNeeded(s, true), with[s - 1]) << s << " sentinels";
  }
  EXPECT_EQ(RecoveryAnswersNeeded(0, false), 0u);
  EXPECT_EQ(RecoveryAnswersNeeded(0, true), 0u);
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
  EXPECT_EQ(plan.end(), 9u) << "not the longer log of an older epoch";
}

TEST(Epochs, RecoveryPlanEndIsWhereTheLogTakenOverEnds) {
  History history = {{1, 1}};
  EXPECT_EQ(PlanRecovery(history, 5, 1, Positions{{1, 3, 3}}).end(), 5u) << "our own, no copy";
  EXPECT_EQ(PlanRecovery(history, 5, 1, Positions{{1, 8, 8}}).end(), 8u) << "copied up to 8";
  EXPECT_EQ(PlanRecovery(history, 5, 1, Positions{{2, 6, 3}}).end(), 6u) << "4-5 replaced";
  EXPECT_EQ(PlanFromNothing({{0, 0, 0}}).end(), 0u);
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

TEST(Epochs, RecoveryKeepsOnlyTheCommonPrefixWhenOurLastEpochIsMissingFromTheSource) {
  // Five nodes. Epoch 1 wrote 1-8; our own directory kept 1-5. We took over in epoch 2 without
  // hearing from the sentinels holding 6-8, wrote 6-12 (on one sentinel only) and died. A master
  // with an empty directory then took over in epoch 3 from 1-8 of epoch 1 and had 9-20
  // acknowledged. Our 6-8 of epoch 2 are not its 6-8 of epoch 1, although epoch 2's "end" in its
  // history (the id before epoch 3's first) is 8.
  History ours = {{1, 1}, {2, 6}};
  RecoveryPosition source{3, 20, /*own_epoch_end=*/8, {{1, 1}, {3, 9}}};
  RecoveryPlan plan = PlanRecovery(ours, 12, 2, Positions{source});
  EXPECT_EQ(plan.keep, 5u);
  ASSERT_TRUE(plan.source.has_value());
  EXPECT_EQ(plan.copy_to, 20u);
  // A sentinel of an older version sends no history: its epoch_end is all there is.
  source.history.clear();
  EXPECT_EQ(PlanRecovery(ours, 12, 2, Positions{source}).keep, 8u);
}

}  // namespace
}  // namespace rlog::core
