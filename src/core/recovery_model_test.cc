// A model of the whole recovery protocol, checked over seeded random histories: a master appends
// and replicates, sentinels sync at their Hello (keep core::CommonPrefix, copy the rest), the
// master crashes (losing its unsynced tail, or its whole directory) and recovers from
// core::RecoveryAnswersNeeded answers with core::PlanRecovery. What MasterNode and SentinelService
// do with these functions, without sockets, threads or disks.
//
// The claims (DESIGN.md invariant 6, docs/ARCHITECTURE.md "Epochs"):
// - every write acknowledged by a majority (the master counted only for ids its fsync covers) is
//   in the log of every later master, at its id;
// - no id ever holds two different acknowledged writes;
// - after a sync every sentinel's log is a prefix of the master's.
//
// Failures are the ones the design tolerates: any number of master crashes and directory losses,
// one at a time, and sentinels that are down (their data intact) during a recovery.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <vector>

#include "core/epochs.h"

namespace rlog::core {
namespace {

using Log = std::vector<uint64_t>;  // Log[i] is the epoch of entry i + 1.

std::vector<EpochStart> HistoryOf(const Log& log, size_t length) {
  std::vector<EpochStart> history;
  for (size_t i = 0; i < length; ++i) {
    if (history.empty() || history.back().epoch != log[i]) history.push_back({log[i], i + 1});
  }
  return history;
}

struct Coverage {
  size_t recoveries = 0, lost_directories = 0, old_directories = 0, own_tails_cut = 0;
  size_t sentinel_tails_cut = 0;
  size_t acknowledged = 0;
};

class RecoveryModel {
 public:
  RecoveryModel(uint64_t seed, size_t sentinels, Coverage* coverage)
      : rng_(seed), sentinels_(sentinels), coverage_(*coverage) {}

  // Runs `steps` random steps; returns the first broken claim, or "".
  std::string Run(int steps) {
    for (int step = 0; step < steps; ++step) {
      std::string problem;
      switch (Below(10)) {
        case 0:
        case 1:
        case 2:
          master_.insert(master_.end(), 1 + Below(4), epoch_);
          break;
        case 3:
          synced_ = synced_ + Below(master_.size() - synced_ + 1);  // An fsync covers some.
          break;
        case 4:
        case 5:
        case 6:
        case 7:
          problem = Sync(Below(sentinels_.size()));
          break;
        case 8:
          problem = Recover();
          break;
        case 9:  // Nothing: lets the dice favour no pattern.
          break;
      }
      if (problem.empty()) problem = Acknowledge();
      if (!problem.empty()) return "step " + std::to_string(step) + ": " + problem;
    }
    return "";
  }

 private:
  size_t Below(size_t n) { return static_cast<size_t>(rng_() % n); }

  // A sentinel's Hello: it keeps what it shares with the master and copies some more.
  std::string Sync(size_t i) {
    Log& s = sentinels_[i];
    const LogId keep =
        CommonPrefix(HistoryOf(master_, master_.size()), master_.size(), HistoryOf(s, s.size()),
                     s.size());
    if (keep < s.size()) ++coverage_.sentinel_tails_cut;
    s.resize(keep);
    for (size_t id = 1; id <= s.size(); ++id) {
      if (s[id - 1] != master_[id - 1]) {
        return "sentinel " + std::to_string(i) + " kept id " + std::to_string(id) +
               " which differs from the master's";
      }
    }
    accepted_[i] = epoch_;  // The Hello.
    const size_t copy = Below(master_.size() - s.size() + 1);
    s.insert(s.end(), master_.begin() + static_cast<std::ptrdiff_t>(s.size()),
             master_.begin() + static_cast<std::ptrdiff_t>(s.size() + copy));
    return "";
  }

  // The writes of the current epoch a majority holds are acknowledged (the master counts itself
  // for the ids its fsync covers).
  std::string Acknowledge() {
    const size_t majority = (1 + sentinels_.size()) / 2 + 1;
    for (size_t id = 1; id <= master_.size(); ++id) {
      if (master_[id - 1] != epoch_) continue;
      size_t holders = synced_ >= id ? 1 : 0;
      for (const Log& s : sentinels_) holders += s.size() >= id && s[id - 1] == epoch_ ? 1 : 0;
      if (holders < majority) continue;
      auto [it, added] = acknowledged_.emplace(id, epoch_);
      if (added) ++coverage_.acknowledged;
      if (it->second != epoch_) {
        return "id " + std::to_string(id) + " acknowledged in epoch " +
               std::to_string(it->second) + " and again in epoch " + std::to_string(epoch_);
      }
    }
    return "";
  }

  // The master crashes and starts again, as MasterNode::RecoverFromSentinels does.
  std::string Recover() {
    ++coverage_.recoveries;
    bool own_log_counts = true;
    uint64_t own_epoch = epoch_;
    // What a crash leaves of this instance's directory: what its fsyncs covered, maybe more.
    master_.resize(synced_ + Below(master_.size() - synced_ + 1));
    const size_t dice = Below(8);
    if (dice < 2) {
      // Another instance takes over with an empty directory (this one's was lost, or stays
      // behind with this instance, which may come back later: below).
      ++coverage_.lost_directories;
      other_ = master_;
      other_epoch_ = epoch_;
      master_.clear();
      own_log_counts = false;
      own_epoch = 0;
    } else if (dice == 2 && other_epoch_ > 0) {
      // The other instance comes back with its own directory, as it was when it stopped: durable
      // and never rolled back, but of an epoch that later masters went past.
      ++coverage_.old_directories;
      std::swap(master_, other_);
      std::swap(own_epoch, other_epoch_);
    }
    // The sentinels answer in a random order (the ones down come back until enough have); the
    // master goes on once it has enough answers, maybe a few more. An answer from a sentinel that
    // accepted a newer epoch than ours (it saw a later master) stops our own log from counting,
    // which raises the number needed.
    std::vector<size_t> order(sentinels_.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), rng_);
    const size_t extra = Below(sentinels_.size() + 1);
    size_t answered = 0;
    uint64_t heard_epoch = own_epoch;  // Our own, and the newest any answer accepted.
    while (true) {
      const bool counts = own_log_counts && heard_epoch <= own_epoch;
      const size_t needed = RecoveryAnswersNeeded(sentinels_.size(), counts);
      if (answered >= std::min(sentinels_.size(), needed + extra)) break;
      heard_epoch = std::max(heard_epoch, accepted_[order[answered]]);
      ++answered;
    }
    const uint64_t own_last_epoch = master_.empty() ? 0 : master_.back();
    std::vector<RecoveryPosition> positions;
    for (size_t j = 0; j < answered; ++j) {
      const Log& s = sentinels_[order[j]];
      RecoveryPosition p;
      p.last_id = s.size();
      p.last_epoch = s.empty() ? 0 : s.back();
      p.history = HistoryOf(s, s.size());
      p.own_epoch_end = std::min<LogId>(s.size(), EpochEnd(p.history, own_last_epoch, s.size()));
      positions.push_back(std::move(p));
    }
    const RecoveryPlan plan = PlanRecovery(HistoryOf(master_, master_.size()), master_.size(),
                                           own_last_epoch, positions);
    if (plan.keep < master_.size()) ++coverage_.own_tails_cut;
    master_.resize(plan.keep);
    if (plan.source) {
      const Log& source = sentinels_[order[*plan.source]];
      master_.insert(master_.end(), source.begin() + static_cast<std::ptrdiff_t>(plan.keep),
                     source.begin() + static_cast<std::ptrdiff_t>(plan.copy_to));
    }
    synced_ = master_.size();  // Recovery makes what it holds durable.
    epoch_ = heard_epoch + 1;
    for (size_t j = 0; j < answered; ++j) accepted_[order[j]] = epoch_;  // The promise.
    for (const auto& [id, epoch] : acknowledged_) {
      if (master_.size() < id || master_[id - 1] != epoch) {
        return "acknowledged id " + std::to_string(id) + " (epoch " + std::to_string(epoch) +
               ") lost by the recovery into epoch " + std::to_string(epoch_) + " (" +
               std::to_string(answered) + " answers)";
      }
    }
    return "";
  }

  std::mt19937_64 rng_;
  Log master_;
  size_t synced_ = 0;   // Entries 1..synced_ of the master's log are covered by its fsync.
  uint64_t epoch_ = 1;  // The master's.
  // The directory of the other master instance (two take turns, each with its own), and the
  // newest epoch it had accepted; 0: none yet.
  Log other_;
  uint64_t other_epoch_ = 0;
  std::vector<Log> sentinels_;
  std::map<size_t, uint64_t> accepted_;  // Sentinel -> newest epoch it accepted.
  std::map<LogId, uint64_t> acknowledged_;
  Coverage& coverage_;
};

// Clusters of 2 to 7 nodes: the answers rule differs between odd and even sizes.
TEST(RecoveryModel, AcknowledgedWritesSurviveEveryRecoveryInClustersOfTwoToSevenNodes) {
  for (size_t sentinels = 1; sentinels <= 6; ++sentinels) {
    Coverage c;
    for (uint64_t seed = 1; seed <= 3000; ++seed) {
      const std::string problem = RecoveryModel(seed, sentinels, &c).Run(200);
      ASSERT_EQ(problem, "") << sentinels << " sentinels, seed " << seed;
    }
    std::printf(
        "%zu sentinels: %zu recoveries (%zu lost directories, %zu old ones back), %zu own tails "
        "cut, %zu sentinel tails cut, %zu writes acknowledged\n",
        sentinels, c.recoveries, c.lost_directories, c.old_directories, c.own_tails_cut,
        c.sentinel_tails_cut, c.acknowledged);
    EXPECT_GT(c.own_tails_cut, 1000u);
    // With one sentinel its tail diverges only when a master lost what the sentinel holds.
    EXPECT_GT(c.sentinel_tails_cut, sentinels == 1 ? 5u : 1000u);
    EXPECT_GT(c.lost_directories, 10000u);
  }
}

}  // namespace
}  // namespace rlog::core
