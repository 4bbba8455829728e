// Sentinel side of replication: the gRPC service that accepts the master's stream and answers a
// restarting master's Position and Fetch calls, over the sentinel's storage::NodeLog.
//
// Each stream is one small state machine (ReplicateCall): it reads the master's messages in
// order, applies batches to the log (ids it holds are ignored, gaps are held back) and
// acknowledges what is DURABLE: an Ack never names an id above NodeLog::durable_id(), nor the seq
// of a message whose entries are not durable yet (DurableAckQueue). Acks that wait for the disk
// are sent by OnDurable (the NodeLog's on_durable; a log with rounds_on_caller syncs each batch
// the master waits for inside Apply, and then the Ack follows the message as in memory, where
// every id is durable at once). Writes are
// gated to one in flight; an ack that piles up meanwhile replaces the older unsent one.
//
// Hello: a master of another log (while entries are held) is refused with FAILED_PRECONDITION,
// one with an epoch older than the newest accepted with ABORTED (it is deposed, and so is the
// open stream of an older master, at its next message); the part of the log after its longest
// prefix the master's log also holds is cut (core::CommonPrefix; fetched again from the master);
// then the master's identity is recorded, durably (see hello_decision.h).
//
// Commit id: every Batch and Heartbeat carries the master's commit id (replication.proto); the
// service keeps the highest of its log's, and the node shows readers nothing above it
// (commit_id()). It is reset when the log is adopted under another log id, and reported in the
// Welcome.
//
// Threads: every call (streams, Position, Fetch) uses gRPC's asynchronous API on one completion
// queue, drained by one thread of this service (Start/Stop): a message is read, applied and
// acknowledged on the thread that polled the socket, with no hand-off between threads. gRPC's
// callback API, used before, runs completions on two "nexting" threads, and as long as one
// callback method is served those threads exist and take turns polling every socket of the
// process, waking each other; under w=3 load on the two-core benchmark machine they switched
// about 3,900 times a second each, and the sentinel made twice the system calls it makes now
// (docs/PERFORMANCE.md, "Replication threads").
//
// Lifetime: NodeLog's writers (Apply, SetIdentity, TruncateAfter, MarkEpochStart) run under
// log_mu_, which also gives Position and Fetch a consistent view. Calls register themselves in
// `streams_` and unregister before they delete themselves, under streams_mu_, so OnDurable never
// reaches a deleted call. Lock order: log_mu_, then streams_mu_, then a call's own lock. With
// wal.sync_on_replication_thread (NodeLogOptions::rounds_on_caller) the NodeLog writes and syncs
// each batch inside Apply, on the queue's thread (the master sends the next batch only once this
// one is acknowledged under w >= 2 load, so little waits that would not wait anyway; Position and
// Fetch wait behind the fsyncs of the batches read before them),
// and reports it there, so OnDurable runs under log_mu_; a batch marked `pipelined` (the master
// did not wait) is handed to the committer thread instead, which reports it as without the key.
// Otherwise nothing on the queue's thread
// blocks, except a Hello's durable changes (rare: a new master or epoch, a diverged tail, the new
// epoch's mark) and the test-only injected delays.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>

// common/thread_annotations.h before any gRPC header: abseil defines the same macro names, and
// only a redefinition inside a system header goes unreported.
#include "common/thread_annotations.h"
#include "rlog/replication.grpc.pb.h"
#include "storage/node_log.h"

namespace grpc {
class ServerBuilder;
}

namespace rlog::replication {

// Test-only faults, enabled by --enable-test-faults. Probabilities in [0, 1].
struct SentinelFaults {
  double fail_after_append = 0;  // Apply a batch, then drop the stream without acking.
  double drop_stream = 0;        // Drop the stream before applying a message.
  uint32_t max_delay_ms = 0;     // Sleep up to this long before applying a message.
  uint64_t seed = 1;
};

// Parses "fail_after_append=P,drop_stream=P,delay_ms=N,seed=N".
Result<SentinelFaults> ParseFaults(const std::string& spec);

// What the sentinel knows about its master and its streams; read by /health. Thread-safe.
class SentinelState {
 public:
  void SetMaster(const std::string& master_http);
  // A master's Hello was accepted; it held ids up to `master_last_id` then.
  void Welcomed(uint64_t master_last_id) {
    welcomed_last_id_.store(master_last_id);
    welcomed_.store(true);
    std::lock_guard lock(mu_);
    refusal_.clear();
  }
  // A master's Hello was refused for its log (another log id, or one that would cut committed
  // entries): until a master is welcomed again, why (for /readyz).
  void Refused(const std::string& why) {
    std::lock_guard lock(mu_);
    refusal_ = why;
  }
  std::string refusal() const {
    std::lock_guard lock(mu_);
    return refusal_;
  }
  void Heard();
  void Received(uint64_t entries) { entries_received_.fetch_add(entries); }
  void StreamOpened() { streams_.fetch_add(1); }
  void StreamClosed() { streams_.fetch_sub(1); }

  std::string master_http() const;
  bool connected() const { return streams_.load() > 0; }
  // Milliseconds since the master was last heard, or nullopt if never.
  std::optional<int64_t> last_heard_ms_ago() const;
  // Entries that arrived in batches since the process started (resends included).
  uint64_t entries_received() const { return entries_received_.load(); }
  // Whether a master was ever welcomed since the process started, and the last id it held then.
  bool welcomed() const { return welcomed_.load(); }
  uint64_t welcomed_last_id() const { return welcomed_last_id_.load(); }

 private:
  mutable std::mutex mu_;
  std::string master_http_;                // Guarded by mu_.
  std::string refusal_;                    // Guarded by mu_.
  std::atomic<int64_t> last_heard_ns_{0};  // steady_clock; 0 = never.
  std::atomic<int> streams_{0};
  std::atomic<uint64_t> entries_received_{0};
  std::atomic<bool> welcomed_{false};
  std::atomic<uint64_t> welcomed_last_id_{0};
};

class ReplicateCall;
template <typename Request, typename Reply>
class UnaryCall;

class SentinelService final : public Replication::AsyncService {
 public:
  // Fetch replies carry at most this many message bytes (at least one entry).
  static constexpr uint64_t kMaxFetchBytes = 16u << 20;

  // `log` outlives the service; the service outlives the gRPC server serving it.
  SentinelService(storage::NodeLog* log, SentinelState* state, std::string node_id,
                  SentinelFaults faults)
      : log_(log),
        state_(state),
        node_id_(std::move(node_id)),
        instance_id_(NewInstanceId()),
        faults_(faults) {}

  ~SentinelService() override;

  // Registers the service with `builder` and takes the completion queue the streams run on.
  // Call once, before builder.BuildAndStart().
  void AddTo(grpc::ServerBuilder* builder);
  // After BuildAndStart(): starts the thread that runs every replication stream.
  void Start();
  // After the server's Shutdown() has returned (every stream is over then): drains the queue and
  // joins its thread. Idempotent; the destructor calls it.
  void Stop();

  // The answers to a restarting master's unary calls (run on the queue's thread).
  grpc::Status AnswerPosition(const PositionRequest& request, PositionReply* reply)
      EXCLUDES(log_mu_);
  grpc::Status AnswerFetch(const FetchRequest& request, FetchReply* reply) EXCLUDES(log_mu_);

  // The log's durable id moved (NodeLog's on_durable: inside Apply under log_mu_, or on its
  // committer thread): every open stream sends the Ack that has become possible, except the one
  // whose message is being applied (it acks once the message is recorded).
  void OnDurable() EXCLUDES(streams_mu_);

  // The highest commit id a master of this log has told (0: none yet). Lock-free: every read
  // of the node asks.
  core::LogId commit_id() const { return commit_.load(std::memory_order_acquire); }
  // The log id and commit id together, for the checkpoint (storage/commit_checkpoint.h).
  std::pair<std::string, core::LogId> CommitOfLog() const EXCLUDES(log_mu_);
  // True once after a Hello lowered the commit id (it cut committed entries): the owner saves the
  // checkpoint at once rather than at its next periodic save, so that a restart in between does
  // not report the old value to a master as committed.
  bool TakeCommitLowered() { return commit_lowered_.exchange(false); }
  // Before serving: the commit id saved for `log_id`, if that is the log's (ignored otherwise).
  void RestoreCommit(const std::string& log_id, core::LogId commit_id) EXCLUDES(log_mu_);

  // Set before serving. Non-empty: every call (Replicate, Position, Fetch) must come from a
  // client whose TLS certificate carries this name (a DNS subjectAltName, or the common name of a
  // certificate without SANs); others are refused with PERMISSION_DENIED (tls.master_name).
  void set_allowed_master(std::string name) { allowed_master_ = std::move(name); }
  // OK, or the PERMISSION_DENIED the call from `context`'s peer gets.
  grpc::Status CheckPeer(const grpc::ServerContext& context) const;

  // Set before serving. Called after entries are applied (wakes long-polling readers).
  void set_on_applied(std::function<void(core::LogId)> fn) { on_applied_ = std::move(fn); }
  // Set before serving. Called with an error of the log other than a refusal (the log cannot
  // persist); the node stops the process. If it returns, the stream is ended with UNAVAILABLE.
  void set_on_storage_failure(std::function<void(const Status&)> fn) {
    on_storage_failure_ = std::move(fn);
  }

 private:
  friend class ReplicateCall;
  template <typename Request, typename Reply>
  friend class UnaryCall;

  // Drains cq_ until it is shut down, running each completed operation.
  void Run();
  // Count the calls alive (waiting to be accepted, or being served); see Stop().
  void CallStarted();
  void CallEnded();

  // Applies the Hello's rules to the log; fills the Welcome. FailedPrecondition (another log) or
  // Fenced (an older epoch): refuse the master; any other error: the log failed (already
  // reported to on_storage_failure_).
  Status Admit(const Hello& hello, Welcome* welcome) EXCLUDES(log_mu_);
  // Applies a batch from the stream of the master of `stream_epoch` and learns its commit id;
  // returns the contiguous last id (errors as for Admit). Fenced, nothing applied, once a newer
  // master has been accepted (the stream's master is deposed).
  Result<core::LogId> Apply(const Batch& batch, uint64_t stream_epoch) EXCLUDES(log_mu_);
  // Learns `commit_id` and returns the log's last id, or Fenced if a master newer than
  // `stream_epoch` was accepted.
  Result<core::LogId> PositionIfCurrent(uint64_t stream_epoch, core::LogId commit_id)
      EXCLUDES(log_mu_);
  // Raises commit_ to `commit_id`; true if it moved.
  bool LearnCommitLocked(core::LogId commit_id) REQUIRES(log_mu_);
  // Writes entries from..to of the log to <data_dir>/cut-committed-<log>-<from>-<to>-<ms>.jsonl
  // (one JSON object per line), durably, before a Hello cuts them although they were committed;
  // in memory, only says so. An error: no copy could be written (the Hello is refused).
  Status KeepCutCommitted(core::LogId from, core::LogId to, uint64_t epoch) REQUIRES(log_mu_);
  // After the log's identity may have changed: a commit id of another log id is dropped.
  void CommitFollowsLogLocked() REQUIRES(log_mu_);
  // The refusal of a deposed master's stream (logged).
  Status Superseded(uint64_t stream_epoch) const REQUIRES(log_mu_);
  Status StorageFailure(const Status& error);

  static std::string NewInstanceId();
  void Register(ReplicateCall* stream) EXCLUDES(streams_mu_);
  void Unregister(ReplicateCall* stream) EXCLUDES(streams_mu_);
  // Records that `stream` carries the master of `hello` (its log id and epoch: one master) under
  // the name it gives this sentinel. Empty if that is fine; else the other name another live
  // stream of the same master already claimed: the master lists this sentinel twice, and a
  // second stream's Hello, built before entries the first one delivered, would make the log drop
  // them (a diverged tail, as far as it can tell).
  std::string ClaimName(ReplicateCall* stream, const Hello& hello) EXCLUDES(streams_mu_);

  // Constant after construction (callbacks: set before serving).
  storage::NodeLog* const log_;
  SentinelState* const state_;
  const std::string node_id_;
  const std::string instance_id_;  // PositionReply.instance_id: random, one per process.
  std::string allowed_master_;  // See set_allowed_master.
  const SentinelFaults faults_;
  std::function<void(core::LogId)> on_applied_;
  std::function<void(const Status&)> on_storage_failure_;

  std::atomic<uint64_t> fault_counter_{0};
  mutable Mutex log_mu_;  // One writer of log_ at a time; Position/Fetch read under it.
  std::atomic<core::LogId> commit_{0};             // Written under log_mu_.
  std::atomic<bool> commit_lowered_{false};        // See TakeCommitLowered.
  std::string commit_log_id_ GUARDED_BY(log_mu_);  // The log commit_ is of.
  Mutex streams_mu_;
  std::set<ReplicateCall*> streams_ GUARDED_BY(streams_mu_);
  struct Claim {
    std::string log_id;
    uint64_t epoch = 0;
    std::string name;
  };
  std::map<ReplicateCall*, Claim> claims_ GUARDED_BY(streams_mu_);  // ClaimName's.

  std::unique_ptr<grpc::ServerCompletionQueue> cq_;  // Set by AddTo.
  std::thread cq_thread_;                            // Between Start and Stop.
  bool stopped_ = false;                             // Start/Stop run on one thread.
  std::mutex calls_mu_;
  std::condition_variable calls_ended_;
  int live_calls_ = 0;  // Guarded by calls_mu_.
};

}  // namespace rlog::replication
