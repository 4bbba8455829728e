// NodeLog: the same rules in memory and with a data directory; what a data directory keeps across
// restarts, power losses and disk errors; Reset; corrupt WALs. Waits are condition waits with a
// generous bound, syncs are held with BlockSyncs: no sleeps.
#include "storage/node_log.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <filesystem>
#include <random>
#include <thread>

#include "storage/commit_reports_testing.h"
#include "storage/durability_checker.h"
#include "storage/fault_injection_file_system.h"
#include "storage/temp_dir_testing.h"
#include "storage/wal_format.h"

namespace rlog::storage {
namespace {

using Op = FaultInjectionFileSystem::Op;
using EpochStarts = std::vector<core::EpochStart>;
constexpr auto kWait = CommitReports::kWait;

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

Entry E(LogId id, uint64_t epoch) {
  return Entry{id, 1000 + static_cast<int64_t>(id), "m" + std::to_string(id), epoch};
}

class NodeLogTest : public ::testing::Test {
 protected:
  NodeLogOptions Options(bool persistent = true) {
    NodeLogOptions options;
    if (persistent) {
      options.data_dir = "/data";
      options.fs = &fs_;
    }
    return options;
  }
  Result<std::unique_ptr<NodeLog>> Open(NodeLogOptions options) {
    return NodeLog::Open(
        std::move(options), [this](LogId n) { reports_.Durable(n); },
        [this](const Status& s) { reports_.Error(s); });
  }
  std::unique_ptr<NodeLog> OpenOk(NodeLogOptions options) {
    auto log = Open(std::move(options));
    EXPECT_TRUE(log.ok()) << log.status().message();
    return log.ok() ? std::move(log.value()) : nullptr;
  }
  // A log with identity ("log-n", epoch) holding ids 1..n of that epoch, all reported durable.
  std::unique_ptr<NodeLog> NewLog(LogId n, uint64_t epoch = 1, bool persistent = true) {
    auto log = OpenOk(Options(persistent));
    EXPECT_TRUE(log->SetIdentity("log-n", epoch).ok());
    for (LogId id = 1; id <= n; ++id) {
      EXPECT_EQ(log->AppendNext(epoch, 1000 + id, "m" + std::to_string(id)).value(), id);
    }
    if (persistent && n > 0) {
      EXPECT_TRUE(reports_.WaitDurable(n));
    }
    return log;
  }
  static std::vector<Entry> All(const NodeLog& log) {
    return log.memory().Read(1, SIZE_MAX, UINT64_MAX);
  }
  static std::vector<LogId> Ids(const NodeLog& log) {
    std::vector<LogId> ids;
    for (const Entry& e : All(log)) ids.push_back(e.id);
    return ids;
  }
  static std::vector<LogId> Range(LogId first, LogId last) {
    std::vector<LogId> ids;
    for (LogId id = first; id <= last; ++id) ids.push_back(id);
    return ids;
  }
  static const std::string& Segment1() {
    static const std::string path = "/data/wal/" + SegmentFileName(1);
    return path;
  }

  FaultInjectionFileSystem fs_;
  CommitReports reports_;
};

// --- The same rules in memory and on disk ------------------------------------------------------

class NodeLogBothModes : public NodeLogTest, public ::testing::WithParamInterface<bool> {
 protected:
  bool persistent() const { return GetParam(); }
};

INSTANTIATE_TEST_SUITE_P(MemoryAndDisk, NodeLogBothModes, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "Disk" : "Memory"; });

TEST_P(NodeLogBothModes, AppendNextGivesDenseIdsWithTheirEpochs) {
  auto log = NewLog(0, 3, persistent());
  EXPECT_EQ(log->persistent(), persistent());
  EXPECT_EQ(log->AppendNext(2, 10, "old master's").value(), 1u);  // Older than accepted: fine.
  EXPECT_EQ(log->AppendNext(3, 11, "a").value(), 2u);
  EXPECT_EQ(log->AppendNext(3, 12, "b").value(), 3u);
  EXPECT_EQ(log->last_id(), 3u);
  EXPECT_EQ(All(*log)[2].message, "b");
  EXPECT_EQ(All(*log)[2].timestamp_ms, 12);
  EXPECT_EQ(log->memory().EpochStarts(), (EpochStarts{{2, 1}, {3, 2}}));
  EXPECT_EQ(log->memory().LastEpoch(), 3u);
}

TEST_P(NodeLogBothModes, AppendNextRefusesEpochsOutOfOrderAndAppendsNothing) {
  auto log = NewLog(2, 3, persistent());
  const auto newer = log->AppendNext(4, 0, "x");
  EXPECT_EQ(newer.status().code(), Status::Code::kInvalidArgument);
  EXPECT_TRUE(Contains(newer.status().message(), "newer than the log's epoch 3"))
      << newer.status().message();
  ASSERT_EQ(log->AppendNext(3, 0, "x").value(), 3u);
  ASSERT_TRUE(log->SetIdentity("log-n", 5).ok());
  ASSERT_EQ(log->AppendNext(5, 0, "y").value(), 4u);
  const auto older = log->AppendNext(3, 0, "z");
  EXPECT_EQ(older.status().code(), Status::Code::kInvalidArgument);
  EXPECT_TRUE(Contains(older.status().message(), "older than the entry before it"));
  EXPECT_EQ(log->last_id(), 4u);
  EXPECT_TRUE(log->status().ok());  // A refused append does not stop anything.
  EXPECT_EQ(log->AppendNext(5, 0, "w").value(), 5u);
}

TEST_P(NodeLogBothModes, SetIdentityFollowsTheLogIdentityRules) {
  auto log = NewLog(0, 3, persistent());
  EXPECT_EQ(log->log_id(), "log-n");
  EXPECT_EQ(log->epoch(), 3u);
  const Status older = log->SetIdentity("log-n", 2);
  EXPECT_EQ(older.code(), Status::Code::kFailedPrecondition);
  EXPECT_EQ(older.message(), "epoch 2 is older than the accepted epoch 3");
  EXPECT_EQ(log->SetIdentity("", 3).code(), Status::Code::kInvalidArgument);
  ASSERT_TRUE(log->SetIdentity("log-other", 1).ok());  // Holds nothing: may start over.
  EXPECT_EQ(log->log_id(), "log-other");
  EXPECT_EQ(log->epoch(), 1u);
  ASSERT_EQ(log->AppendNext(1, 0, "a").value(), 1u);
  EXPECT_EQ(log->SetIdentity("log-n", 9).code(), Status::Code::kFailedPrecondition);
  EXPECT_EQ(log->SetIdentity("log-other", 0).code(), Status::Code::kFailedPrecondition);
  EXPECT_EQ(log->epoch(), 1u);
  ASSERT_TRUE(log->SetIdentity("log-other", 2).ok());
  EXPECT_EQ(log->AppendNext(2, 0, "b").value(), 2u);  // The log still takes entries.
  EXPECT_TRUE(log->status().ok());
}

TEST_P(NodeLogBothModes, ApplyMakesOnlyContiguousIdsVisible) {
  auto log = NewLog(0, 2, persistent());
  EXPECT_EQ(log->Apply({E(3, 2), E(4, 2)}).value(), 0u);
  EXPECT_EQ(log->memory().held_back(), 2u);
  EXPECT_EQ(log->Apply({E(1, 1)}).value(), 1u);
  EXPECT_EQ(log->Apply({E(2, 2), E(1, 1)}).value(), 4u);
  EXPECT_EQ(Ids(*log), Range(1, 4));
  EXPECT_EQ(log->memory().EpochStarts(), (EpochStarts{{1, 1}, {2, 2}}));
}

TEST_P(NodeLogBothModes, ApplyRefusesAnEpochGoingBackwardsAndKeepsWhatCameBefore) {
  auto log = NewLog(0, 3, persistent());
  const auto applied = log->Apply({E(1, 2), E(2, 3), E(3, 2), E(4, 3)});
  EXPECT_EQ(applied.status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(applied.status().message(),
            "entry 3 refused: its epoch is older than the entry before it (a history no master "
            "wrote); the log ends at 2");
  EXPECT_EQ(log->last_id(), 2u);
  EXPECT_EQ(log->Apply({E(3, 3)}).value(), 4u);  // The right entry closes the gap.
  EXPECT_TRUE(log->status().ok());
}

TEST_P(NodeLogBothModes, ApplyRefusesABatchWithAnEpochNewerThanAccepted) {
  auto log = NewLog(0, 3, persistent());
  EXPECT_EQ(log->Apply({E(1, 3), E(2, 4)}).status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(log->last_id(), 0u);
  EXPECT_EQ(log->memory().held_back(), 0u);
}

TEST_P(NodeLogBothModes, TruncateAfterDropsTheTailAndHeldBackEntriesAndKeepsTheIdentity) {
  auto log = NewLog(5, 4, persistent());
  ASSERT_EQ(log->Apply({E(9, 4)}).value(), 5u);  // Held back.
  EXPECT_EQ(log->TruncateAfter(6).code(), Status::Code::kInvalidArgument);
  ASSERT_TRUE(log->TruncateAfter(2).ok());
  EXPECT_EQ(log->last_id(), 2u);
  EXPECT_EQ(log->durable_id(), 2u);
  EXPECT_EQ(log->memory().held_back(), 0u);
  EXPECT_EQ(log->memory().EpochStarts(), (EpochStarts{{4, 1}}));
  EXPECT_EQ(log->log_id(), "log-n");
  EXPECT_EQ(log->epoch(), 4u);
  EXPECT_EQ(log->AppendNext(4, 0, "again").value(), 3u);
  ASSERT_TRUE(log->TruncateAfter(0).ok());
  EXPECT_EQ(log->last_id(), 0u);
  EXPECT_EQ(log->durable_id(), 0u);
  EXPECT_EQ(log->memory().EpochStarts(), EpochStarts{});
  EXPECT_EQ(log->epoch(), 4u);
  EXPECT_EQ(log->AppendNext(4, 0, "again").value(), 1u);
}

// --- In memory ---------------------------------------------------------------------------------

TEST_F(NodeLogTest, InMemoryEverythingIsDurableAtOnceAndNoCallbackRuns) {
  auto log = OpenOk(Options(/*persistent=*/false));
  EXPECT_FALSE(log->persistent());
  EXPECT_EQ(log->log_id(), "");
  EXPECT_EQ(log->epoch(), 0u);
  EXPECT_FALSE(log->recovered_existing());
  EXPECT_TRUE(log->moved_aside().ok());
  ASSERT_TRUE(log->SetIdentity("log-m", 2).ok());
  ASSERT_TRUE(log->AppendNext(2, 1, "a").ok());
  ASSERT_TRUE(log->Apply({E(2, 2), E(3, 2)}).ok());
  EXPECT_EQ(log->durable_id(), 3u);
  log.reset();
  EXPECT_TRUE(reports_.seen().empty());
  EXPECT_TRUE(reports_.errors().empty());
}

// --- With a data directory ---------------------------------------------------------------------

TEST_F(NodeLogTest, NewDirectoryHasNoIdentityAndRefusesEntriesUntilItGetsOne) {
  auto log = OpenOk(Options());
  EXPECT_TRUE(log->persistent());
  EXPECT_FALSE(log->recovered_existing());
  EXPECT_EQ(fs_.ListDir("/data").value(), (std::vector<std::string>{"LOCK", "wal"}));
  EXPECT_EQ(log->AppendNext(0, 0, "a").status().code(), Status::Code::kFailedPrecondition);
  EXPECT_EQ(log->Apply({E(1, 0)}).status().code(), Status::Code::kFailedPrecondition);
  EXPECT_EQ(log->last_id(), 0u);
  ASSERT_TRUE(log->SetIdentity("log-n", 1).ok());
  EXPECT_EQ(log->AppendNext(1, 0, "a").value(), 1u);
}

TEST_F(NodeLogTest, EntriesEpochsAndIdentitySurviveARestart) {
  {
    auto log = NewLog(0, 2);
    ASSERT_TRUE(log->Apply({E(1, 1), E(2, 1)}).ok());  // Copied from a peer.
    ASSERT_TRUE(log->AppendNext(2, 77, "mine").ok());
    ASSERT_TRUE(log->SetIdentity("log-n", 5).ok());  // A newer master.
    ASSERT_TRUE(log->AppendNext(5, 78, "newer").ok());
  }  // Flushes and syncs.
  auto log = OpenOk(Options());
  EXPECT_TRUE(log->recovered_existing());
  EXPECT_EQ(log->log_id(), "log-n");
  EXPECT_EQ(log->epoch(), 5u);
  EXPECT_EQ(log->last_id(), 4u);
  EXPECT_EQ(log->durable_id(), 4u);
  EXPECT_EQ(log->recovery().entries, 4u);
  const std::vector<Entry> all = All(*log);
  EXPECT_EQ(all[2].message, "mine");
  EXPECT_EQ(all[2].timestamp_ms, 77);
  EXPECT_EQ(all[3].epoch, 5u);
  EXPECT_EQ(log->memory().EpochStarts(), (EpochStarts{{1, 1}, {2, 3}, {5, 4}}));
  EXPECT_EQ(log->AppendNext(5, 0, "next").value(), 5u);
}

TEST_F(NodeLogTest, IdempotencyKeysSurviveARestartAndTheNewestAreKept) {
  NodeLogOptions options = Options();
  options.idempotency_keys = 2;
  {
    auto log = OpenOk(options);
    ASSERT_TRUE(log->SetIdentity("log-n", 1).ok());
    ASSERT_TRUE(log->AppendNext(1, 1, "a", "k1").ok());
    ASSERT_TRUE(log->AppendNext(1, 2, "b").ok());
    Entry copied = E(3, 1);
    copied.idempotency_key = "k3";
    ASSERT_TRUE(log->Apply({copied}).ok());  // Keys copied from a peer are kept too.
    ASSERT_TRUE(log->AppendNext(1, 4, "d", "k4").ok());
    EXPECT_EQ(log->memory().Keys().size(), 2u);
  }  // Flushes and syncs.
  auto log = OpenOk(options);
  ASSERT_EQ(log->last_id(), 4u);
  const std::vector<MemoryLog::KeyedId> keys = log->memory().Keys();
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys[0].id, 3u);
  EXPECT_EQ(keys[0].key, "k3");
  EXPECT_EQ(keys[1].id, 4u);
  EXPECT_EQ(keys[1].key, "k4");
  options.idempotency_keys = 10;  // Every key is on disk: a larger capacity finds them all.
  log.reset();
  log = OpenOk(options);
  EXPECT_EQ(log->memory().Keys().size(), 3u);
  EXPECT_EQ(All(*log)[0].idempotency_key, "k1");
}

TEST_F(NodeLogTest, CopiedEntriesKeepTheirKeysOnDiskBeyondWhatMemoryKeeps) {
  NodeLogOptions options = Options();
  options.idempotency_keys = 0;  // This node keeps no key in memory.
  {
    auto log = OpenOk(options);
    ASSERT_TRUE(log->SetIdentity("log-n", 1).ok());
    Entry a = E(1, 1), b = E(2, 1);
    b.idempotency_key = "k2";
    ASSERT_TRUE(log->Apply({b, a}).ok());  // Any order.
    EXPECT_TRUE(log->memory().Keys().empty());
  }
  options.idempotency_keys = 10;
  auto log = OpenOk(options);
  ASSERT_EQ(log->memory().Keys().size(), 1u);
  EXPECT_EQ(log->memory().Keys()[0].id, 2u);
  EXPECT_EQ(log->memory().Keys()[0].key, "k2");
}

TEST_F(NodeLogTest, OnDurableReportsInOrderAndDurableIdFollowsIt) {
  auto log = NewLog(0);
  fs_.BlockSyncs();
  ASSERT_EQ(log->AppendNext(1, 0, "a").value(), 1u);
  ASSERT_TRUE(fs_.WaitForBlockedSyncs(1, kWait));  // The sync for id 1 is in flight.
  for (LogId id = 2; id <= 30; ++id) ASSERT_EQ(log->AppendNext(1, 0, "b").value(), id);
  EXPECT_EQ(log->durable_id(), 0u);  // Nothing synced yet: nothing may be acknowledged.
  EXPECT_EQ(log->last_id(), 30u);
  fs_.UnblockSyncs();
  ASSERT_TRUE(reports_.WaitDurable(30));
  EXPECT_EQ(reports_.seen(), (std::vector<LogId>{1, 30}));
  EXPECT_EQ(log->durable_id(), 30u);
}

TEST_F(NodeLogTest, CloseSyncsWhatIsQueuedAndNoCallbackComesAfterIt) {
  auto log = NewLog(0);
  fs_.BlockSyncs();
  ASSERT_EQ(log->AppendNext(1, 0, "a").value(), 1u);
  ASSERT_TRUE(fs_.WaitForBlockedSyncs(1, kWait));
  for (LogId id = 2; id <= 10; ++id) ASSERT_EQ(log->AppendNext(1, 0, "b").value(), id);
  std::thread unblock([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    fs_.UnblockSyncs();
  });
  log->Close();  // Waits for the blocked sync and the flush of 2..10.
  unblock.join();
  ASSERT_FALSE(reports_.seen().empty()) << "nothing reported before Close returned";
  EXPECT_EQ(reports_.seen().back(), 10u) << "reported before Close returned";
  EXPECT_EQ(log->durable_id(), 10u);
  size_t reports = reports_.seen().size();
  Result<LogId> after = log->AppendNext(1, 0, "c");
  EXPECT_EQ(after.status().code(), Status::Code::kFailedPrecondition) << after.status().message();
  EXPECT_EQ(log->Apply({E(11, 1)}).status().code(), Status::Code::kFailedPrecondition);
  EXPECT_EQ(log->last_id(), 10u);
  log.reset();
  EXPECT_EQ(reports_.seen().size(), reports) << "a callback after Close";
}

// Close leaves the WAL as a clean stop should, before any destructor runs (the process ends with
// _Exit): no preallocated zeros for the next start to report as a torn tail, and nothing more
// written.
TEST_F(NodeLogTest, CloseCutsThePreallocatedZerosAndRefusesEveryChangeAfter) {
  NodeLogOptions options = Options();
  options.wal.preallocate_bytes = 4096;
  auto log = OpenOk(options);
  ASSERT_TRUE(log->SetIdentity("log-n", 1).ok());
  for (LogId id = 1; id <= 5; ++id) ASSERT_EQ(log->AppendNext(1, 0, "m").value(), id);
  ASSERT_TRUE(reports_.WaitDurable(5));
  const std::string before = fs_.Contents(Segment1()).value();
  ASSERT_EQ(before.size(), 4096u) << "preallocated";
  const size_t used = before.find_last_not_of('\0') + 1;
  log->Close();
  EXPECT_EQ(fs_.Contents(Segment1()).value().size(), used);
  EXPECT_EQ(log->SetIdentity("log-n", 2).code(), Status::Code::kFailedPrecondition);
  EXPECT_EQ(log->TruncateAfter(3).code(), Status::Code::kFailedPrecondition);
  EXPECT_EQ(log->MarkEpochStart(7).code(), Status::Code::kFailedPrecondition);
  EXPECT_EQ(fs_.Contents(Segment1()).value().size(), used);
  EXPECT_EQ(Ids(*log), Range(1, 5)) << "nothing changed in memory either";
  EXPECT_EQ(log->epoch(), 1u);
  log->Close();  // Twice is fine.
  log.reset();
  auto reopened = OpenOk(options);
  EXPECT_EQ(Ids(*reopened), Range(1, 5));
  EXPECT_EQ(reopened->recovery().truncated_bytes, 0u);
  EXPECT_EQ(reopened->epoch(), 1u);
}

TEST_F(NodeLogTest, ApplyQueuesOnlyTheIdsThatBecameContiguous) {
  {
    auto log = NewLog(0);
    ASSERT_EQ(log->Apply({E(2, 1), E(3, 1)}).value(), 0u);  // Queued, they would be refused.
    ASSERT_EQ(log->Apply({E(1, 1)}).value(), 3u);
    ASSERT_TRUE(reports_.WaitDurable(3));
    ASSERT_EQ(log->Apply({E(6, 1), E(5, 1)}).value(), 3u);  // Held back at shutdown.
    EXPECT_TRUE(log->status().ok());
    EXPECT_EQ(log->durable_id(), 3u);
  }
  auto log = OpenOk(Options());
  EXPECT_EQ(Ids(*log), Range(1, 3));
}

// As a sentinel runs it (node_storage.cc): Apply writes, syncs and reports before it returns,
// and the rounds survive a SetIdentity (a new committer) and a restart.
TEST_F(NodeLogTest, WithRoundsOnTheCallerApplyIsDurableWhenItReturns) {
  NodeLogOptions options = Options();
  options.rounds_on_caller = true;
  {
    auto log = OpenOk(options);
    ASSERT_TRUE(log->SetIdentity("log-r", 1).ok());
    ASSERT_EQ(log->Apply({E(1, 1), E(2, 1)}).value(), 2u);
    EXPECT_EQ(log->durable_id(), 2u);
    EXPECT_EQ(reports_.seen(), std::vector<LogId>{2});  // Reported inside Apply.
    ASSERT_TRUE(log->SetIdentity("log-r", 2).ok());
    ASSERT_EQ(log->Apply({E(3, 2)}).value(), 3u);
    EXPECT_EQ(log->durable_id(), 3u);
  }
  auto log = OpenOk(options);
  EXPECT_EQ(Ids(*log), Range(1, 3));
  EXPECT_EQ(log->epoch(), 2u);
}

// Ids reported durable survive a power loss in the middle of later syncs (fsync: always). The
// check is shown to be able to fail by acknowledging before the fsync.
std::vector<std::string> PowerLossRounds(bool ack_before_sync, uint64_t seed) {
  std::mt19937_64 rng(seed);
  FaultInjectionFileSystem fs;
  DurabilityChecker checker;
  std::vector<std::string> problems;
  uint64_t blocked = 0;
  for (int round = 0; round < 15; ++round) {
    NodeLogOptions options;
    options.data_dir = "/data";
    options.fs = &fs;
    options.ack_before_sync_for_testing = ack_before_sync;
    options.wal.segment_bytes = 300;
    auto opened = NodeLog::Open(
        options, [&](LogId n) { checker.Acknowledged(n); }, nullptr);
    if (!opened.ok()) return {"open failed: " + opened.status().message()};
    NodeLog& log = *opened.value();
    const std::vector<Entry> recovered = log.memory().Read(1, SIZE_MAX, UINT64_MAX);
    for (std::string& p : checker.Check(recovered, DurabilityChecker::Crash::kPowerLoss)) {
      problems.push_back("round " + std::to_string(round) + ": " + p);
    }
    checker.Recovered(recovered);
    if (log.durable_id() != log.last_id()) return {"recovered entries not durable"};
    const uint64_t epoch = 1 + static_cast<uint64_t>(round) / 4;
    if (!log.SetIdentity("log-p", epoch).ok()) return {"identity"};
    auto append = [&] {
      Entry e{log.last_id() + 1, static_cast<int64_t>(rng()), std::to_string(rng()), epoch};
      checker.Written(std::span<const Entry>(&e, 1));
      return log.AppendNext(e.epoch, e.timestamp_ms, e.message);
    };
    for (uint64_t i = rng() % 6; i > 0; --i) {
      auto id = append();
      if (!id.ok() || !checker.WaitAcknowledged(id.value(), kWait)) return {"no ack"};
    }
    fs.BlockSyncs();
    for (uint64_t i = 1 + rng() % 4; i > 0; --i) (void)append();
    if (!fs.WaitForBlockedSyncs(++blocked, kWait)) return {"no sync in flight"};
    FaultInjectionFileSystem::PowerLoss how;
    how.tail = static_cast<FaultInjectionFileSystem::PowerLoss::Tail>(rng() % 3);
    how.random_directory_prefix = rng() % 2 == 0;
    how.seed = rng();
    fs.DropUnsyncedData(how);
    fs.UnblockSyncs();  // The held sync now fails: its process is gone.
  }
  return problems;
}

TEST(NodeLogPowerLoss, EveryIdReportedDurableSurvives) {
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    EXPECT_EQ(PowerLossRounds(/*ack_before_sync=*/false, seed), std::vector<std::string>{})
        << "seed " << seed;
  }
}

TEST(NodeLogPowerLoss, CheckCatchesAcknowledgementsBeforeTheSync) {
  bool caught = false;
  for (uint64_t seed = 1; seed <= 10 && !caught; ++seed) {
    const auto problems = PowerLossRounds(/*ack_before_sync=*/true, seed);
    caught = !problems.empty() && Contains(problems[0], "lost acknowledged write");
  }
  EXPECT_TRUE(caught);
}

class NodeLogWriteError : public NodeLogTest, public ::testing::WithParamInterface<int> {};

INSTANTIATE_TEST_SUITE_P(EnospcAndEio, NodeLogWriteError, ::testing::Values(ENOSPC, EIO),
                         [](const auto& info) { return info.param == ENOSPC ? "Enospc" : "Eio"; });

TEST_P(NodeLogWriteError, StopsTheLogAndItsEntriesAreNeitherServedNorRecovered) {
  const int err = GetParam();
  {
    auto log = NewLog(3);
    fs_.InjectError(Op::kWrite, 1, err, /*torn_bytes=*/20);
    ASSERT_EQ(log->AppendNext(1, 0, "lost").value(), 4u);  // Queued; the write fails later.
    ASSERT_TRUE(reports_.WaitError());
    EXPECT_TRUE(Contains(reports_.errors()[0],
                         err == ENOSPC ? "No space left on device" : "Input/output error"));
    EXPECT_EQ(log->last_id(), 3u);  // Cut back before on_error: never served as part of the log.
    EXPECT_EQ(log->durable_id(), 3u);
    ASSERT_FALSE(log->status().ok());
    const std::string stopped = log->status().message();
    EXPECT_EQ(log->AppendNext(1, 0, "refused").status().message(), stopped);
    EXPECT_EQ(log->Apply({E(4, 1)}).status().message(), stopped);
    EXPECT_EQ(log->TruncateAfter(1).message(), stopped);
    EXPECT_EQ(log->SetIdentity("log-n", 2).message(), stopped);
    EXPECT_EQ(log->last_id(), 3u);
  }
  auto log = OpenOk(Options());
  EXPECT_EQ(Ids(*log), Range(1, 3));
  EXPECT_EQ(log->recovery().truncated_bytes, 0u);  // The WAL cut its partial write back.
  EXPECT_EQ(reports_.errors().size(), 1u);
}

// Appends racing the committer's failure: whichever side sees it first, the memory log ends up
// holding exactly what the WAL holds (an append refused by the failed committer is taken out).
TEST(NodeLogWriteErrorRace, MemoryEndsWithExactlyWhatTheWalHolds) {
  std::mt19937_64 rng(7);
  for (int round = 0; round < 200; ++round) {
    FaultInjectionFileSystem fs;
    NodeLogOptions options;
    options.data_dir = "/data";
    options.fs = &fs;
    std::atomic<bool> failed{false};
    auto opened = NodeLog::Open(options, nullptr, [&](const Status&) { failed = true; });
    ASSERT_TRUE(opened.ok());
    std::unique_ptr<NodeLog> log = std::move(opened.value());
    ASSERT_TRUE(log->SetIdentity("log-race", 1).ok());
    fs.InjectError(Op::kWrite, 1 + rng() % 3, ENOSPC);
    while (log->AppendNext(1, 0, "m").ok()) {
    }
    while (!failed) std::this_thread::yield();  // on_error comes after the cut.
    const LogId served = log->last_id();
    log.reset();
    auto reopened = NodeLog::Open(options, nullptr, nullptr);
    ASSERT_TRUE(reopened.ok());
    ASSERT_EQ(served, reopened.value()->last_id()) << "round " << round;
  }
}

TEST_F(NodeLogTest, FailedFsyncIsReportedAndStopsTheLog) {
  auto log = NewLog(2);
  fs_.InjectError(Op::kSync, 1, EIO);
  ASSERT_TRUE(log->AppendNext(1, 0, "unknown").ok());
  ASSERT_TRUE(reports_.WaitError());
  EXPECT_TRUE(Contains(reports_.errors()[0], "never retry a failed fsync"));
  EXPECT_EQ(log->durable_id(), 2u);
  EXPECT_FALSE(log->AppendNext(1, 0, "x").ok());
}

TEST_F(NodeLogTest, TruncationIsDurableAndTheLogGoesOnAfterTheKeptPrefix) {
  NodeLogOptions options = Options();
  options.wal.segment_bytes = 200;  // Several segments to drop.
  {
    auto log = OpenOk(options);
    ASSERT_TRUE(log->SetIdentity("log-r", 4).ok());
    for (LogId id = 1; id <= 30; ++id) {  // One write each: several segments.
      ASSERT_TRUE(log->AppendNext(4, 0, "old").ok());
      ASSERT_TRUE(reports_.WaitDurable(id));
    }
    ASSERT_GT(fs_.ListDir("/data/wal").value().size(), 3u);
    ASSERT_TRUE(log->TruncateAfter(12).ok());
  }
  fs_.DropUnsyncedData();  // Durable on return.
  {
    auto log = OpenOk(options);
    EXPECT_EQ(Ids(*log), Range(1, 12));
    EXPECT_EQ(log->log_id(), "log-r");
    EXPECT_EQ(log->epoch(), 4u);
    EXPECT_EQ(log->AppendNext(4, 0, "new").value(), 13u);
    ASSERT_TRUE(reports_.WaitDurable(13));
  }
  auto log = OpenOk(options);
  ASSERT_EQ(Ids(*log), Range(1, 13));
  EXPECT_EQ(All(*log)[11].message, "old");
  EXPECT_EQ(All(*log)[12].message, "new");
}

// Flush returns only once every queued entry is durable: checked on the flushing thread while
// the fsync it waits for is held, then let go.
TEST_F(NodeLogTest, FlushReturnsOnceEverythingQueuedIsDurable) {
  auto log = NewLog(2);
  fs_.BlockSyncs();
  ASSERT_TRUE(log->AppendNext(1, 0, "in flight").ok());
  ASSERT_TRUE(fs_.WaitForBlockedSyncs(1, kWait));
  ASSERT_TRUE(log->AppendNext(1, 0, "queued").ok());
  Status flushed = Status::Unavailable("not returned");
  LogId durable_after = 0;
  std::thread flusher([&] {
    flushed = log->Flush();
    durable_after = log->durable_id();
  });
  fs_.UnblockSyncs();
  flusher.join();
  EXPECT_TRUE(flushed.ok()) << flushed.message();
  EXPECT_EQ(durable_after, 4u);
  ASSERT_TRUE(reports_.WaitDurable(4));
  EXPECT_EQ(log->AppendNext(1, 0, "after").value(), 5u);  // A committer runs again.
  ASSERT_TRUE(reports_.WaitDurable(5));
}

TEST_F(NodeLogTest, TruncationAlsoDropsEntriesStillQueued) {
  auto log = NewLog(2);
  fs_.BlockSyncs();
  ASSERT_TRUE(log->AppendNext(1, 0, "in flight").ok());
  ASSERT_TRUE(fs_.WaitForBlockedSyncs(1, kWait));
  ASSERT_TRUE(log->AppendNext(1, 0, "queued").ok());  // Waits behind the held sync.
  fs_.UnblockSyncs();
  ASSERT_TRUE(log->TruncateAfter(1).ok());
  EXPECT_EQ(log->last_id(), 1u);
  EXPECT_EQ(log->durable_id(), 1u);
  log.reset();
  auto reopened = OpenOk(Options());
  EXPECT_EQ(Ids(*reopened), Range(1, 1));
  EXPECT_EQ(reopened->log_id(), "log-n");
}

TEST_F(NodeLogTest, FailedTruncationStopsTheLog) {
  auto log = NewLog(5);
  fs_.InjectError(Op::kTruncate, 1, EIO);
  const Status cut = log->TruncateAfter(2);
  EXPECT_TRUE(Contains(cut.message(), "Input/output error")) << cut.message();
  EXPECT_EQ(log->status().message(), cut.message());
  EXPECT_EQ(log->last_id(), 2u);
  EXPECT_EQ(log->AppendNext(1, 0, "x").status().message(), cut.message());
  log.reset();
  auto reopened = OpenOk(Options());
  EXPECT_EQ(Ids(*reopened), Range(1, 5));  // Nothing was cut on disk.
}

TEST_F(NodeLogTest, FailedEpochChangeKeepsTheOldEpochAndTheLogGoesOn) {
  auto log = NewLog(3, 2);
  fs_.InjectError(Op::kCreate, 1, ENOSPC);  // The new segment for epoch 3.
  EXPECT_FALSE(log->SetIdentity("log-n", 3).ok());
  EXPECT_EQ(log->epoch(), 2u);
  EXPECT_TRUE(log->status().ok());
  EXPECT_EQ(log->AppendNext(3, 0, "x").status().code(), Status::Code::kInvalidArgument);
  ASSERT_EQ(log->AppendNext(2, 0, "x").value(), 4u);
  ASSERT_TRUE(reports_.WaitDurable(4));
  ASSERT_TRUE(log->SetIdentity("log-n", 3).ok());
  EXPECT_EQ(log->epoch(), 3u);
}

// The write that fails may be the committer's last one, in the flush SetIdentity waits for:
// SetIdentity must then report it and leave the identity alone.
TEST_F(NodeLogTest, WriteFailingDuringTheFlushOfSetIdentityIsReported) {
  auto log = NewLog(1, 2);
  fs_.BlockSyncs();
  ASSERT_TRUE(log->AppendNext(2, 0, "synced").ok());
  ASSERT_TRUE(fs_.WaitForBlockedSyncs(1, kWait));
  ASSERT_TRUE(log->AppendNext(2, 0, "fails").ok());  // Written after the held sync.
  fs_.InjectError(Op::kWrite, 1, ENOSPC);
  std::thread unblock([this] { fs_.UnblockSyncs(); });
  const Status s = log->SetIdentity("log-n", 3);
  unblock.join();
  EXPECT_TRUE(Contains(s.message(), "No space left on device")) << s.message();
  EXPECT_EQ(log->epoch(), 2u);
  EXPECT_EQ(log->last_id(), 2u);
  log.reset();
  log = OpenOk(Options());
  EXPECT_EQ(log->epoch(), 2u);
  EXPECT_EQ(Ids(*log), Range(1, 2));
}

TEST_F(NodeLogTest, NewerEpochIsDurableBeforeSetIdentityReturns) {
  auto log = NewLog(3, 2);
  ASSERT_TRUE(log->SetIdentity("log-n", 6).ok());
  fs_.DropUnsyncedData();
  log.reset();
  log = OpenOk(Options());
  EXPECT_EQ(log->epoch(), 6u);
  EXPECT_EQ(Ids(*log), Range(1, 3));
}

TEST_F(NodeLogTest, CorruptMiddleRecordFailsOpenNamingFileAndOffset) {
  NewLog(10).reset();
  const uint64_t header = EncodeSegmentHeader({1, 1, "log-n"}).size();
  const uint64_t fourth = header + 3 * (kRecordHeaderBytes + 2);  // "m1".."m9": 2 bytes each.
  ASSERT_TRUE(fs_.Corrupt(Segment1(), fourth + kRecordHeaderBytes, "?").ok());
  auto log = Open(Options());
  ASSERT_FALSE(log.ok());
  EXPECT_EQ(log.status().code(), Status::Code::kCorruption);
  EXPECT_EQ(log.status().message(),
            "WAL segment " + Segment1() + " at offset " + std::to_string(fourth) +
                ": checksum mismatch, and valid records follow (not a torn tail)");
  EXPECT_EQ(fs_.ListDir("/data").value(), (std::vector<std::string>{"LOCK", "wal"}));  // Alone.
}

TEST_F(NodeLogTest, CorruptWalIsMovedAsideWhenConfiguredAndTheNodeStartsEmpty) {
  NewLog(10).reset();
  const std::string before = fs_.Contents(Segment1()).value();
  const uint64_t header = EncodeSegmentHeader({1, 1, "log-n"}).size();
  ASSERT_TRUE(fs_.Corrupt(Segment1(), header + kRecordHeaderBytes, "?").ok());
  NodeLogOptions options = Options();
  options.move_aside_corrupt = true;
  {
    auto log = OpenOk(options);
    EXPECT_EQ(log->moved_aside().code(), Status::Code::kCorruption);
    EXPECT_TRUE(Contains(log->moved_aside().message(), Segment1() + " at offset "));
    EXPECT_EQ(log->last_id(), 0u);  // Nothing recovery handed over before the damage stays.
    EXPECT_FALSE(log->recovered_existing());
    EXPECT_EQ(log->log_id(), "");
    const std::vector<std::string> names = fs_.ListDir("/data").value();
    ASSERT_EQ(names.size(), 3u);
    EXPECT_EQ(names[0], "LOCK");
    EXPECT_EQ(names[1], "wal");
    ASSERT_TRUE(names[2].starts_with("wal.corrupt-")) << names[2];
    const std::string aside = "/data/" + names[2] + "/" + SegmentFileName(1);
    EXPECT_EQ(fs_.Contents(aside).value().size(), before.size());  // Kept for a post-mortem.
    ASSERT_TRUE(log->SetIdentity("log-n", 1).ok());
    ASSERT_EQ(log->Apply({E(1, 1)}).value(), 1u);  // A sentinel fetches the log again.
    ASSERT_TRUE(reports_.WaitDurable(1));
  }
  fs_.DropUnsyncedData();
  auto log = OpenOk(options);
  EXPECT_TRUE(log->moved_aside().ok());
  EXPECT_EQ(Ids(*log), Range(1, 1));
  EXPECT_EQ(fs_.ListDir("/data").value().size(), 3u);  // LOCK, wal and the one moved aside.
}

// --- Epoch marks ---------------------------------------------------------------------------

// A master takes over a log of epoch-1 entries at epoch 3: its log ends where its own entries
// will start, and ranks with epoch 3 from then on, in its history too.
TEST_P(NodeLogBothModes, MarkAtTheEndRanksTheLogWithTheAcceptedEpoch) {
  auto log = NewLog(4, 1, persistent());
  ASSERT_TRUE(log->SetIdentity("log-n", 3).ok());
  EXPECT_EQ(log->LastEpoch(), 1u);
  ASSERT_TRUE(log->MarkEpochStart(5).ok());
  EXPECT_EQ(log->LastEpoch(), 3u);
  EXPECT_EQ(log->DurableLastEpoch(), 3u);
  EXPECT_EQ(log->memory().LastEpoch(), 1u);  // No entry of epoch 3 yet.
  EXPECT_EQ(log->EpochStarts(), (EpochStarts{{1, 1}, {3, 5}}));
  ASSERT_TRUE(log->MarkEpochStart(5).ok());  // Again (a second Hello): the same.
  EXPECT_EQ(log->EpochStarts(), (EpochStarts{{1, 1}, {3, 5}}));
  // Its own entries start the same step; older ones may not follow the mark.
  EXPECT_EQ(log->AppendNext(2, 0, "older").status().code(), Status::Code::kInvalidArgument);
  ASSERT_EQ(log->AppendNext(3, 0, "own").value(), 5u);
  EXPECT_EQ(log->LastEpoch(), 3u);
  EXPECT_EQ(log->EpochStarts(), (EpochStarts{{1, 1}, {3, 5}}));
}

// A new log, or one already past the epoch's start, needs no mark.
TEST_P(NodeLogBothModes, NoMarkForANewLogOrOnePastTheEpochsStart) {
  auto log = NewLog(0, 2, persistent());
  ASSERT_TRUE(log->MarkEpochStart(1).ok());
  EXPECT_EQ(log->LastEpoch(), 0u);
  EXPECT_TRUE(log->EpochStarts().empty());
  ASSERT_TRUE(log->Apply({E(1, 1), E(2, 2), E(3, 2)}).ok());
  ASSERT_TRUE(log->MarkEpochStart(2).ok());
  EXPECT_EQ(log->EpochStarts(), (EpochStarts{{1, 1}, {2, 2}}));
}

// A sentinel behind the master: the mark waits for the entries that reach it, then goes with
// them; entries past it carry the epoch themselves.
TEST_P(NodeLogBothModes, MarkWaitsForTheEntriesThatReachIt) {
  auto log = NewLog(2, 1, persistent());
  ASSERT_TRUE(log->SetIdentity("log-n", 2).ok());
  ASSERT_TRUE(log->MarkEpochStart(6).ok());
  EXPECT_EQ(log->LastEpoch(), 1u);
  ASSERT_EQ(log->Apply({E(3, 1), E(4, 1)}).value(), 4u);
  EXPECT_EQ(log->LastEpoch(), 1u);
  ASSERT_EQ(log->Apply({E(5, 1)}).value(), 5u);
  EXPECT_EQ(log->LastEpoch(), 2u);
  if (persistent()) {
    ASSERT_TRUE(reports_.WaitDurable(5));
  }
  EXPECT_EQ(log->DurableLastEpoch(), 2u);
  EXPECT_EQ(log->EpochStarts(), (EpochStarts{{1, 1}, {2, 6}}));
}

TEST_P(NodeLogBothModes, EntriesPastTheEpochsStartNeedNoMark) {
  auto past = NewLog(2, 1, persistent());
  ASSERT_TRUE(past->SetIdentity("log-n", 2).ok());
  ASSERT_TRUE(past->MarkEpochStart(4).ok());
  ASSERT_EQ(past->Apply({E(3, 1), E(4, 2)}).value(), 4u);
  EXPECT_EQ(past->EpochStarts(), (EpochStarts{{1, 1}, {2, 4}}));
  ASSERT_TRUE(past->TruncateAfter(3).ok());
  EXPECT_EQ(past->LastEpoch(), 1u);  // Nothing marked: the entry said it.
}

// The deferred mark is durable with its entries and not before: a log reported durable up to the
// mark's place recovers it, a power loss before the sync loses both.
TEST_F(NodeLogTest, DeferredMarkIsDurableWithItsEntriesAndSurvivesARestart) {
  {
    auto log = NewLog(2);
    ASSERT_TRUE(log->SetIdentity("log-n", 2).ok());
    ASSERT_TRUE(log->MarkEpochStart(5).ok());
    fs_.BlockSyncs();
    ASSERT_EQ(log->Apply({E(3, 1), E(4, 1)}).value(), 4u);
    ASSERT_TRUE(fs_.WaitForBlockedSyncs(1, kWait));
    EXPECT_EQ(log->LastEpoch(), 2u);
    EXPECT_EQ(log->durable_id(), 2u);
    EXPECT_EQ(log->DurableLastEpoch(), 1u);  // Reported to a master taking over: not yet.
    fs_.DropUnsyncedData();
    fs_.UnblockSyncs();
  }
  {
    auto log = OpenOk(Options());
    EXPECT_EQ(log->last_id(), 2u);
    EXPECT_EQ(log->LastEpoch(), 1u);
    ASSERT_TRUE(log->MarkEpochStart(5).ok());
    ASSERT_EQ(log->Apply({E(3, 1), E(4, 1)}).value(), 4u);
    ASSERT_TRUE(reports_.WaitDurable(4));
    EXPECT_EQ(log->DurableLastEpoch(), 2u);
  }
  fs_.DropUnsyncedData();
  auto log = OpenOk(Options());
  EXPECT_EQ(log->last_id(), 4u);
  EXPECT_EQ(log->LastEpoch(), 2u);
  EXPECT_EQ(log->DurableLastEpoch(), 2u);
  EXPECT_EQ(log->EpochStarts(), (EpochStarts{{1, 1}, {2, 5}}));
}

// A mark written at once is durable on return.
TEST_F(NodeLogTest, MarkAtTheEndIsDurableOnReturn) {
  {
    auto log = NewLog(3);
    ASSERT_TRUE(log->SetIdentity("log-n", 4).ok());
    ASSERT_TRUE(log->MarkEpochStart(4).ok());
  }
  fs_.DropUnsyncedData();
  auto log = OpenOk(Options());
  EXPECT_EQ(log->DurableLastEpoch(), 4u);
  EXPECT_EQ(log->EpochStarts(), (EpochStarts{{1, 1}, {4, 4}}));
}

// Entries held back for a gap came from the master before the Hello that truncates: even when
// nothing contiguous goes, they go, and the new master's entries for those ids take their place.
TEST_P(NodeLogBothModes, TruncationDropsHeldBackEntriesEvenWhenNothingElseGoes) {
  auto log = OpenOk(Options(persistent()));
  ASSERT_TRUE(log->SetIdentity("log-n", 1).ok());
  ASSERT_EQ(log->Apply({E(1, 1), E(2, 1)}).value(), 2u);
  ASSERT_EQ(log->Apply({E(4, 1), E(5, 1)}).value(), 2u);  // Held back: 3 is missing.
  ASSERT_EQ(log->memory().held_back(), 2u);
  ASSERT_TRUE(log->TruncateAfter(2, EpochStarts{{1, 1}, {2, 4}}).ok());
  EXPECT_EQ(log->memory().held_back(), 0u);
  ASSERT_TRUE(log->SetIdentity("log-n", 2).ok());
  ASSERT_EQ(log->Apply({E(3, 1)}).value(), 3u);           // The new master's copy of 3 ...
  ASSERT_EQ(log->Apply({E(4, 2), E(5, 2)}).value(), 5u);  // ... and its own 4 and 5.
  std::vector<uint64_t> epochs;
  for (const Entry& e : All(*log)) epochs.push_back(e.epoch);
  EXPECT_EQ(epochs, (std::vector<uint64_t>{1, 1, 1, 2, 2}));
}

// A take-over that wrote no entry, then the next master's promise: the mark still ranks the log
// after a power loss, as the node reported while it ran.
TEST_F(NodeLogTest, MarkOfAnEpochWithoutEntriesSurvivesTheNextEpoch) {
  {
    auto log = NewLog(3);
    ASSERT_TRUE(log->SetIdentity("log-n", 4).ok());
    ASSERT_TRUE(log->MarkEpochStart(4).ok());
    ASSERT_TRUE(log->SetIdentity("log-n", 5).ok());
    EXPECT_EQ(log->DurableLastEpoch(), 4u);
  }
  fs_.DropUnsyncedData();
  auto log = OpenOk(Options());
  EXPECT_EQ(log->epoch(), 5u);
  EXPECT_EQ(log->DurableLastEpoch(), 4u);
  EXPECT_EQ(log->EpochStarts(), (EpochStarts{{1, 1}, {4, 4}}));
}

// A truncation keeps a mark after the last kept entry only if the log it goes on with has it
// (its history), on disk as in memory; at the end of the log too; and does nothing without one.
TEST_F(NodeLogTest, TruncationKeepsOnlyTheMarksTheNextLogHas) {
  {
    auto log = NewLog(3);
    ASSERT_TRUE(log->SetIdentity("log-n", 2).ok());
    ASSERT_TRUE(log->MarkEpochStart(4).ok());  // After 3.
    ASSERT_EQ(log->AppendNext(2, 0, "a").value(), 4u);
    ASSERT_TRUE(log->SetIdentity("log-n", 3).ok());
    ASSERT_TRUE(log->MarkEpochStart(5).ok());  // After 4.
    EXPECT_EQ(log->EpochStarts(), (EpochStarts{{1, 1}, {2, 4}, {3, 5}}));
    const uint64_t syncs = fs_.sync_count();
    ASSERT_TRUE(log->TruncateAfter(4, EpochStarts{{1, 1}, {2, 4}, {3, 5}}).ok());
    EXPECT_EQ(fs_.sync_count(), syncs);  // It has them all: nothing to do.
    ASSERT_TRUE(log->TruncateAfter(4, EpochStarts{{1, 1}, {2, 4}, {2, 5}}).ok());
    EXPECT_EQ(log->last_id(), 4u);
    EXPECT_EQ(log->LastEpoch(), 2u);
    ASSERT_TRUE(log->TruncateAfter(3, EpochStarts{{1, 1}, {2, 4}}).ok());
    EXPECT_EQ(log->LastEpoch(), 2u);
    EXPECT_EQ(log->EpochStarts(), (EpochStarts{{1, 1}, {2, 4}}));
  }
  auto log = OpenOk(Options());
  EXPECT_EQ(log->LastEpoch(), 2u);
  EXPECT_EQ(log->EpochStarts(), (EpochStarts{{1, 1}, {2, 4}}));
  ASSERT_TRUE(log->TruncateAfter(3, EpochStarts{{1, 1}, {4, 4}}).ok());  // Another log.
  EXPECT_EQ(log->LastEpoch(), 1u);
  EXPECT_EQ(log->EpochStarts(), (EpochStarts{{1, 1}}));
  ASSERT_EQ(log->Apply({E(4, 1)}).value(), 4u);  // Its older entries follow.
}

TEST_F(NodeLogTest, ASecondLogOnTheSameDirectoryIsRefusedUntilTheFirstIsGone) {
  auto first = NewLog(3);
  auto second = Open(Options());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), Status::Code::kFailedPrecondition);
  EXPECT_TRUE(Contains(second.status().message(), "lock /data/LOCK: held by"))
      << second.status().message();
  EXPECT_TRUE(Contains(second.status().message(), "another rlog node"));
  EXPECT_EQ(Ids(*first), Range(1, 3)) << "the first log goes on untouched";
  ASSERT_TRUE(first->AppendNext(1, 1004, "m4").ok());

  first.reset();
  auto reopened = OpenOk(Options());
  ASSERT_TRUE(reopened);
  EXPECT_EQ(Ids(*reopened), Range(1, 4));
}

TEST(NodeLogOnPosix, CreatesTheDataDirectoryAndRecoversFromIt) {
  TempDir tmp("rlog-node");
  ASSERT_TRUE(tmp.ok());
  NodeLogOptions options;
  options.data_dir = tmp.path() + "/node";  // Created by Open.
  {
    auto log = NodeLog::Open(options, nullptr, nullptr);
    ASSERT_TRUE(log.ok()) << log.status().message();
    ASSERT_TRUE(log.value()->SetIdentity("log-x", 3).ok());
    for (int i = 0; i < 100; ++i) ASSERT_TRUE(log.value()->AppendNext(3, i, "posix").ok());
  }
  auto log = NodeLog::Open(options, nullptr, nullptr);
  ASSERT_TRUE(log.ok()) << log.status().message();
  EXPECT_EQ(log.value()->last_id(), 100u);
  EXPECT_EQ(log.value()->durable_id(), 100u);
  EXPECT_EQ(log.value()->epoch(), 3u);
  EXPECT_TRUE(std::filesystem::is_directory(tmp.path() + "/node/wal"));
}

}  // namespace
}  // namespace rlog::storage
