#include "core/replicator_simulation.h"

#include <algorithm>
#include <functional>
#include <string>
#include <utility>

namespace rlog::core::simulation {

LogId FakeLog::BatchEnd(LogId first, LogId last, uint64_t max_bytes) const {
  uint64_t total = sizes_[first - 1];
  LogId end = first;
  while (end < last && total + sizes_[end] <= max_bytes) total += sizes_[end++];
  return end;
}

Simulation::Simulation(ReplicatorOptions options, int sentinels, Choose choose)
    : choose_(std::move(choose)), r_(options, &log_) {
  for (int i = 0; i < sentinels; ++i) {
    r_.AddSentinel("s" + std::to_string(i + 1));
    sims_.emplace_back();
  }
}

Status Simulation::Step() {
  if (Status s = RandomEvent(); !s.ok()) return s;
  if (Status s = Drain(); !s.ok()) return s;
  if (Status s = CheckCommit(); !s.ok()) return s;
  return r_.CheckInvariants();
}

void Simulation::NoteMajorityHeld() {
  std::vector<LogId> held{master_durable_};
  for (const Sim& sim : sims_) {
    if (sim.member) held.push_back(sim.hwm);
  }
  std::sort(held.begin(), held.end(), std::greater<>());
  majority_held_ever_ = std::max(majority_held_ever_, held[held.size() / 2]);
}

Status Simulation::CheckCommit() {
  NoteMajorityHeld();
  if (r_.commit_id() > majority_held_ever_) {
    return Status::Corruption("commit id " + std::to_string(r_.commit_id()) +
                              " while a majority never held more than " +
                              std::to_string(majority_held_ever_));
  }
  return Status::Ok();
}

Status Simulation::RandomEvent() {
  const int pick = static_cast<int>(choose_(100));
  // A cluster may start without sentinels (a master alone) and gain them later.
  const SentinelId s = sims_.empty() ? 0 : static_cast<SentinelId>(choose_(sims_.size()));
  Sim* sim = sims_.empty() ? nullptr : &sims_[s];
  if (pick < 25) {  // The master appends, maybe fsyncs, and parks a write of the last id.
    const int n = 1 + static_cast<int>(choose_(6));
    for (int i = 0; i < n; ++i) log_.Append(1 + choose_(400));
    r_.Appended(log_.last());
    if (Chance(70)) {
      master_durable_ = log_.last();
      r_.LocalDurable(master_durable_);
    }
    const uint32_t w = 1 + static_cast<uint32_t>(choose_(r_.cluster_size() + 1));
    parked_[r_.ParkWrite(log_.last(), w, 50 + choose_(200))] = {log_.last(), w};
  } else if (pick < 30) {  // The master's fsync catches up.
    master_durable_ = log_.last();
    r_.LocalDurable(master_durable_);
  } else if (pick < 62) {
    if (sim != nullptr) return Deliver(s);
  } else if (pick < 82) {
    r_.OnTick();
  } else if (pick < 85 && sim != nullptr && sim->up) {
    Crash(s, /*lose_data=*/Chance(30));
  } else if (pick < 89 && sim != nullptr && !sim->up) {
    sim->up = true;
  } else if (pick < 91 && sim != nullptr && !sim->inbox.empty()) {
    sim->inbox.pop_front();  // A batch lost on the sentinel's side.
    sim->lossy_stream = true;
  } else if (pick < 92 && sim != nullptr && sim->member && sims_.size() < 8) {
    // It leaves the cluster (DNS), and maybe joins again at once under a new id, with its data
    // or without.
    r_.RemoveSentinel(s);
    sim->member = false;
    NoteMajorityHeld();  // A smaller cluster's majority, which the core may just have counted.
    if (Chance(50)) {
      const LogId keep = Chance(50) ? sim->hwm : 0;
      r_.AddSentinel("s" + std::to_string(sims_.size() + 1));
      sims_.emplace_back();
      sims_.back().hwm = keep;
    }
  } else if (pick < 93 && sims_.size() < 8) {
    r_.AddSentinel("s" + std::to_string(sims_.size() + 1));  // A new sentinel, empty.
    sims_.emplace_back();
  }
  return Status::Ok();
}

void Simulation::Crash(SentinelId s, bool lose_data) {
  Sim& sim = sims_[s];
  sim.up = false;
  if (lose_data) {
    sim.hwm = 0;
    sim.commit = 0;
  }
  sim.inbox.clear();
  if (sim.generation != 0) r_.Disconnected(s, sim.generation);
  sim.generation = 0;
}

Status Simulation::Deliver(SentinelId s) {
  Sim& sim = sims_[s];
  if (!sim.up || sim.inbox.empty()) return Status::Ok();
  Ready::Send send = sim.inbox.front();
  sim.inbox.pop_front();
  if (!send.heartbeat()) {
    if (!sim.lossy_stream && send.first != sim.expect_next_first) {
      return Status::Corruption("sentinel " + std::to_string(s) + ": batch from " +
                                std::to_string(send.first) + " where " +
                                std::to_string(sim.expect_next_first) + " was next");
    }
    sim.expect_next_first = send.last + 1;
    if (send.first <= sim.hwm + 1) sim.hwm = std::max(sim.hwm, send.last);
  }
  sim.commit = std::max(sim.commit, send.commit);
  r_.Acked(s, send.generation, send.seq, sim.hwm);
  return Status::Ok();
}

Status Simulation::Drain() {
  for (int round = 0; round < 1000; ++round) {
    Ready ready = r_.TakeReady();
    if (ready.empty()) return Status::Ok();
    for (const auto& c : ready.connects) {
      Sim& sim = sims_[c.sentinel];
      if (!sim.member) return Status::Corruption("connect to a removed sentinel");
      if (sim.up) {
        sim.generation = c.generation;
        sim.inbox.clear();
        sim.lossy_stream = false;
        sim.expect_next_first = std::min(sim.hwm, log_.last()) + 1;
        r_.KnownCommitted(sim.commit);  // Its Welcome says what it learned before.
        r_.Connected(c.sentinel, c.generation, sim.hwm);
      } else {
        r_.Disconnected(c.sentinel, c.generation);
      }
    }
    for (const auto& c : ready.cancels) {
      Sim& sim = sims_[c.sentinel];
      if (sim.generation == c.generation) {
        sim.generation = 0;
        sim.inbox.clear();
      }
      r_.Disconnected(c.sentinel, c.generation);
    }
    for (const auto& send : ready.sends) {
      Sim& sim = sims_[send.sentinel];
      if (send.last > log_.last()) return Status::Corruption("batch beyond the master's log");
      if (send.commit > r_.commit_id()) return Status::Corruption("a send names a commit to come");
      if (sim.generation == send.generation) sim.inbox.push_back(send);
      r_.WriteDone(send.sentinel, send.generation);
    }
    for (const auto& done : ready.completions) {
      auto it = parked_.find(done.handle);
      if (it == parked_.end()) {
        return Status::Corruption("unknown or twice-completed write " +
                                  std::to_string(done.handle));
      }
      const Parked write = it->second;
      parked_.erase(it);
      if (done.id != write.id) return Status::Corruption("completion names another id");
      if (done.outcome != WriteOutcome::kCommitted) continue;
      uint32_t holding = master_durable_ >= write.id ? 1 : 0;
      for (const Sim& sim : sims_) holding += sim.member && sim.hwm >= write.id ? 1 : 0;
      if (holding < write.w) {
        return Status::Corruption("write of id " + std::to_string(write.id) +
                                  " with w=" + std::to_string(write.w) + " completed while " +
                                  std::to_string(holding) + " members hold it");
      }
    }
  }
  return Status::Corruption("the core kept asking for more after 1000 rounds");
}

Status Simulation::Heal() {
  for (Sim& sim : sims_) sim.up = true;
  master_durable_ = log_.last();
  r_.LocalDurable(master_durable_);
  for (int round = 0; round < 5000; ++round) {
    r_.OnTick();
    for (SentinelId s = 0; s < sims_.size(); ++s) {
      while (!sims_[s].inbox.empty()) {
        if (Status st = Deliver(s); !st.ok()) return st;
      }
    }
    if (Status st = Drain(); !st.ok()) return st;
    if (Status st = CheckCommit(); !st.ok()) return st;
    if (Status st = r_.CheckInvariants(); !st.ok()) return st;
    bool done = parked_.empty();
    for (const Sim& sim : sims_) {
      done = done && (!sim.member || (sim.hwm == log_.last() && sim.commit == log_.last()));
    }
    for (const SentinelStatus& st : r_.Sentinels()) done = done && st.acked == log_.last();
    if (done) break;
  }
  const std::vector<SentinelStatus> statuses = r_.Sentinels();
  for (SentinelId s = 0; s < sims_.size(); ++s) {
    if (!sims_[s].member) continue;
    if (sims_[s].hwm != log_.last()) {
      return Status::Corruption("sentinel " + std::to_string(s) + " did not catch up: holds " +
                                std::to_string(sims_[s].hwm) + " of " +
                                std::to_string(log_.last()));
    }
    if (sims_[s].commit != log_.last()) {
      return Status::Corruption("sentinel " + std::to_string(s) + " was told commit id " +
                                std::to_string(sims_[s].commit) + " of " +
                                std::to_string(log_.last()));
    }
    for (const SentinelStatus& st : statuses) {
      if (st.id == s && st.acked != log_.last()) {
        return Status::Corruption("the core did not see sentinel " + std::to_string(s) +
                                  " catch up");
      }
    }
  }
  if (!parked_.empty()) {
    return Status::Corruption("write of id " + std::to_string(parked_.begin()->second.id) +
                              " never completed");
  }
  return Status::Ok();
}

}  // namespace rlog::core::simulation
