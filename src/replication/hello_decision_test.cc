#include "replication/hello_decision.h"

#include <gtest/gtest.h>

#include <ostream>
#include <vector>

namespace rlog::replication {

// For gtest's failure messages.
void PrintTo(const HelloDecision& d, std::ostream* os) {
  switch (d.verdict) {
    case HelloVerdict::kAccept:
      *os << "accept";
      break;
    case HelloVerdict::kTruncateThenAccept:
      *os << "truncate then accept";
      break;
    case HelloVerdict::kRefuseOtherLog:
      *os << "refuse (other log)";
      break;
    case HelloVerdict::kRefuseOlderEpoch:
      *os << "refuse (older epoch)";
      break;
  }
  *os << ", keep " << d.keep;
}

namespace {

using History = std::vector<core::EpochStart>;

constexpr HelloDecision kOtherLog{HelloVerdict::kRefuseOtherLog, 0};
constexpr HelloDecision kFenced{HelloVerdict::kRefuseOlderEpoch, 0};
HelloDecision Accept(core::LogId keep) { return {HelloVerdict::kAccept, keep}; }
HelloDecision TruncateTo(core::LogId keep) { return {HelloVerdict::kTruncateThenAccept, keep}; }

TEST(HelloDecision, NewSentinelAcceptsAnyMaster) {
  EXPECT_EQ(DecideHello({}, {"log-a", 1, 10, {}}), Accept(0));
}

TEST(HelloDecision, MasterOlderThanTheNewestAcceptedIsRefused) {
  History mine = {{1, 1}, {3, 5}};
  SentinelLogView s{"log-a", 3, 10, mine};
  History older = {{1, 1}, {2, 5}};
  EXPECT_EQ(DecideHello(s, {"log-a", 2, 12, older}), kFenced);
  History same = {{1, 1}, {3, 5}};
  EXPECT_EQ(DecideHello(s, {"log-a", 3, 12, same}), Accept(10));
  // Fenced even when the sentinel holds nothing: it has already accepted epoch 3.
  EXPECT_EQ(DecideHello({"log-a", 3, 0, {}}, {"log-a", 1, 0, {}}), kFenced);
}

TEST(HelloDecision, SentinelWithEntriesOfAnotherLogRefuses) {
  History mine = {{1, 1}};
  EXPECT_EQ(DecideHello({"log-a", 1, 4, mine}, {"log-b", 9, 4, {}}), kOtherLog);
}

TEST(HelloDecision, EmptySentinelAdoptsAnotherLogWhateverItsEpoch) {
  EXPECT_EQ(DecideHello({"log-a", 5, 0, {}}, {"log-b", 1, 4, {}}), Accept(0));
}

TEST(HelloDecision, SentinelAheadOfARestartedMasterTruncatesToTheOldEpochsEnd) {
  // The sentinel reached id 7 in epoch 1; the master restarted with 1..5 and appends in epoch 2.
  History master = {{1, 1}, {2, 6}};
  History mine = {{1, 1}};
  EXPECT_EQ(DecideHello({"log-a", 1, 7, mine}, {"log-a", 2, 8, master}), TruncateTo(5));
  EXPECT_EQ(DecideHello({"log-a", 1, 5, mine}, {"log-a", 2, 8, master}), Accept(5));
}

TEST(HelloDecision, SentinelThatSkippedAnEpochTruncatesBeforeIt) {
  History master = {{1, 1}, {2, 10}, {3, 11}};
  History mine = {{1, 1}};
  EXPECT_EQ(DecideHello({"log-a", 1, 10, mine}, {"log-a", 3, 20, master}), TruncateTo(9));
}

TEST(HelloDecision, SentinelWhoseLastEpochTheMasterNeverSawTruncatesToTheCommonPrefix) {
  // The sentinel holds 6..12 of epoch 2, which no majority acknowledged; the master of epoch 3
  // took over with 1..22 of epoch 1, so epoch 2 "ends" at 22 in its history, past the sentinel's
  // 12: the sentinel's last epoch alone would keep all of it.
  History master = {{1, 1}, {3, 23}};
  History mine = {{1, 1}, {2, 6}};
  EXPECT_EQ(DecideHello({"log-a", 2, 12, mine}, {"log-a", 3, 25, master}), TruncateTo(5));
}

TEST(HelloDecision, SentinelWithNothingInCommonTruncatesEverything) {
  // A master that lost its directory took over with nothing and appended in epoch 3.
  History master = {{3, 1}};
  History mine = {{1, 1}, {2, 3}};
  EXPECT_EQ(DecideHello({"log-a", 2, 4, mine}, {"log-a", 3, 5, master}), TruncateTo(0));
}

TEST(HelloDecision, FencingComesBeforeDivergence) {
  // An old master with a short log must not make a newer sentinel drop its entries.
  History master = {{1, 1}};
  History mine = {{2, 1}};
  EXPECT_EQ(DecideHello({"log-a", 2, 10, mine}, {"log-a", 1, 3, master}), kFenced);
}

}  // namespace
}  // namespace rlog::replication
