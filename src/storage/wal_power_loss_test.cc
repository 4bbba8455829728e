// Seeded random appends, syncs, disk errors, crashes and power losses against the naive model of
// DurabilityChecker: every id acknowledged as durable before a power loss is recovered, nothing
// after a gap, no entry with content that was never written for its id, and recovery after a
// legitimate crash never reports corruption.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdio>
#include <iterator>
#include <random>

#include "storage/durability_checker.h"
#include "storage/fault_injection_file_system.h"
#include "storage/wal.h"

namespace rlog::storage {
namespace {

using Op = FaultInjectionFileSystem::Op;
using PowerLoss = FaultInjectionFileSystem::PowerLoss;

// How often each interesting case came up, so the test cannot silently stop covering it.
struct Coverage {
  uint64_t power_losses = 0;
  uint64_t torn_tails = 0;
  uint64_t zero_filled_tails = 0;
  uint64_t rotations = 0;
  uint64_t failed_appends = 0;
  uint64_t stopped_wals = 0;
  uint64_t lost_unsynced = 0;  // Recoveries that ended before the last appended id.
  uint64_t truncations = 0;
  uint64_t failed_truncations = 0;
};

class RandomWalRun {
 public:
  RandomWalRun(uint64_t seed, Coverage* coverage) : rng_(seed), coverage_(*coverage) {
    options_.segment_bytes = 1 + rng_() % 2048;
    options_.read_chunk_bytes = 1 + rng_() % 512;
    (void)fs_.CreateDir("/data");
  }

  // Runs `steps` random steps; returns the first problem found, or "".
  std::string Run(int steps) {
    if (std::string p = Reopen(DurabilityChecker::Crash::kProcessOnly); !p.empty()) return p;
    for (int step = 0; step < steps; ++step) {
      const uint64_t dice = rng_() % 100;
      std::string problem;
      if (!wal_->failure().ok() || dice < 4) {
        coverage_.stopped_wals += wal_->failure().ok() ? 0 : 1;
        ++coverage_.power_losses;
        PowerLoss how;
        how.tail = static_cast<PowerLoss::Tail>(rng_() % 3);
        how.random_directory_prefix = rng_() % 2 == 0;
        how.seed = rng_();
        wal_.reset();
        fs_.DropUnsyncedData(how);
        problem = Reopen(DurabilityChecker::Crash::kPowerLoss);
      } else if (dice < 7) {
        wal_.reset();
        problem = Reopen(DurabilityChecker::Crash::kProcessOnly);
      } else if (dice < 27) {
        if (rng_() % 10 == 0) fs_.InjectError(Op::kSync, 1, EIO);
        if (rng_() % 10 == 0) fs_.InjectError(Op::kSyncDir, 1, EIO);
        const LogId last = wal_->last_id();
        if (wal_->Sync().ok()) checker_.Acknowledged(last);
        fs_.ClearInjectedErrors();
      } else if (dice < 29) {
        if (!wal_->SetLogIdentity("log-r", wal_->epoch() + 1).ok()) continue;
        accepted_epoch_ = wal_->epoch();  // Durable on return.
      } else if (dice < 31) {
        Truncate();
      } else {
        Append();
      }
      if (!problem.empty()) return "step " + std::to_string(step) + ": " + problem;
    }
    return "";
  }

 private:
  void Append() {
    std::vector<Entry> batch;
    const size_t n = 1 + rng_() % 8;
    for (size_t i = 0; i < n; ++i) {
      std::string message(rng_() % 200, '\0');
      for (char& c : message) c = static_cast<char>(rng_());
      // Epochs between the last entry's and the accepted one: never decreasing.
      const uint64_t low = i == 0 ? wal_->last_epoch() : batch.back().epoch;
      const uint64_t epoch = low + rng_() % (wal_->epoch() - low + 1);
      batch.push_back(
          {wal_->last_id() + 1 + i, static_cast<int64_t>(rng_()), std::move(message), epoch});
    }
    const bool fail = rng_() % 8 == 0;
    if (fail) {
      fs_.InjectError(Op::kWrite, 1, rng_() % 2 ? ENOSPC : EIO, rng_() % 600);
      if (rng_() % 2 == 0) fs_.InjectError(Op::kTruncate, 1, EIO);
    }
    checker_.Written(batch);  // Issued: it may land, even when the call fails.
    const size_t segments = fs_.ListDir("/data/wal").value().size();
    if (wal_->Append(batch).ok()) {
      checker_.Appended(batch.back().id);
      last_appended_ = batch.back().id;
      coverage_.rotations += fs_.ListDir("/data/wal").value().size() > segments ? 1 : 0;
    } else {
      ++coverage_.failed_appends;
    }
    fs_.ClearInjectedErrors();
  }

  void Truncate() {
    static constexpr Op kTruncate[] = {Op::kCreate, Op::kWrite,   Op::kSync,    Op::kRemove,
                                       Op::kRename, Op::kSyncDir, Op::kTruncate};
    if (rng_() % 3 == 0) fs_.InjectError(kTruncate[rng_() % std::size(kTruncate)], 1, EIO);
    const LogId keep = rng_() % 4 == 0 ? 0 : rng_() % (wal_->last_id() + 1);
    checker_.TruncateStarted(keep);
    if (wal_->TruncateAfter(keep).ok()) {
      checker_.TruncateDone(keep);
      last_appended_ = keep;
      ++coverage_.truncations;
    } else {
      ++coverage_.failed_truncations;
    }
    fs_.ClearInjectedErrors();
  }

  std::string Reopen(DurabilityChecker::Crash crash) {
    std::vector<Entry> recovered;
    auto wal = Wal::Open(fs_, "/data/wal", options_, [&](std::vector<Entry>&& b) {
      for (Entry& e : b) recovered.push_back(std::move(e));
    });
    if (!wal.ok()) return "recovery failed after a legitimate crash: " + wal.status().message();
    wal_ = std::move(wal.value());
    const auto problems = checker_.Check(recovered, crash);
    if (!problems.empty()) return problems.front();
    if (wal_->epoch() < accepted_epoch_) {
      return "the accepted epoch went back from " + std::to_string(accepted_epoch_) + " to " +
             std::to_string(wal_->epoch());
    }
    const WalRecoveryReport& report = wal_->recovery();
    if (report.truncated_bytes > 0) {
      ++(report.truncated_reason == "zero-filled tail" ? coverage_.zero_filled_tails
                                                       : coverage_.torn_tails);
    }
    if (wal_->last_id() < last_appended_) ++coverage_.lost_unsynced;
    last_appended_ = wal_->last_id();
    checker_.Recovered(recovered);
    if (wal_->log_id().empty() && !wal_->SetLogIdentity("log-r", 1).ok()) return "identity";
    return "";
  }

  std::mt19937_64 rng_;
  Coverage& coverage_;
  LogId last_appended_ = 0;
  uint64_t accepted_epoch_ = 0;  // Made durable by SetLogIdentity; never to go back.
  FaultInjectionFileSystem fs_;
  WalOptions options_;
  DurabilityChecker checker_;
  std::unique_ptr<Wal> wal_;
};

TEST(WalPowerLoss, RandomAppendsSyncsAndPowerLossesNeverLoseAcknowledgedEntries) {
  Coverage c;
  for (uint64_t seed = 1; seed <= 300; ++seed) {
    const std::string problem = RandomWalRun(seed, &c).Run(300);
    ASSERT_EQ(problem, "") << "seed " << seed;
  }
  std::printf(
      "power losses %lu, torn tails %lu, zero-filled tails %lu, rotations %lu, failed "
      "appends %lu, stopped WALs %lu, recoveries that lost unsynced entries %lu, truncations "
      "%lu, failed truncations %lu\n",
      c.power_losses, c.torn_tails, c.zero_filled_tails, c.rotations, c.failed_appends,
      c.stopped_wals, c.lost_unsynced, c.truncations, c.failed_truncations);
  EXPECT_GT(c.torn_tails, 100u);
  EXPECT_GT(c.zero_filled_tails, 100u);
  EXPECT_GT(c.rotations, 1000u);
  EXPECT_GT(c.failed_appends, 1000u);
  EXPECT_GT(c.stopped_wals, 100u);
  EXPECT_GT(c.lost_unsynced, 100u);
  EXPECT_GT(c.truncations, 100u);
  EXPECT_GT(c.failed_truncations, 50u);
}

TEST(WalPowerLoss, CheckerReportsLostAcknowledgedIdsGapsAndForeignContent) {
  DurabilityChecker checker;
  const std::vector<Entry> written = {{1, 1, "a"}, {2, 2, "b"}, {3, 3, "c"}};
  checker.Written(written);
  checker.Appended(3);
  checker.Acknowledged(2);
  using Crash = DurabilityChecker::Crash;
  EXPECT_TRUE(checker.Check({{1, 1, "a"}, {2, 2, "b"}}, Crash::kPowerLoss).empty());
  EXPECT_FALSE(checker.Check({{1, 1, "a"}, {2, 2, "b"}}, Crash::kProcessOnly).empty());
  EXPECT_FALSE(checker.Check({{1, 1, "a"}}, Crash::kPowerLoss).empty());
  EXPECT_FALSE(checker.Check({{1, 1, "a"}, {3, 3, "c"}}, Crash::kPowerLoss).empty());
  EXPECT_FALSE(checker.Check({{1, 1, "a"}, {2, 2, "X"}}, Crash::kPowerLoss).empty());
  EXPECT_FALSE(checker.Check({{1, 1, "a"}, {2, 2, "b", 7}}, Crash::kPowerLoss).empty());
}

TEST(WalPowerLoss, CheckerAcceptsPrefixesHoldingTheKeptIdsDuringATruncationAndNothingOldAfter) {
  DurabilityChecker checker;
  using Crash = DurabilityChecker::Crash;
  checker.Written(std::vector<Entry>{{1, 1, "a"}, {2, 2, "b"}, {3, 3, "c"}});
  checker.Acknowledged(3);
  checker.TruncateStarted(1);
  EXPECT_TRUE(checker.Check({{1, 1, "a"}, {2, 2, "b"}, {3, 3, "c"}}, Crash::kPowerLoss).empty());
  EXPECT_TRUE(checker.Check({{1, 1, "a"}}, Crash::kPowerLoss).empty());
  EXPECT_FALSE(checker.Check({}, Crash::kPowerLoss).empty()) << "id 1 was acknowledged and kept";
  checker.TruncateDone(1);
  EXPECT_TRUE(checker.Check({{1, 1, "a"}}, Crash::kPowerLoss).empty());
  EXPECT_FALSE(checker.Check({{1, 1, "a"}, {2, 2, "b"}}, Crash::kPowerLoss).empty());
}

}  // namespace
}  // namespace rlog::storage
