// The master: takes appends over HTTP, replicates them through the core to every sentinel, and
// answers each write once its write concern is met.
//
// Threads: Pistache reactors call Insert/Health/...; the replication thread (stream_queue_)
// delivers stream events; one ticker thread advances the core's clock. All of them go through
// Step(): lock mu_, feed one event to the core, take its Ready, pull out what must be answered or
// sent, unlock, then do the I/O (build and send batches, answer parked writes). No lock is held
// across I/O, and no thread waits for a write concern: waiting writes are parked in `parked_`.
//
// Start-up with a data directory (docs/ARCHITECTURE.md, "Restarts"): the master recovers its WAL,
// then stays not-ready and refuses writes while it asks its sentinels where their logs end
// (Position). Once enough of the cluster has answered that every majority-acknowledged write
// must be among the answers, it copies what it lacks from the most advanced sentinel (Fetch),
// adopts the log id, takes the next epoch and only then accepts writes. Without a data directory
// the master starts a new log at once (epoch 1).
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "app/node_base.h"
#include "app/node_storage.h"
#include "app/tls.h"
#include "common/thread_annotations.h"
#include "config/config.h"
#include "core/idempotency_cache.h"
#include "core/replicator.h"
#include "discovery/discovery.h"
#include "metrics/metrics.h"
#include "replication/sentinel_stream.h"
#include "storage/node_log.h"

namespace rlog::app {

class MasterNode final : public NodeBase, public replication::StreamEvents {
 public:
  explicit MasterNode(const Config& config);
  ~MasterNode() override;

  // Opens (recovers) the log, starts discovery and the ticker, and with a data directory the
  // recovery from the sentinels in the background. Errors: a corrupt or unreadable WAL.
  Status Start();
  // New writes get 503; parked ones are answered within `timeout`; then everything stops.
  void Drain(std::chrono::milliseconds timeout);
  // The write-ahead log failed (OnStorageError): the process must exit 1, also from a drain.
  bool StorageFailed() EXCLUDES(mu_);

  // http::Service
  void Insert(std::string body, http::Responder respond) override;
  http::HttpReply Health() override;
  http::HttpReply Ready() override;
  http::HttpReply Metrics() override;
  void InsertTooLarge() override;

  // replication::StreamEvents
  void OnWelcome(core::SentinelId s, uint64_t gen, const replication::Welcome& welcome) override;
  void OnAck(core::SentinelId s, uint64_t gen, const replication::Ack& ack) override;
  void OnWriteDone(core::SentinelId s, uint64_t gen) override;
  void OnClosed(core::SentinelId s, uint64_t gen, const grpc::Status& status) override;

 protected:
  // Readers see what a majority holds (the commit id), as on the sentinels: a master that loses
  // its directory recovers every majority-held entry, and no other (docs/ARCHITECTURE.md, "The
  // commit id").
  core::LogId ReadCap() const override { return read_cap_.load(std::memory_order_acquire); }

 private:
  struct Parked {
    http::Responder respond;
    core::LogId id;
    uint64_t w;
    std::string concern;  // Metrics label.
    Clock::time_point start;
  };
  // Append times of the last kAppendTimes ids, for replication latency.
  static constexpr size_t kAppendTimes = 1 << 16;
  // One per SentinelId (the core never reuses ids, so this only grows).
  struct Member {
    std::string name;  // Stable identity (host:port, ip:port or SRV target:port).
    std::shared_ptr<replication::Replication::Stub> stub;  // Rebuilt when the address changes.
    uint64_t generation = 0;
    std::shared_ptr<replication::SentinelStream> stream;
    std::string last_error;
    bool removed = false;
    // The name of the member that reaches the same sentinel process, if the sentinel refused
    // this one as a second name for it (OnClosed): then it counts toward nothing
    // (core::Replicator::SetDuplicate).
    std::string duplicate_of;
  };

  void Step(const std::function<void(core::Replicator&)>& event) EXCLUDES(mu_);
  core::Tick ToTicks(uint64_t ms) const;

  void ApplyMembership(const std::vector<discovery::Change>& changes) EXCLUDES(mu_);
  void ApplyMembershipLocked(core::Replicator& core, const std::vector<discovery::Change>& changes)
      REQUIRES(mu_);
  std::shared_ptr<replication::Replication::Stub> NewStub(const std::string& address) const;

  // Start-up recovery from the sentinels (runs on recovery_thread_); see the file comment.
  void RecoverFromSentinels() EXCLUDES(mu_);
  // Copies ids up to `target` of log `log_id` from a sentinel into the local log.
  Status FetchFrom(replication::Replication::Stub& stub, const std::string& log_id,
                   core::LogId target);
  // Takes the log over: identity, next epoch, core told what the log holds; writable after.
  Status TakeOver(const std::string& log_id, uint64_t epoch) EXCLUDES(mu_);
  // The committer stopped (failed write or fsync): nothing more can be made durable here.
  void OnStorageError(const Status& error) EXCLUDES(mu_);

  // Constant after construction.
  const Config config_;
  DataDirFileSystem fs_;                     // Set by Start; outlives the log.
  std::unique_ptr<storage::NodeLog> store_;  // Set by Start, before anything serves.
  // Set by Start: the log on disk holds everything this master ever counted itself for (written
  // with fsync: always all along: the always-synced mark, node_storage.h).
  bool own_log_trusted_ = false;
  std::unique_ptr<discovery::Discovery> discovery_;

  Mutex mu_;
  std::unique_ptr<core::Replicator> core_ GUARDED_BY(mu_);  // Set by Start.
  std::string log_id_ GUARDED_BY(mu_);                      // Empty until the log is taken over.
  uint64_t epoch_ GUARDED_BY(mu_) = 0;
  // Start-up: true until TakeOver. Writes are refused and no stream is opened meanwhile;
  // membership changes wait in pending_membership_ and the sentinels' addresses in
  // recovery_targets_ (identity -> address).
  bool recovering_ GUARDED_BY(mu_) = false;
  std::set<std::string> metric_sentinels_ GUARDED_BY(mu_);  // Named in the last /metrics.
  std::string recovery_progress_ GUARDED_BY(mu_);
  std::vector<discovery::Change> pending_membership_ GUARDED_BY(mu_);
  std::map<std::string, std::string> recovery_targets_ GUARDED_BY(mu_);
  // What each sentinel asked during recovery last answered: "" for a position, else why it gave
  // none (for /health: no stream is open yet to report it).
  std::map<std::string, std::string> recovery_answers_ GUARDED_BY(mu_);
  // For /health and /metrics while recovering: each sentinel recovery knows of, whether it gave
  // its position, and else why not ("" when not asked yet).
  struct RecoveringSentinel {
    std::string name;
    bool gave = false;
    std::string why;
  };
  std::vector<RecoveringSentinel> RecoveringSentinels() const REQUIRES(mu_);
  std::string storage_error_ GUARDED_BY(mu_);  // Set once the WAL has failed.
  // Set once a sentinel has ended a stream with ABORTED: a master of a newer epoch has taken the
  // log over. Like Raft's leader that sees a higher term, this one stops taking writes for good
  // (a restart takes the log over again, with a newer epoch still).
  std::string deposed_ GUARDED_BY(mu_);
  core::IdempotencyCache idempotency_ GUARDED_BY(mu_);
  std::unordered_map<core::WriteHandle, Parked> parked_ GUARDED_BY(mu_);
  std::vector<Member> members_ GUARDED_BY(mu_);
  std::map<std::string, core::SentinelId> by_identity_ GUARDED_BY(mu_);
  // Streams to cancel at the end of the current Step (their sentinel moved or left).
  std::vector<std::shared_ptr<replication::SentinelStream>> to_cancel_ GUARDED_BY(mu_);
  bool draining_ GUARDED_BY(mu_) = false;
  std::condition_variable drained_;  // Signalled when parked_ empties while draining_.
  std::vector<Clock::time_point> append_times_ GUARDED_BY(mu_);

  metrics::Metrics metrics_;
  CertificateExpiryCache tls_expiry_;  // For /metrics (tls.h).
  // Runs every replication stream (and delivers their events); shut down by the destructor.
  replication::StreamQueue stream_queue_;

  std::atomic<bool> stop_{false};
  // The commit id readers may see up to (ReadCap): the core's, or the one saved in <data_dir>/commit
  // before a restart if higher (until the core learns it again). Written under mu_: raised in
  // Step, set at Start, and lowered only by TakeOver, to the log's end (a saved value past it).
  std::atomic<core::LogId> read_cap_{0};
  core::LogId saved_commit_ GUARDED_BY(mu_) = 0;  // Last written to <data_dir>/commit.
  Clock::time_point last_commit_save_{};           // Ticker thread only.
  // Writes read_cap_ to <data_dir>/commit if it moved (ticker, once a second, and Drain).
  void SaveCommit() EXCLUDES(mu_);
  // The blocking gRPC call the recovery thread is in (Position, Fetch), so that Drain can cancel
  // it rather than wait out its deadline (up to 30 s for a Fetch).
  Mutex recovery_call_mu_;
  grpc::ClientContext* recovery_call_ GUARDED_BY(recovery_call_mu_) = nullptr;
  // Registers `context` as that call (cancelled at once if the node is stopping already) until
  // the returned guard goes.
  std::shared_ptr<void> EnterRecoveryCall(grpc::ClientContext* context) EXCLUDES(recovery_call_mu_);
  std::thread ticker_;
  std::thread recovery_thread_;
};

}  // namespace rlog::app
