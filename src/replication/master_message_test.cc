#include "replication/master_message.h"

#include <gtest/gtest.h>

namespace rlog::replication {
namespace {

void AppendThree(storage::MemoryLog& log) {
  log.AppendNext(1, 1001, "a");
  log.AppendNext(1, 1002, "b", "key-b");
  log.AppendNext(2, 1003, "c");
}

TEST(MasterMessageTest, ABatchCarriesItsEntriesTheCommitIdAndWhetherItWasPipelined) {
  storage::MemoryLog log;
  AppendThree(log);
  core::Ready::Send send{.sentinel = 0,
                         .generation = 1,
                         .seq = 7,
                         .first = 2,
                         .last = 3,
                         .commit = 1,
                         .pipelined = true};
  MasterMessage msg = BuildMasterMessage(send, log);
  ASSERT_TRUE(msg.has_batch());
  EXPECT_EQ(msg.seq(), 7u);
  const Batch& batch = msg.batch();
  ASSERT_EQ(batch.entries_size(), 2);
  EXPECT_EQ(batch.entries(0).id(), 2u);
  EXPECT_EQ(batch.entries(0).message(), "b");
  EXPECT_EQ(batch.entries(0).timestamp_ms(), 1002);
  EXPECT_EQ(batch.entries(0).epoch(), 1u);
  EXPECT_EQ(batch.entries(0).idempotency_key(), "key-b");
  EXPECT_EQ(batch.entries(1).id(), 3u);
  EXPECT_EQ(batch.entries(1).epoch(), 2u);
  EXPECT_TRUE(batch.entries(1).idempotency_key().empty());
  EXPECT_EQ(batch.commit_id(), 1u);
  EXPECT_EQ(batch.master_last_id(), 3u);
  EXPECT_TRUE(batch.pipelined());

  send.pipelined = false;  // Cut with nothing unacknowledged before it: the master waits for it.
  EXPECT_FALSE(BuildMasterMessage(send, log).batch().pipelined());
}

TEST(MasterMessageTest, AHeartbeatCarriesTheCommitIdAndTheLastId) {
  storage::MemoryLog log;
  AppendThree(log);
  const core::Ready::Send send{
      .sentinel = 0, .generation = 1, .seq = 8, .first = 0, .last = 0, .commit = 3};
  const MasterMessage msg = BuildMasterMessage(send, log);
  ASSERT_TRUE(msg.has_heartbeat());
  EXPECT_EQ(msg.seq(), 8u);
  EXPECT_EQ(msg.heartbeat().commit_id(), 3u);
  EXPECT_EQ(msg.heartbeat().master_last_id(), 3u);
}

}  // namespace
}  // namespace rlog::replication
