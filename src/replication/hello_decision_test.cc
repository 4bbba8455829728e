#include "replication/hello_decision.h"

#include <gtest/gtest.h>

#include <vector>

namespace rlog::replication {
namespace {

using History = std::vector<core::EpochStart>;

TEST(HelloDecision, NewSentinelAcceptsAnyMaster) {
  EXPECT_EQ(DecideHello({}, {"log-a", 1, 10, {}}), HelloVerdict::kAccept);
}

TEST(HelloDecision, MasterOlderThanTheNewestAcceptedIsRefused) {
  SentinelLogView s{"log-a", 3, 10, 3};
  History history = {{1, 1}, {2, 5}};
  EXPECT_EQ(DecideHello(s, {"log-a", 2, 12, history}), HelloVerdict::kRefuseOlderEpoch);
  EXPECT_EQ(DecideHello(s, {"log-a", 3, 12, {}}), HelloVerdict::kAccept);
  // Fenced even when the sentinel holds nothing: it has already accepted epoch 3.
  EXPECT_EQ(DecideHello({"log-a", 3, 0, 0}, {"log-a", 1, 0, {}}), HelloVerdict::kRefuseOlderEpoch);
}

TEST(HelloDecision, SentinelWithEntriesOfAnotherLogRefuses) {
  EXPECT_EQ(DecideHello({"log-a", 1, 4, 1}, {"log-b", 9, 4, {}}), HelloVerdict::kRefuseOtherLog);
}

TEST(HelloDecision, EmptySentinelAdoptsAnotherLogWhateverItsEpoch) {
  EXPECT_EQ(DecideHello({"log-a", 5, 0, 0}, {"log-b", 1, 4, {}}), HelloVerdict::kAccept);
}

TEST(HelloDecision, SentinelAheadOfARestartedMasterResets) {
  // The sentinel reached id 7 in epoch 1; the master restarted with 1..5 and appends in epoch 2.
  History history = {{1, 1}, {2, 6}};
  EXPECT_EQ(DecideHello({"log-a", 1, 7, 1}, {"log-a", 2, 8, history}),
            HelloVerdict::kResetThenAccept);
  EXPECT_EQ(DecideHello({"log-a", 1, 5, 1}, {"log-a", 2, 8, history}), HelloVerdict::kAccept);
}

TEST(HelloDecision, SentinelThatSkippedAnEpochResets) {
  History history = {{1, 1}, {2, 10}, {3, 11}};
  EXPECT_EQ(DecideHello({"log-a", 1, 10, 1}, {"log-a", 3, 20, history}),
            HelloVerdict::kResetThenAccept);
}

TEST(HelloDecision, FencingComesBeforeDivergence) {
  // An old master with a short log must not make a newer sentinel drop its entries.
  History history = {{1, 1}};
  EXPECT_EQ(DecideHello({"log-a", 2, 10, 2}, {"log-a", 1, 3, history}),
            HelloVerdict::kRefuseOlderEpoch);
}

}  // namespace
}  // namespace rlog::replication
