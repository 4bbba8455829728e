#include "core/replicator.h"

#include <algorithm>
#include <string>
#include <utility>

#include "core/quorum.h"

namespace rlog::core {

namespace {

ReplicatorOptions Sanitized(ReplicatorOptions options) {
  options.window_batches = std::max<uint32_t>(options.window_batches, 1);
  options.batch_max_entries = std::max<uint32_t>(options.batch_max_entries, 1);
  options.heartbeat_every = std::max<Tick>(options.heartbeat_every, 1);
  return options;
}

}  // namespace

Replicator::Replicator(ReplicatorOptions options, const LogView* log)
    : options_(Sanitized(options)), log_(log), random_(options.seed) {}

SentinelId Replicator::AddSentinel(std::string name) {
  Peer peer{.name = std::move(name),
            .in_flight = {},
            .backoff = Backoff(options_.backoff_initial, options_.backoff_max)};
  peer.last_heard = now_;
  peer.retry_at = now_;
  peers_.push_back(std::move(peer));
  FollowClusterSize();
  UpdateHealth();
  return static_cast<SentinelId>(peers_.size() - 1);
}

void Replicator::RemoveSentinel(SentinelId sentinel) {
  if (sentinel >= peers_.size() || !peers_[sentinel].member) return;
  Peer& peer = peers_[sentinel];
  peer.member = false;
  if (peer.link == Link::kConnecting || peer.link == Link::kConnected) {
    peer.link = Link::kCancelling;
    ready_.cancels.push_back({sentinel, peer.generation});
  }
  // Fewer members may commit writes that waited for the removed one's position.
  FollowClusterSize();
  CompleteCommitted();
  UpdateHealth();
}

void Replicator::SetDuplicate(SentinelId sentinel, bool duplicate) {
  if (sentinel >= peers_.size() || peers_[sentinel].duplicate == duplicate) return;
  peers_[sentinel].duplicate = duplicate;
  // A smaller cluster may commit writes that waited for a majority of the larger one.
  FollowClusterSize();
  CompleteCommitted();
  UpdateHealth();
}

uint32_t Replicator::cluster_size() const {
  uint32_t n = 1;
  for (const Peer& peer : peers_) n += peer.member && !peer.duplicate ? 1 : 0;
  return n;
}

uint32_t Replicator::reachable() const {
  uint32_t n = 1;
  for (const Peer& peer : peers_) {
    // A stream that just dropped is Suspected, not gone: counting it until it turns Unhealthy
    // keeps one reconnect from flipping the master read-only and back.
    if (peer.member && !peer.duplicate && peer.health != Health::kUnhealthy) ++n;
  }
  return n;
}

LogId Replicator::CommittedAt(uint32_t w) const {
  positions_.clear();
  positions_.push_back(local_durable_);
  for (const Peer& peer : peers_) {
    // A second name of a sentinel counted under its first is not a copy (cluster_size).
    if (!peer.member || peer.duplicate) continue;
    // Only a live stream's report counts: a sentinel that went away may come back with less
    // (an in-memory restart), and it cannot hold more of this log than the master appended.
    positions_.push_back(peer.link == Link::kConnected ? std::min(peer.acked, last_appended_) : 0);
  }
  return ::rlog::core::CommittedAt(positions_, w);
}

void Replicator::Appended(LogId last_id) {
  if (last_id <= last_appended_) return;
  for (Peer& peer : peers_) {
    // It had nothing left to send: these entries start the clock.
    if (peer.next > last_appended_) peer.linger_until = now_ + options_.linger;
  }
  last_appended_ = last_id;
  // Sentinels that already hold these ids (a master that lost its tail) now count for them.
  CompleteCommitted();
}

void Replicator::LocalDurable(LogId id) {
  LogId durable = std::min(id, last_appended_);
  if (durable <= local_durable_) return;
  local_durable_ = durable;
  CompleteCommitted();
}

void Replicator::EpochStarted(LogId first_id) {
  epoch_first_ = std::max<LogId>(first_id, 1);
  CompleteCommitted();
}

void Replicator::KnownCommitted(LogId id) {
  commit_ = std::max(commit_, std::min(id, last_appended_));
}

WriteHandle Replicator::ParkWrite(LogId id, uint32_t w, Tick timeout, Concern concern) {
  WriteHandle handle = next_handle_++;
  if (w >= 1 && CommittedAt(w) >= id) {
    ready_.completions.push_back({handle, id, WriteOutcome::kCommitted, w});
    return handle;
  }
  if (w >= 2) max_remote_waiter_ = std::max(max_remote_waiter_, id);
  auto deadline = deadlines_.emplace(now_ + timeout, handle);
  waiters_.emplace(handle, Waiter{id, w, deadline, concern});
  by_concern_[w].emplace(id, handle);
  return handle;
}

void Replicator::FollowClusterSize() {
  for (auto& [handle, waiter] : waiters_) {
    if (waiter.concern == Concern::kCount) continue;
    const uint32_t w = waiter.concern == Concern::kMajority ? majority() : cluster_size();
    if (w == waiter.w) continue;
    auto& queue = by_concern_[waiter.w];
    for (auto q = queue.lower_bound(waiter.id); q != queue.end() && q->first == waiter.id; ++q) {
      if (q->second == handle) {
        queue.erase(q);
        break;
      }
    }
    waiter.w = w;
    by_concern_[w].emplace(waiter.id, handle);
    if (w >= 2) max_remote_waiter_ = std::max(max_remote_waiter_, waiter.id);
  }
}

Replicator::Peer* Replicator::Find(SentinelId sentinel, uint64_t generation) {
  if (sentinel >= peers_.size()) return nullptr;
  Peer& peer = peers_[sentinel];
  if (peer.generation != generation || peer.link == Link::kIdle) return nullptr;
  return &peer;
}

void Replicator::Connected(SentinelId sentinel, uint64_t generation, LogId sentinel_last_id) {
  Peer* peer = Find(sentinel, generation);
  if (peer == nullptr || peer->link != Link::kConnecting) return;
  peer->link = Link::kConnected;
  peer->heard = true;
  peer->last_heard = now_;
  peer->last_sent = now_;
  peer->backoff.Reset();
  LogId before = peer->acked;
  peer->acked = sentinel_last_id;
  peer->next = std::min(sentinel_last_id, last_appended_) + 1;
  peer->linger_until = now_;  // What it lacks is not new: no lingering.
  peer->told_commit = 0;
  peer->seq = 0;
  peer->no_rewind_through_seq = 0;
  peer->write_outstanding = false;
  peer->in_flight.clear();
  if (peer->acked != before) ready_.acks.push_back({sentinel, before, peer->acked});
  CompleteCommitted();
  UpdateHealth();
}

void Replicator::Disconnected(SentinelId sentinel, uint64_t generation) {
  Peer* peer = Find(sentinel, generation);
  if (peer == nullptr) return;
  peer->in_flight.clear();
  peer->write_outstanding = false;
  ScheduleRetry(*peer);
  UpdateHealth();
}

void Replicator::ScheduleRetry(Peer& peer) {
  peer.link = Link::kIdle;
  peer.retry_at = now_ + peer.backoff.NextDelay(random_);
}

void Replicator::Acked(SentinelId sentinel, uint64_t generation, uint64_t seq,
                       LogId sentinel_last_id) {
  Peer* peer = Find(sentinel, generation);
  if (peer == nullptr || peer->link != Link::kConnected) return;
  peer->last_heard = now_;
  LogId through = 0;
  while (!peer->in_flight.empty() && peer->in_flight.front().seq <= seq) {
    through = peer->in_flight.front().through;
    peer->in_flight.pop_front();
  }
  if (sentinel_last_id > peer->acked) {
    ready_.acks.push_back({sentinel, peer->acked, sentinel_last_id});
    peer->acked = sentinel_last_id;
    CompleteCommitted();
  }
  // Never resend what the sentinel already holds.
  peer->next = std::max(peer->next, std::min(peer->acked, last_appended_) + 1);
  // The stream is ordered: by message `seq` the sentinel has seen everything up to `through`.
  // If it holds less, something was lost on its side; resend from its position.
  if (seq > peer->no_rewind_through_seq && through > peer->acked) {
    peer->next = std::min(peer->acked, last_appended_) + 1;
    peer->in_flight.clear();
    peer->no_rewind_through_seq = peer->seq;
    peer->linger_until = now_;
  }
  UpdateHealth();
}

void Replicator::WriteDone(SentinelId sentinel, uint64_t generation) {
  Peer* peer = Find(sentinel, generation);
  if (peer == nullptr) return;
  peer->write_outstanding = false;
}

void Replicator::OnTick() {
  ++now_;
  for (SentinelId s = 0; s < peers_.size(); ++s) {
    Peer& peer = peers_[s];
    if (!peer.member) continue;
    if (peer.link == Link::kIdle && now_ >= peer.retry_at) {
      peer.link = Link::kConnecting;
      peer.generation++;
      peer.attempt_started = now_;
      ready_.connects.push_back({s, peer.generation});
    }
    // A stream that has said nothing for a whole unhealthy period is presumed dead (a stopped
    // process, a black-holed link): cancel it and retry with backoff.
    if (peer.link == Link::kConnecting || peer.link == Link::kConnected) {
      Tick quiet_since = std::max(peer.last_heard, peer.attempt_started);
      if (now_ - quiet_since >= options_.health.unhealthy_after) {
        peer.link = Link::kCancelling;
        ready_.cancels.push_back({s, peer.generation});
      }
    }
  }
  while (!deadlines_.empty() && deadlines_.begin()->first <= now_) {
    Complete(deadlines_.begin()->second, WriteOutcome::kTimedOut);
  }
  UpdateHealth();
}

void Replicator::ExpireAllWrites() {
  while (!deadlines_.empty()) Complete(deadlines_.begin()->second, WriteOutcome::kTimedOut);
}

void Replicator::Complete(WriteHandle handle, WriteOutcome outcome) {
  auto it = waiters_.find(handle);
  if (it == waiters_.end()) return;
  const Waiter& waiter = it->second;
  auto& queue = by_concern_[waiter.w];
  for (auto q = queue.lower_bound(waiter.id); q != queue.end() && q->first == waiter.id; ++q) {
    if (q->second == handle) {
      queue.erase(q);
      break;
    }
  }
  deadlines_.erase(waiter.deadline);
  ready_.completions.push_back({handle, waiter.id, outcome, waiter.w});
  waiters_.erase(it);
}

void Replicator::CompleteCommitted() {
  // Raft's rule (5.4.2 of its paper): copies of an older epoch's entry on a majority do not make
  // it committed, since a master of an epoch in between may hold another entry at that id and
  // still take over; this master's epoch on a majority does, and its prefix with it. Its epoch
  // is there once a node holds everything before its first own entry: each marks that
  // (NodeLog::MarkEpochStart) before it reports the position, as Raft's new leader appends a
  // no-op entry.
  LogId majority_holds = CommittedAt(majority());
  if (majority_holds + 1 >= epoch_first_) commit_ = std::max(commit_, majority_holds);
  for (auto& [w, queue] : by_concern_) {
    if (queue.empty()) continue;
    LogId committed = CommittedAt(w);
    while (!queue.empty() && queue.begin()->first <= committed) {
      WriteHandle handle = queue.begin()->second;
      Complete(handle, WriteOutcome::kCommitted);
    }
  }
}

void Replicator::UpdateHealth() {
  for (SentinelId s = 0; s < peers_.size(); ++s) {
    Peer& peer = peers_[s];
    if (!peer.member) continue;
    Health health =
        peer.heard
            ? ClassifyHealth(now_ - peer.last_heard, peer.link == Link::kConnected, options_.health)
            : Health::kUnhealthy;
    if (health != peer.health) {
      ready_.status_changes.push_back({s, peer.health, health});
      peer.health = health;
    }
  }
  bool read_only = reachable() < majority();
  if (read_only != read_only_) {
    ready_.read_only = read_only;
    read_only_ = read_only;
  }
}

void Replicator::CutSends() {
  for (SentinelId s = 0; s < peers_.size(); ++s) {
    Peer& peer = peers_[s];
    if (!peer.member || peer.link != Link::kConnected || peer.write_outstanding) continue;
    LogId waiting = last_appended_ + 1 - std::min(peer.next, last_appended_ + 1);
    bool batch_in_flight = std::any_of(peer.in_flight.begin(), peer.in_flight.end(),
                                       [](const InFlight& f) { return f.batch; });
    // Nobody waits on this sentinel for what it lacks, and the oldest of it is still young.
    bool may_linger = max_remote_waiter_ < peer.next && now_ < peer.linger_until;
    uint64_t min_batch = batch_in_flight || may_linger
                             ? std::min(options_.min_pipelined_batch, options_.batch_max_entries)
                             : 1;
    if (waiting >= std::max<uint64_t>(min_batch, 1) &&
        peer.in_flight.size() < options_.window_batches) {
      LogId last = std::min<LogId>(last_appended_, peer.next + options_.batch_max_entries - 1);
      if (log_ != nullptr) last = log_->BatchEnd(peer.next, last, options_.batch_max_bytes);
      Ready::Send send{s, peer.generation, ++peer.seq, peer.next, last, commit_, batch_in_flight};
      peer.in_flight.push_back({send.seq, last, true});
      peer.told_commit = commit_;
      peer.next = last + 1;
      peer.write_outstanding = true;
      peer.last_sent = now_;
      ready_.sends.push_back(send);
    } else if ((peer.in_flight.size() <= options_.window_batches &&
                now_ - peer.last_sent >= options_.heartbeat_every) ||
               (peer.in_flight.empty() && waiting == 0 && peer.told_commit < commit_)) {
      // Idle, or the commit id moved and no message would carry it soon: under load the next
      // batch carries it (entries lingering for company go within `linger` ticks), so this costs
      // one message when the writes stop.
      Ready::Send send{s, peer.generation, ++peer.seq, 0, 0, commit_};
      peer.in_flight.push_back({send.seq, peer.next - 1, false});
      peer.told_commit = commit_;
      peer.write_outstanding = true;
      peer.last_sent = now_;
      ready_.sends.push_back(send);
    }
  }
}

Ready Replicator::TakeReady() {
  CutSends();
  Ready out = std::move(ready_);
  ready_ = Ready{};
  return out;
}

std::vector<SentinelStatus> Replicator::Sentinels() const {
  std::vector<SentinelStatus> out;
  for (SentinelId s = 0; s < peers_.size(); ++s) {
    const Peer& peer = peers_[s];
    if (!peer.member) continue;
    out.push_back({s, peer.name, peer.health, peer.link == Link::kConnected, peer.acked,
                   last_appended_ > peer.acked ? last_appended_ - peer.acked : 0,
                   now_ - peer.last_heard});
  }
  return out;
}

Status Replicator::CheckInvariants() const {
  if (local_durable_ > last_appended_) return Status::Corruption("durable beyond appended");
  if (commit_ > last_appended_) return Status::Corruption("commit id beyond the log");
  for (const Peer& peer : peers_) {
    if (peer.link != Link::kConnected) continue;
    if (peer.next > last_appended_ + 1) {
      return Status::Corruption("sentinel " + peer.name + ": next id beyond the log");
    }
    if (peer.in_flight.size() > options_.window_batches + 1) {
      return Status::Corruption("sentinel " + peer.name + ": window overrun");
    }
    LogId prev = 0;
    for (const InFlight& f : peer.in_flight) {
      if (f.through < prev) return Status::Corruption("sentinel " + peer.name + ": batches out of order");
      prev = f.through;
    }
    if (!peer.in_flight.empty() && peer.in_flight.back().through >= peer.next) {
      return Status::Corruption("sentinel " + peer.name + ": next id already in flight");
    }
  }
  for (const auto& [handle, waiter] : waiters_) {
    if (CommittedAt(waiter.w) >= waiter.id) {
      return Status::Corruption("write " + std::to_string(handle) + " committed but still parked");
    }
  }
  if (read_only_ != (reachable() < majority())) return Status::Corruption("stale read-only");
  return Status::Ok();
}

}  // namespace rlog::core
