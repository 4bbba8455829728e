// GroupCommitter: one fsync covers everything that arrived meanwhile, the fsync policies, errors,
// and the proof that the power-loss check catches a committer that acknowledges before fsync
// (issue 3, item 8). No sleeps and no timing: syncs are held with BlockSyncs and every wait is a
// condition wait with a generous bound.
#include "storage/group_commit.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <mutex>
#include <random>
#include <thread>

#include "storage/commit_reports_testing.h"
#include "storage/durability_checker.h"
#include "storage/fault_injection_file_system.h"

namespace rlog::storage {
namespace {

using namespace std::chrono_literals;
constexpr auto kWait = CommitReports::kWait;

Entry E(LogId id, std::string message = "m") {
  return {id, static_cast<int64_t>(id), std::move(message) + std::to_string(id)};
}

class GroupCommitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto wal = Wal::Open(fs_, "/wal", {}, [](std::vector<Entry>&&) {});
    ASSERT_TRUE(wal.ok());
    wal_ = std::move(wal.value());
    ASSERT_TRUE(wal_->SetLogIdentity("log-g", 1).ok());
    base_syncs_ = fs_.sync_count();
  }
  std::unique_ptr<GroupCommitter> Start(GroupCommitOptions options = {}) {
    return std::make_unique<GroupCommitter>(
        *wal_, options, [this](LogId n) { acks_.Durable(n); },
        [this](const Status& s) { acks_.Error(s); });
  }
  uint64_t Syncs() const { return fs_.sync_count() - base_syncs_; }

  FaultInjectionFileSystem fs_;
  std::unique_ptr<Wal> wal_;
  CommitReports acks_;
  uint64_t base_syncs_ = 0;
};

TEST_F(GroupCommitTest, OneSyncCoversEverythingAppendedMeanwhile) {
  auto gc = Start();
  fs_.BlockSyncs();
  ASSERT_EQ(gc->Append({E(1)}).value(), 1u);
  ASSERT_TRUE(fs_.WaitForBlockedSyncs(1, kWait));  // The sync for id 1 is in flight...
  for (LogId id = 2; id <= 50; ++id) ASSERT_EQ(gc->Append({E(id)}).value(), id);  // ...these wait.
  fs_.UnblockSyncs();
  ASSERT_TRUE(acks_.WaitDurable(50));
  EXPECT_EQ(Syncs(), 2u);
  EXPECT_EQ(acks_.seen(), (std::vector<LogId>{1, 50}));
  EXPECT_EQ(gc->synced_id(), 50u);
}

// An epoch mark queued with entries is written and synced with them (on_durable covering them
// covers it); entries queued after it in the same round make it moot; refusals queue nothing.
TEST_F(GroupCommitTest, EpochMarkGoesWithItsEntriesInTheSameSync) {
  ASSERT_TRUE(wal_->SetLogIdentity("log-g", 3).ok());
  {
    auto gc = Start();
    fs_.BlockSyncs();
    ASSERT_EQ(gc->Append({E(1)}).value(), 1u);
    ASSERT_TRUE(fs_.WaitForBlockedSyncs(1, kWait));
    EXPECT_EQ(gc->Append({}, 3).status().code(), Status::Code::kInvalidArgument);
    EXPECT_EQ(gc->Append({E(2)}, 4).status().code(), Status::Code::kInvalidArgument);
    ASSERT_EQ(gc->Append({E(2)}, 3).value(), 2u);  // Waits for the round after the held sync.
    Entry older = E(3);  // Epoch 0, older than the mark.
    EXPECT_EQ(gc->Append({older}).status().code(), Status::Code::kInvalidArgument);
    fs_.UnblockSyncs();
    ASSERT_TRUE(acks_.WaitDurable(2));
  }
  fs_.DropUnsyncedData();
  auto wal = Wal::Open(fs_, "/wal", {}, [](std::vector<Entry>&&) {});
  ASSERT_TRUE(wal.ok());
  EXPECT_EQ(wal.value()->last_id(), 2u);
  EXPECT_EQ(wal.value()->recovered_marks(), (std::vector<EpochMark>{{2, 3}}));
  wal_ = std::move(wal.value());
  ASSERT_TRUE(wal_->SetLogIdentity("log-g", 4).ok());
  {
    // A mark with entries after it in the same round: both written, in order, one sync.
    auto gc = Start();
    fs_.BlockSyncs();
    Entry own = E(3);
    own.epoch = 3;
    ASSERT_TRUE(gc->Append({own}).ok());
    ASSERT_TRUE(fs_.WaitForBlockedSyncs(1 + 1, kWait));
    Entry older = E(4);
    older.epoch = 3;
    ASSERT_TRUE(gc->Append({older}, 4).ok());
    Entry newer = E(5);
    newer.epoch = 4;
    ASSERT_TRUE(gc->Append({newer}).ok());
    const uint64_t syncs = Syncs();
    fs_.UnblockSyncs();
    ASSERT_TRUE(acks_.WaitDurable(5));
    EXPECT_EQ(Syncs(), syncs + 2);  // The held one, and one for 4, the mark and 5.
  }
  auto again = Wal::Open(fs_, "/wal", {}, [](std::vector<Entry>&&) {});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again.value()->last_id(), 5u);
  EXPECT_EQ(again.value()->recovered_marks(), (std::vector<EpochMark>{{2, 3}, {4, 4}}));
}

TEST_F(GroupCommitTest, EverySyncIsObserved) {
  std::atomic<int> observed{0};
  GroupCommitOptions options;
  options.observe_sync = [&observed](std::chrono::nanoseconds took) {
    EXPECT_GE(took.count(), 0);
    ++observed;
  };
  auto gc = Start(options);
  ASSERT_TRUE(gc->Append({E(1)}).ok());
  ASSERT_TRUE(acks_.WaitDurable(1));
  gc.reset();
  EXPECT_EQ(observed.load(), 1);
}

TEST_F(GroupCommitTest, AlwaysAcknowledgesOnlyAfterTheSync) {
  auto gc = Start();
  fs_.BlockSyncs();
  ASSERT_TRUE(gc->Append({E(1), E(2)}).ok());
  ASSERT_TRUE(fs_.WaitForBlockedSyncs(1, kWait));
  EXPECT_EQ(gc->written_id(), 2u);
  EXPECT_TRUE(acks_.seen().empty());  // Written, not yet durable: no ack.
  fs_.UnblockSyncs();
  ASSERT_TRUE(acks_.WaitDurable(2));
}

TEST_F(GroupCommitTest, NeverAcknowledgesRightAfterTheWriteAndSyncsOnShutdown) {
  auto gc = Start({FsyncPolicy::kNever});
  ASSERT_TRUE(gc->Append({E(1), E(2), E(3)}).ok());
  ASSERT_TRUE(acks_.WaitDurable(3));
  EXPECT_EQ(Syncs(), 0u);
  gc.reset();
  EXPECT_EQ(Syncs(), 1u);
}

TEST_F(GroupCommitTest, IntervalAcknowledgesWithoutWaitingForTheSync) {
  auto gc = Start({FsyncPolicy::kInterval, 1h});
  ASSERT_TRUE(gc->Append({E(1)}).ok());
  ASSERT_TRUE(acks_.WaitDurable(1));
  EXPECT_EQ(Syncs(), 0u);
  EXPECT_EQ(gc->synced_id(), 0u);
  gc.reset();
  EXPECT_EQ(Syncs(), 1u);
}

TEST_F(GroupCommitTest, GroupCommitHoldsASyncUntilAsManyAppendsAsTheLastOneCovered) {
  GroupCommitOptions options;
  options.group_commit = 1h;
  auto gc = Start(options);
  fs_.BlockSyncs();
  ASSERT_TRUE(gc->Append({E(1)}).ok());
  ASSERT_TRUE(fs_.WaitForBlockedSyncs(1, kWait));
  for (LogId id = 2; id <= 4; ++id) ASSERT_TRUE(gc->Append({E(id)}).ok());  // Three appends...
  fs_.UnblockSyncs();
  ASSERT_TRUE(acks_.WaitDurable(4));  // ...in one sync, not held: the one before covered one.
  ASSERT_TRUE(gc->Append({E(5)}).ok());
  // One append queued where the last sync covered three: held within the window (a bounded
  // check of something that must not happen for an hour).
  EXPECT_FALSE(fs_.WaitForSyncs(base_syncs_ + 3, 200ms));
  EXPECT_EQ(gc->synced_id(), 4u);
  ASSERT_TRUE(gc->Append({E(6)}).ok());
  ASSERT_TRUE(gc->Append({E(7)}).ok());  // The third: the sync goes at once.
  ASSERT_TRUE(acks_.WaitDurable(7));
  EXPECT_EQ(Syncs(), 3u);
  EXPECT_EQ(acks_.seen(), (std::vector<LogId>{1, 4, 7}));
}

TEST_F(GroupCommitTest, GroupCommitNeverHoldsALoneWriter) {
  // One append per sync: nothing to gather, so a writer that waits for each ack is never held
  // back (an hour-long window would otherwise take the whole bound of WaitDurable).
  GroupCommitOptions options;
  options.group_commit = 1h;
  auto gc = Start(options);
  for (LogId id = 1; id <= 5; ++id) {
    ASSERT_TRUE(gc->Append({E(id)}).ok());
    ASSERT_TRUE(acks_.WaitDurable(id)) << "id " << id << " was held back";
  }
  EXPECT_EQ(Syncs(), 5u);
}

TEST_F(GroupCommitTest, GroupCommitDoesNotHoldShutdown) {
  GroupCommitOptions options;
  options.group_commit = 1h;
  auto gc = Start(options);
  fs_.BlockSyncs();
  ASSERT_TRUE(gc->Append({E(1)}).ok());
  ASSERT_TRUE(fs_.WaitForBlockedSyncs(1, kWait));
  ASSERT_TRUE(gc->Append({E(2)}).ok());
  ASSERT_TRUE(gc->Append({E(3)}).ok());
  fs_.UnblockSyncs();
  ASSERT_TRUE(acks_.WaitDurable(3));  // Sync 2 covered two appends...
  ASSERT_TRUE(gc->Append({E(4)}).ok());  // ...so this one is held,
  gc.reset();                            // but not past shutdown.
  EXPECT_EQ(Syncs(), 3u);
  EXPECT_EQ(acks_.seen(), (std::vector<LogId>{1, 3, 4}));
}

TEST_F(GroupCommitTest, IntervalSyncsOnceTheIntervalIsOver) {
  auto gc = Start({FsyncPolicy::kInterval, 1ms});
  ASSERT_TRUE(gc->Append({E(1)}).ok());
  EXPECT_TRUE(fs_.WaitForSyncs(base_syncs_ + 1, kWait));
}

TEST_F(GroupCommitTest, AppendRejectsIdsOutOfOrder) {
  auto gc = Start();
  EXPECT_EQ(gc->Append({E(2)}).status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(gc->Append({E(1), E(3)}).status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(gc->Append({E(1), E(2)}).value(), 2u);
  EXPECT_EQ(gc->Append({E(3)}).value(), 3u);
}

// The committer refuses at once what its WAL would refuse later: a refused batch must not stop
// it (which would fail every later append too).
TEST_F(GroupCommitTest, AppendRejectsEpochsTheWalWouldRefuseAndGoesOn) {
  auto gc = Start();  // The WAL accepted epoch 1.
  auto at = [](LogId id, uint64_t epoch) {
    Entry e = E(id);
    e.epoch = epoch;
    return e;
  };
  EXPECT_EQ(gc->Append({at(1, 2)}).status().code(), Status::Code::kInvalidArgument);
  ASSERT_EQ(gc->Append({at(1, 1)}).value(), 1u);
  EXPECT_EQ(gc->Append({at(2, 0)}).status().code(), Status::Code::kInvalidArgument);
  ASSERT_EQ(gc->Append({at(2, 1)}).value(), 2u);
  ASSERT_TRUE(acks_.WaitDurable(2));
  EXPECT_TRUE(gc->status().ok());
  EXPECT_TRUE(acks_.errors().empty());
}

TEST_F(GroupCommitTest, WriteErrorIsReportedAndNothingMoreIsAcknowledged) {
  auto gc = Start();
  ASSERT_TRUE(gc->Append({E(1)}).ok());
  ASSERT_TRUE(acks_.WaitDurable(1));
  fs_.InjectError(FaultInjectionFileSystem::Op::kWrite, 1, ENOSPC, 5);
  ASSERT_TRUE(gc->Append({E(2)}).ok());
  ASSERT_TRUE(acks_.WaitError());
  EXPECT_NE(acks_.errors()[0].find("No space left on device"), std::string::npos);
  EXPECT_FALSE(gc->Append({E(3)}).ok());
  gc.reset();
  EXPECT_EQ(acks_.seen(), std::vector<LogId>{1});
  EXPECT_EQ(wal_->last_id(), 1u);
}

TEST_F(GroupCommitTest, FailedFsyncIsReportedAndNeverRetried) {
  auto gc = Start();
  fs_.InjectError(FaultInjectionFileSystem::Op::kSync, 1, EIO);
  ASSERT_TRUE(gc->Append({E(1)}).ok());
  ASSERT_TRUE(acks_.WaitError());
  EXPECT_NE(acks_.errors()[0].find("never retry"), std::string::npos);
  EXPECT_FALSE(gc->status().ok());
  gc.reset();  // Shutdown does not try the sync again.
  EXPECT_TRUE(acks_.seen().empty());
  EXPECT_EQ(Syncs(), 0u);
  EXPECT_EQ(acks_.errors().size(), 1u);
}

// Four threads append 200 entries each, one at a time; a lock orders ids and appends, as the
// master's (or a sentinel's) does.
void AppendFromFourThreads(GroupCommitter& gc) {
  std::mutex id_mu;
  LogId next = 1;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        std::lock_guard<std::mutex> lock(id_mu);
        ASSERT_TRUE(gc.Append({E(next)}).ok());
        ++next;
      }
    });
  }
  for (auto& t : threads) t.join();
}

TEST_F(GroupCommitTest, ConcurrentAppendersAreAllAcknowledged) {
  auto gc = Start();
  AppendFromFourThreads(*gc);
  ASSERT_TRUE(acks_.WaitDurable(800));
  const auto seen = acks_.seen();
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
  EXPECT_EQ(Syncs(), seen.size());  // One sync per acknowledgement round.
}

GroupCommitOptions OnCaller(FsyncPolicy policy = FsyncPolicy::kAlways) {
  GroupCommitOptions options;
  options.policy = policy;
  options.interval = 1h;
  options.group_commit = 1h;  // Unused on the caller: nothing may be held for it.
  options.rounds_on_caller = true;
  return options;
}

TEST_F(GroupCommitTest, RoundsOnTheCallerReportBeforeAppendReturnsOnItsThread) {
  std::thread::id reported_on;
  auto gc = std::make_unique<GroupCommitter>(
      *wal_, OnCaller(),
      [&](LogId n) {
        reported_on = std::this_thread::get_id();
        acks_.Durable(n);
      },
      nullptr);
  ASSERT_EQ(gc->Append({E(1), E(2)}).value(), 2u);
  EXPECT_EQ(acks_.seen(), std::vector<LogId>{2});  // Synced and reported already.
  EXPECT_EQ(reported_on, std::this_thread::get_id());
  EXPECT_EQ(Syncs(), 1u);
  EXPECT_EQ(gc->synced_id(), 2u);
  for (LogId id = 3; id <= 5; ++id) ASSERT_TRUE(gc->Append({E(id)}).ok());  // Never held.
  EXPECT_EQ(acks_.seen(), (std::vector<LogId>{2, 3, 4, 5}));
  EXPECT_EQ(Syncs(), 4u);
  gc.reset();
  EXPECT_EQ(Syncs(), 4u);  // Nothing left for shutdown.
}

TEST_F(GroupCommitTest, RoundsOnTheCallerTakeWhatIsQueuedDuringARound) {
  auto gc = std::make_unique<GroupCommitter>(
      *wal_, OnCaller(), [this](LogId n) { acks_.Durable(n); }, nullptr);
  fs_.BlockSyncs();
  std::thread first([&] { ASSERT_TRUE(gc->Append({E(1)}).ok()); });  // Waits in its sync.
  ASSERT_TRUE(fs_.WaitForBlockedSyncs(1, kWait));
  ASSERT_TRUE(gc->Append({E(2)}).ok());  // A round is running: these only queue...
  ASSERT_TRUE(gc->Append({E(3)}).ok());
  EXPECT_TRUE(acks_.seen().empty());
  fs_.UnblockSyncs();
  first.join();  // ...and the running round's thread wrote and synced them before it returned.
  EXPECT_EQ(acks_.seen(), (std::vector<LogId>{1, 3}));
  EXPECT_EQ(Syncs(), 2u);
}

// fsync: interval, appends faster than the interval: the callers' rounds and the committer
// thread's timed syncs take turns on the WAL (a TSan build checks that they never overlap), and
// every id is reported once, in order.
TEST_F(GroupCommitTest, RoundsOnTheCallerAndTimedSyncsTakeTurns) {
  GroupCommitOptions interval = OnCaller(FsyncPolicy::kInterval);
  interval.interval = 1ms;
  auto gc = Start(interval);
  constexpr LogId kLast = 3000;
  for (LogId id = 1; id <= kLast; ++id) {
    ASSERT_TRUE(gc->Append({E(id)}).ok());
    ASSERT_EQ(gc->written_id(), id);  // Written by its own round when Append returned.
    if (id % 16 == 0) std::this_thread::sleep_for(200us);  // Let some timed syncs come due.
  }
  gc.reset();
  const auto seen = acks_.seen();
  ASSERT_EQ(seen.size(), kLast);
  for (LogId id = 1; id <= kLast; ++id) ASSERT_EQ(seen[id - 1], id);
  EXPECT_GT(Syncs(), 1u);
  EXPECT_EQ(wal_->synced_id(), kLast);
}

TEST_F(GroupCommitTest, RoundsOnTheCallerUnderNeverAndIntervalLeaveTheSyncsToTheThread) {
  {
    auto gc = Start(OnCaller(FsyncPolicy::kNever));
    ASSERT_TRUE(gc->Append({E(1)}).ok());
    EXPECT_EQ(acks_.seen(), std::vector<LogId>{1});  // Written: reported at once.
    EXPECT_EQ(Syncs(), 0u);
    gc.reset();
    EXPECT_EQ(Syncs(), 1u);  // The flush at shutdown.
  }
  GroupCommitOptions interval = OnCaller(FsyncPolicy::kInterval);
  interval.interval = 1ms;
  auto gc = Start(interval);
  ASSERT_TRUE(gc->Append({E(2)}).ok());
  EXPECT_EQ(acks_.seen(), (std::vector<LogId>{1, 2}));
  EXPECT_TRUE(fs_.WaitForSyncs(base_syncs_ + 2, kWait));  // The committer thread's timed sync.
  // synced_id() follows the sync's return: poll it, bounded.
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  while (gc->synced_id() < 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_EQ(gc->synced_id(), 2u);
}

// fsync: interval. The committer thread's timed sync took only what was queued when it started:
// an append made meanwhile waits for it, then writes its own entries, before it returns.
TEST_F(GroupCommitTest, RoundsOnTheCallerWaitForTheCommitterThreadsRound) {
  GroupCommitOptions interval = OnCaller(FsyncPolicy::kInterval);
  interval.interval = 100ms;  // Long enough that the first round does not find its sync due.
  auto gc = Start(interval);
  fs_.BlockSyncs();
  ASSERT_TRUE(gc->Append({E(1)}).ok());            // Written and reported on this thread...
  ASSERT_TRUE(fs_.WaitForBlockedSyncs(1, kWait));  // ...and the committer thread's sync is held.
  std::atomic<bool> returned{false};
  std::thread second([&] {
    EXPECT_TRUE(gc->Append({E(2)}).ok());
    returned = true;
  });
  // It must not return while the committer thread's round runs (a bounded check of something
  // that must not happen).
  EXPECT_FALSE(fs_.WaitForBlockedSyncs(2, 200ms));
  EXPECT_FALSE(returned.load());
  fs_.UnblockSyncs();
  second.join();
  EXPECT_EQ(gc->written_id(), 2u);  // Written by its own round when Append returned.
  EXPECT_EQ(acks_.seen(), (std::vector<LogId>{1, 2}));
}

// hand_off: the writer does not wait for these entries (a master sending without waiting for
// acks), so Append only queues them and the committer thread runs the round; what is handed off
// during its sync shares the next one. An Append without it runs its round on the caller again.
TEST_F(GroupCommitTest, RoundsOnTheCallerLeaveHandedOffAppendsToTheCommitterThread) {
  std::mutex mu;
  std::vector<std::thread::id> reported_on;
  auto gc = std::make_unique<GroupCommitter>(
      *wal_, OnCaller(),
      [&](LogId n) {
        {
          std::lock_guard<std::mutex> lock(mu);
          reported_on.push_back(std::this_thread::get_id());
        }
        acks_.Durable(n);
      },
      nullptr);
  fs_.BlockSyncs();
  std::atomic<int> returned{0};
  std::thread::id appender_id;
  std::thread appender([&] {  // On a thread of its own: a wrong Append would wait in the sync.
    appender_id = std::this_thread::get_id();
    for (LogId id = 1; id <= 3; ++id) {
      EXPECT_TRUE(gc->Append({E(id)}, 0, /*hand_off=*/true).ok());
      if (id == 1) {
        EXPECT_TRUE(fs_.WaitForBlockedSyncs(1, kWait));
      }
      ++returned;
    }
  });
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  while (returned.load() < 3 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);  // Bounded.
  }
  EXPECT_EQ(returned.load(), 3) << "a handed-off Append waited for the sync";
  EXPECT_TRUE(acks_.seen().empty());
  fs_.UnblockSyncs();
  appender.join();
  ASSERT_TRUE(acks_.WaitDurable(3));
  EXPECT_EQ(acks_.seen(), (std::vector<LogId>{1, 3}));
  EXPECT_EQ(Syncs(), 2u);                     // 1, then 2 and 3 together.
  ASSERT_EQ(gc->Append({E(4)}).value(), 4u);  // On this thread, reported before it returns.
  EXPECT_EQ(acks_.seen(), (std::vector<LogId>{1, 3, 4}));
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(reported_on.size(), 3u);
  EXPECT_NE(reported_on[0], appender_id);
  EXPECT_NE(reported_on[0], std::this_thread::get_id());
  EXPECT_EQ(reported_on[1], reported_on[0]);  // The committer thread.
  EXPECT_EQ(reported_on[2], std::this_thread::get_id());
}

TEST_F(GroupCommitTest, RoundsOnTheCallerReportAWriteErrorBeforeAppendReturns) {
  auto gc = Start(OnCaller());
  ASSERT_TRUE(gc->Append({E(1)}).ok());
  fs_.InjectError(FaultInjectionFileSystem::Op::kWrite, 1, ENOSPC, 5);
  const Result<LogId> failed = gc->Append({E(2)});  // Its round failed...
  EXPECT_FALSE(failed.ok());                        // ...Append says so...
  ASSERT_EQ(acks_.errors().size(), 1u);             // ...after on_error.
  EXPECT_NE(acks_.errors()[0].find("No space left on device"), std::string::npos);
  EXPECT_FALSE(gc->Append({E(3)}).ok());
  EXPECT_FALSE(gc->status().ok());
  gc.reset();
  EXPECT_EQ(acks_.seen(), std::vector<LogId>{1});
  EXPECT_EQ(wal_->last_id(), 1u);
}

TEST_F(GroupCommitTest, RoundsOnTheCallerOfConcurrentAppendersReportInOrder) {
  auto gc = Start(OnCaller());
  AppendFromFourThreads(*gc);
  ASSERT_TRUE(acks_.WaitDurable(800));
  const auto seen = acks_.seen();
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
  EXPECT_EQ(Syncs(), seen.size());
  EXPECT_EQ(wal_->last_id(), 800u);
}

// The crash scenario of issue 3, item 8. Each round: some writes complete; then syncs are held,
// more writes arrive, and the power fails while a sync is in flight. After every recovery the
// checker lists acknowledged writes that were lost.
// With rounds_on_caller the appends made while syncs are held run on a second thread: the first
// of them waits in its own round's sync. With `hand_off_some` too, about half of the appends are
// handed to the committer thread (a sentinel's pipelined batches), the rest run on the caller.
std::vector<std::string> CrashRounds(bool ack_before_sync, uint64_t seed, int rounds,
                                     bool rounds_on_caller = false, bool hand_off_some = false) {
  std::mt19937_64 rng(seed);
  FaultInjectionFileSystem fs;
  DurabilityChecker checker;
  std::vector<std::string> problems;
  uint64_t blocked = 0;
  for (int round = 0; round <= rounds; ++round) {
    std::vector<Entry> recovered;
    auto opened = Wal::Open(fs, "/wal", {}, [&](std::vector<Entry>&& b) {
      recovered.insert(recovered.end(), b.begin(), b.end());
    });
    if (!opened.ok()) return {"recovery failed: " + opened.status().message()};
    std::unique_ptr<Wal> wal = std::move(opened.value());
    for (std::string& p : checker.Check(recovered, DurabilityChecker::Crash::kPowerLoss)) {
      problems.push_back("round " + std::to_string(round) + ": " + p);
    }
    checker.Recovered(recovered);
    if (round == rounds) break;
    if (wal->log_id().empty() && !wal->SetLogIdentity("log-c", 1).ok()) return {"identity"};
    GroupCommitOptions options;
    options.ack_before_sync_for_testing = ack_before_sync;
    options.rounds_on_caller = rounds_on_caller;
    GroupCommitter gc(
        *wal, options, [&](LogId n) { checker.Acknowledged(n); }, nullptr);
    LogId next = wal->last_id() + 1;
    auto append_batch = [&] {
      std::vector<Entry> batch;
      for (uint64_t i = 1 + rng() % 5; i > 0; --i)
        batch.push_back(E(next++, std::to_string(round)));
      checker.Written(batch);
      return gc.Append(std::move(batch), 0, hand_off_some && rng() % 2 == 0);
    };
    for (uint64_t i = rng() % 4; i > 0; --i) {
      auto last = append_batch();
      if (!last.ok() || !checker.WaitAcknowledged(last.value(), kWait)) return {"no ack"};
    }
    fs.BlockSyncs();
    const uint64_t held = 1 + rng() % 3;
    std::thread appender;
    if (rounds_on_caller) {
      // The first append waits in its sync; the others, queued meanwhile, go with the next
      // round (if the power had not failed), on the same thread as the calls.
      std::vector<std::pair<std::vector<Entry>, bool>> batches;  // With hand_off.
      for (uint64_t i = held; i > 0; --i) {
        std::vector<Entry> batch;
        for (uint64_t j = 1 + rng() % 5; j > 0; --j)
          batch.push_back(E(next++, std::to_string(round)));
        checker.Written(batch);
        batches.emplace_back(std::move(batch), hand_off_some && rng() % 2 == 0);
      }
      appender = std::thread([&gc, batches = std::move(batches)]() mutable {
        for (auto& [batch, hand_off] : batches) (void)gc.Append(std::move(batch), 0, hand_off);
      });
    } else {
      for (uint64_t i = held; i > 0; --i) (void)append_batch();
    }
    if (!fs.WaitForBlockedSyncs(++blocked, kWait)) {
      fs.UnblockSyncs();
      if (appender.joinable()) appender.join();
      return {"no sync in flight"};
    }
    FaultInjectionFileSystem::PowerLoss how;
    how.tail = static_cast<FaultInjectionFileSystem::PowerLoss::Tail>(rng() % 3);
    how.seed = rng();
    fs.DropUnsyncedData(how);
    fs.UnblockSyncs();  // The held sync now fails: its process is gone.
    if (appender.joinable()) appender.join();
  }
  return problems;
}

TEST(GroupCommitPowerLoss, CheckFindsNoLostAcknowledgedWrite) {
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    EXPECT_EQ(CrashRounds(/*ack_before_sync=*/false, seed, 20), std::vector<std::string>{})
        << "seed " << seed;
  }
}

// The proof that the test above can fail: with acknowledgements sent before the fsync, the same
// scenario must report acknowledged writes lost by the power failure.
TEST(GroupCommitPowerLoss, CheckReportsLostAcknowledgedWriteWhenAckPrecedesSync) {
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    const auto problems = CrashRounds(/*ack_before_sync=*/true, seed, 20);
    ASSERT_FALSE(problems.empty()) << "seed " << seed;
    EXPECT_NE(problems[0].find("lost acknowledged write"), std::string::npos) << problems[0];
  }
}

// The same with the rounds on the appending thread (a sentinel's): acknowledged still means
// synced, and the check still catches a round that acknowledges first.
TEST(GroupCommitPowerLoss, RoundsOnTheCallerLoseNoAcknowledgedWrite) {
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    EXPECT_EQ(CrashRounds(/*ack_before_sync=*/false, seed, 20, /*rounds_on_caller=*/true),
              std::vector<std::string>{})
        << "seed " << seed;
    const auto problems = CrashRounds(/*ack_before_sync=*/true, seed, 20, true);
    ASSERT_FALSE(problems.empty()) << "seed " << seed;
    EXPECT_NE(problems[0].find("lost acknowledged write"), std::string::npos) << problems[0];
  }
}

// And with some appends handed to the committer thread among the caller's rounds.
TEST(GroupCommitPowerLoss, HandedOffAppendsAmongCallerRoundsLoseNoAcknowledgedWrite) {
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    EXPECT_EQ(CrashRounds(/*ack_before_sync=*/false, seed, 20, /*rounds_on_caller=*/true,
                          /*hand_off_some=*/true),
              std::vector<std::string>{})
        << "seed " << seed;
    const auto problems = CrashRounds(/*ack_before_sync=*/true, seed, 20, true, true);
    ASSERT_FALSE(problems.empty()) << "seed " << seed;
    EXPECT_NE(problems[0].find("lost acknowledged write"), std::string::npos) << problems[0];
  }
}

}  // namespace
}  // namespace rlog::storage
