// The master's replication core: events in, actions out; no sockets, threads, clocks or files.
//
// The shell (src/replication, src/http, src/app) feeds it what happened — "the log grew to n",
// "sentinel s acked n", "stream of s is up / gone", "a write finished", "a tick passed" — and
// executes what TakeReady() hands back: open or cancel a sentinel's stream, send a batch of
// consecutive ids or a heartbeat, answer parked writes, report health and read-only changes.
//
// What it guarantees (DESIGN.md invariants; checked by CheckInvariants() in tests):
//  - per sentinel, at most one message is handed out until WriteDone() (gRPC allows one
//    outstanding write per stream), and at most `window_batches` unacknowledged messages;
//  - batches are consecutive ids starting at the sentinel's next id; after a reconnect the next id
//    is the sentinel's reported position + 1; an ack showing the sentinel lacks ids it should
//    hold by then (a lost batch) rewinds the next id to its position + 1;
//  - a parked write of id x with concern w completes exactly once: when the w-th highest
//    position (the master's durable position included) reaches x, or when its deadline passes;
//  - events from a stream that has been replaced (older generation) are ignored;
//  - the commit id (Kafka's high watermark) only grows, and counts only positions a majority
//    holds that reach the master's own epoch: the last id before its first own entry, where
//    every node writes the epoch's mark (Raft's rule, with the mark for Raft's no-op entry:
//    copies of an older epoch's entries short of that commit nothing), or what a sentinel
//    reports it learned earlier; every message carries it, and a stream with nothing in flight
//    is sent a heartbeat when it moved, so sentinels can show readers only committed ids.
// Not thread-safe: the owner serialises calls (one mutex around the core).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "core/backoff.h"
#include "core/health.h"
#include "core/types.h"

namespace rlog::core {

struct ReplicatorOptions {
  uint32_t batch_max_entries = 512;
  uint64_t batch_max_bytes = 1 << 20;
  uint32_t window_batches = 8;
  // While a batch is unacknowledged, another is cut only once this many entries wait (capped at
  // batch_max_entries). Small writes then ride together on the next ack ("ack clocking", like
  // Nagle's algorithm) instead of costing one gRPC message each; a backlog (catch-up) still fills
  // the whole window with full batches.
  uint32_t min_pipelined_batch = 256;
  // Entries no parked write is waiting for (w=1 traffic) may linger this many ticks before a
  // batch is cut for them, unless min_pipelined_batch of them wait: fewer, larger messages when
  // nobody is waiting on the sentinels, at the price of a sentinel lagging by up to `linger`
  // ticks. A write with w >= 2 still goes out at once (and takes the lingering entries with it).
  // 0: every entry goes out as soon as the stream is free.
  Tick linger = 0;
  Tick heartbeat_every = 20;  // Idle streams carry a heartbeat this often.
  HealthThresholds health;    // Also bounds how long a silent stream is kept before it is cancelled.
  Tick backoff_initial = 5;
  Tick backoff_max = 200;
  uint64_t seed = 1;
};

// Read-only view of the master's log that the core needs to cut batches by size.
class LogView {
 public:
  virtual ~LogView() = default;
  // The largest l in [first, last] such that entries first..l take at most max_bytes, but at
  // least `first` (a single entry always makes a batch). Precondition: first <= last <= last id.
  virtual LogId BatchEnd(LogId first, LogId last, uint64_t max_bytes) const = 0;
};

enum class WriteOutcome { kCommitted, kTimedOut };

struct Ready {
  // Open a stream to the sentinel; report Connected / Disconnected with this generation.
  struct Connect {
    SentinelId sentinel;
    uint64_t generation;
  };
  // Cancel the sentinel's stream (it stalled or was removed); Disconnected follows.
  struct Cancel {
    SentinelId sentinel;
    uint64_t generation;
  };
  // Send entries first..last (a heartbeat when first == 0) as message `seq` of the stream,
  // telling the sentinel that ids up to `commit` are committed.
  struct Send {
    SentinelId sentinel;
    uint64_t generation;
    uint64_t seq;
    LogId first;
    LogId last;
    LogId commit;
    // A batch cut while another of this stream is unacknowledged (Batch.pipelined).
    bool pipelined = false;
    bool heartbeat() const { return first == 0; }
  };
  struct Completion {
    WriteHandle handle;
    LogId id;
    WriteOutcome outcome;
    uint32_t w = 0;  // The nodes it needed when it completed (see ParkWrite's `concern`).
  };
  struct StatusChange {
    SentinelId sentinel;
    Health from;
    Health to;
  };
  // A sentinel's acknowledged position moved (for replication-latency measurements).
  struct AckProgress {
    SentinelId sentinel;
    LogId from;
    LogId to;
  };

  std::vector<Connect> connects;
  std::vector<Cancel> cancels;
  std::vector<Send> sends;
  std::vector<Completion> completions;
  std::vector<StatusChange> status_changes;
  std::vector<AckProgress> acks;
  std::optional<bool> read_only;  // Set when read-only turned on (true) or off (false).

  bool empty() const {
    return connects.empty() && cancels.empty() && sends.empty() && completions.empty() &&
           status_changes.empty() && acks.empty() && !read_only.has_value();
  }
};

struct SentinelStatus {
  SentinelId id;
  std::string name;
  Health health;
  bool connected;
  LogId acked;
  LogId lag;  // Master's last id minus acked.
  Tick silent_for;
};

class Replicator {
 public:
  Replicator(ReplicatorOptions options, const LogView* log);

  // --- Membership -------------------------------------------------------------------------
  // A sentinel joins the cluster; the core asks to connect to it on the next TakeReady().
  SentinelId AddSentinel(std::string name);
  // The sentinel leaves the cluster (e.g. it left DNS): its stream is cancelled and it no longer
  // counts toward quorum or write concern. Its id is not reused.
  void RemoveSentinel(SentinelId sentinel);
  // The sentinel is (or is no longer) the same process as another member, reached under a second
  // name: while it is, it counts toward neither the cluster size nor reachability (one node, one
  // vote), like a removed one, but is still connected to and retried, so that it can stand in if
  // the other name stops reaching that process.
  void SetDuplicate(SentinelId sentinel, bool duplicate);

  // --- Events -----------------------------------------------------------------------------
  // The master's log now holds 1..last_id (not necessarily durable yet).
  void Appended(LogId last_id);
  // The master holds 1..id durably; this is the master's own position toward write concern.
  void LocalDurable(LogId id);
  // The master appends its own entries from `first_id` on (its epoch began there): only a
  // majority position at or past first_id - 1 makes ids committed. Every node marks its log when
  // it reaches first_id - 1 (an epoch mark, ranked like an entry of this epoch by a later
  // take-over) before it reports that position. Until it is called, 1.
  void EpochStarted(LogId first_id);
  // Ids up to `id` were committed before (a sentinel learned it from an earlier master; every
  // later master's log holds them): the commit id is at least min(id, last id).
  void KnownCommitted(LogId id);
  // How a parked write's w was given: a number, or a majority / all of the cluster. The last two
  // follow the cluster while the write waits: a sentinel added, removed or found a duplicate
  // changes the w it needs (a "majority" write parked across a scale-up from 2 to 6 nodes needs
  // 4, not the 2 it was given on arrival).
  enum class Concern : uint8_t { kCount, kMajority, kAll };
  // Parks a write of `id` that needs `w` nodes; it completes in a later Ready (possibly the very
  // next one) or times out after `timeout` ticks. Precondition: 1 <= w.
  WriteHandle ParkWrite(LogId id, uint32_t w, Tick timeout, Concern concern = Concern::kCount);
  void Connected(SentinelId sentinel, uint64_t generation, LogId sentinel_last_id);
  void Disconnected(SentinelId sentinel, uint64_t generation);
  void Acked(SentinelId sentinel, uint64_t generation, uint64_t seq, LogId sentinel_last_id);
  void WriteDone(SentinelId sentinel, uint64_t generation);
  void OnTick();
  // Answers every parked write now (with kTimedOut): used when shutting down.
  void ExpireAllWrites();

  // Everything to do since the last call. Batches and heartbeats are cut here.
  Ready TakeReady();

  // --- Queries ----------------------------------------------------------------------------
  LogId last_id() const { return last_appended_; }
  LogId durable_id() const { return local_durable_; }
  // The master plus every sentinel that is a member (and not a duplicate).
  uint32_t cluster_size() const;
  uint32_t majority() const { return cluster_size() / 2 + 1; }
  // Members (master included) that are not Unhealthy (heard from within unhealthy_after).
  uint32_t reachable() const;
  bool read_only() const { return read_only_; }
  LogId CommittedAt(uint32_t w) const;
  // The highest id known to be committed: held by a majority in a way every later master's log
  // keeps (see the class comment). Never decreases.
  LogId commit_id() const { return commit_; }
  std::vector<SentinelStatus> Sentinels() const;
  size_t parked_writes() const { return waiters_.size(); }
  Tick now() const { return now_; }

  // Verifies the core's internal invariants; a non-ok Status names the first violated one.
  Status CheckInvariants() const;

 private:
  enum class Link { kIdle, kConnecting, kConnected, kCancelling };

  struct InFlight {
    uint64_t seq;
    LogId through;  // The last id the sentinel must hold once it has processed `seq`.
    bool batch;
  };

  struct Peer {
    std::string name;
    bool member = true;
    bool duplicate = false;  // SetDuplicate: another member reaches the same process.
    Link link = Link::kIdle;
    uint64_t generation = 0;
    LogId acked = 0;     // Contiguous position the sentinel reported.
    LogId next = 1;      // Next id to send on the current stream.
    uint64_t seq = 0;    // Last message number handed out on the current stream.
    uint64_t no_rewind_through_seq = 0;  // Acks up to here predate the last rewind.
    bool write_outstanding = false;
    std::deque<InFlight> in_flight;
    Tick last_heard = 0;
    Tick last_sent = 0;
    Tick attempt_started = 0;
    Tick retry_at = 0;
    Tick linger_until = 0;  // Entries not yet sent to it may wait for company until this tick.
    LogId told_commit = 0;  // The commit id its stream last carried.
    Backoff backoff;
    bool heard = false;  // Ever heard from: until then it counts as Unhealthy (unreachable).
    Health health = Health::kUnhealthy;
  };

  struct Waiter {
    LogId id;
    uint32_t w;
    std::multimap<Tick, WriteHandle>::iterator deadline;
    Concern concern = Concern::kCount;
  };

  Peer* Find(SentinelId sentinel, uint64_t generation);
  // After the cluster size changed: every majority / all waiter to the w it needs now.
  void FollowClusterSize();
  void ScheduleRetry(Peer& peer);
  // Raises the commit id to what the positions now allow, then completes the parked writes
  // they satisfy. Call it whenever a position, the membership or the log moved.
  void CompleteCommitted();
  void Complete(WriteHandle handle, WriteOutcome outcome);
  void UpdateHealth();
  void CutSends();

  // Constant after construction.
  const ReplicatorOptions options_;
  const LogView* const log_;

  Tick now_ = 0;
  LogId last_appended_ = 0;
  LogId local_durable_ = 0;
  LogId max_remote_waiter_ = 0;  // Highest id a parked write with w >= 2 has waited for.
  LogId epoch_first_ = 1;        // See EpochStarted.
  LogId commit_ = 0;
  bool read_only_ = false;
  Random random_;
  std::vector<Peer> peers_;  // Indexed by SentinelId.

  WriteHandle next_handle_ = 1;
  std::unordered_map<WriteHandle, Waiter> waiters_;
  // Per write concern, the parked writes by id (several writes may wait on one id).
  std::map<uint32_t, std::multimap<LogId, WriteHandle>> by_concern_;
  std::multimap<Tick, WriteHandle> deadlines_;

  Ready ready_;
  mutable std::vector<LogId> positions_;  // Scratch for CommittedAt (no allocation per call).
};

}  // namespace rlog::core
