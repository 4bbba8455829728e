#include "replication/durable_ack_queue.h"

#include <gtest/gtest.h>

#include <map>
#include <random>

namespace rlog::replication {
namespace {

TEST(DurableAckQueue, NothingIsAckedBeforeItIsDurable) {
  DurableAckQueue q;
  q.Processed(1, 0);    // Hello-time heartbeat on an empty log.
  q.Processed(2, 100);  // A batch of 1..100.
  EXPECT_EQ(q.Durable(0), (AckPoint{0, 1}));
  EXPECT_EQ(q.Durable(0), std::nullopt);
  // 1..60 durable: the master may count 60, but message 2 is not covered yet.
  EXPECT_EQ(q.Durable(60), (AckPoint{60, 1}));
  EXPECT_EQ(q.Durable(100), (AckPoint{100, 2}));
  EXPECT_EQ(q.waiting(), 0u);
}

TEST(DurableAckQueue, WhatTheWelcomeReportedIsNotAckedAgain) {
  DurableAckQueue q(5);
  EXPECT_EQ(q.Durable(5), std::nullopt);
  q.Processed(1, 5);  // A batch of ids the sentinel already held.
  EXPECT_EQ(q.Durable(5), (AckPoint{5, 1}));
  EXPECT_EQ(q.Durable(6), (AckPoint{6, 1}));  // An id made durable by another stream.
}

TEST(DurableAckQueue, OneAckCoversEveryMessageTheDurableIdReached) {
  DurableAckQueue q;
  q.Processed(1, 10);
  q.Processed(2, 20);
  q.Processed(3, 30);
  EXPECT_EQ(q.Durable(25), (AckPoint{25, 2}));
  EXPECT_EQ(q.waiting(), 1u);
  EXPECT_EQ(q.Durable(30), (AckPoint{30, 3}));
}

TEST(DurableAckQueue, HeartbeatsWhileTheDiskIsSlowDoNotGrowTheQueue) {
  DurableAckQueue q;
  q.Processed(1, 50);
  for (uint64_t seq = 2; seq < 1000; ++seq) q.Processed(seq, 50);
  EXPECT_EQ(q.waiting(), 1u);
  EXPECT_EQ(q.Durable(50), (AckPoint{50, 999}));
}

TEST(DurableAckQueue, HeartbeatOnADurableLogIsAckedAtOnce) {
  DurableAckQueue q;
  q.Processed(1, 7);
  EXPECT_EQ(q.Durable(7), (AckPoint{7, 1}));
  q.Processed(2, 7);
  EXPECT_EQ(q.Durable(7), (AckPoint{7, 2}));
}

TEST(DurableAckQueue, ALogResetDoesNotWedgeTheQueue) {
  DurableAckQueue q;
  q.Processed(1, 40);
  q.Processed(2, 3);  // The log was reset meanwhile and holds 1..3 again.
  EXPECT_EQ(q.Durable(3), (AckPoint{3, 2}));
  EXPECT_EQ(q.waiting(), 0u);
}

// Property: over seeded random streams, every Ack names a durable id, only seqs whose ids were
// all durable, the newest such seq, and the last message is acked once everything is durable.
TEST(DurableAckQueue, AcksOnlyDurableMessagesOverSeededRandomStreams) {
  std::mt19937_64 rng(7);
  for (int trial = 0; trial < 2000; ++trial) {
    DurableAckQueue q;
    std::map<uint64_t, core::LogId> recorded;  // seq -> last id after it.
    core::LogId last = 0, durable = 0;
    uint64_t seq = 0, acked_seq = 0;
    for (int step = 0; step < 60; ++step) {
      if (rng() % 2 == 0) {
        last += rng() % 4;  // 0: a heartbeat or a batch of held ids.
        q.Processed(++seq, last);
        recorded[seq] = last;
      } else {
        durable += rng() % (last - durable + 1);
        auto ack = q.Durable(durable);
        if (!ack) continue;
        ASSERT_EQ(ack->last_id, durable);
        ASSERT_GE(ack->seq, acked_seq);
        uint64_t newest = 0;
        for (auto [s, l] : recorded) {
          if (l <= durable) newest = s;
        }
        ASSERT_EQ(ack->seq, std::max(newest, acked_seq)) << "trial " << trial;
        if (ack->seq > 0) {
          ASSERT_LE(recorded[ack->seq], durable);
        }
        acked_seq = ack->seq;
      }
    }
    auto final_ack = q.Durable(last);
    if (seq > acked_seq) {
      ASSERT_TRUE(final_ack.has_value());
      ASSERT_EQ(*final_ack, (AckPoint{last, seq}));
    }
  }
}

}  // namespace
}  // namespace rlog::replication
