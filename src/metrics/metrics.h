// rlog's Prometheus metrics (prometheus-cpp), served at GET /metrics by each node.
//
// Names and labels follow DESIGN.md "Metrics"; label values are bounded (write concern "1".."16",
// "majority", "all"; sentinel names from configuration; a fixed set of outcomes). Handles are
// created up front so the hot path only touches atomics (no Family::Add per request).
// Thread-safe.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace prometheus {
class Registry;
class Counter;
class Gauge;
class Histogram;
template <typename T>
class Family;
}  // namespace prometheus

namespace rlog::metrics {

enum class InsertOutcome {
  kOk,
  kTimeout,
  kReadOnly,
  kBadRequest,
  kTooLarge,
  kDraining,
  kRecovering,    // The master is still recovering its log from the sentinels (503).
  kStorageError,  // The write-ahead log failed; not acknowledged (500).
  kDeposed,       // A newer master has taken the log over; this one takes no writes (503).
  kLogFull,       // The log takes max_log_bytes of memory; no more writes (507).
  kCount
};

class Metrics {
 public:
  static constexpr int kMaxNumericConcern = 16;

  Metrics();
  ~Metrics();

  // `concern` is the label: "1".."16", "majority" or "all" (anything else counts as "other").
  void CountInsert(const std::string& concern, InsertOutcome outcome);
  // Exports the concern's series at 0, so that rate() sees its first answer: the master declares
  // the usual concerns at start and each insert's concern when it arrives (a parked write is
  // counted only when it is answered, perhaps minutes later).
  void DeclareConcern(const std::string& concern);
  void ObserveInsert(const std::string& concern, std::chrono::nanoseconds took);
  void CountWriteAcks(const std::string& concern, uint64_t acks);
  void ObserveReplication(const std::string& sentinel, std::chrono::nanoseconds took);
  // One batch of `entries` entries handed to the sentinel's stream (heartbeats not counted):
  // rlog_replication_batches_total and rlog_replication_entries_total, whose ratio is the batch
  // size.
  void CountReplicationBatch(const std::string& sentinel, uint64_t entries);
  void SetSentinel(const std::string& sentinel, uint64_t acked_id, uint64_t lag,
                   const std::string& status);
  // The sentinel left the cluster: its status series all read 0 and its lag 0, so that alerts on
  // them clear (the series stay: other threads may still hold their handles).
  void ClearSentinel(const std::string& sentinel);
  void SetLastId(uint64_t id);
  void SetCommitId(uint64_t id);
  void SetReadOnly(bool read_only);
  // rlog_log_memory_bytes, and rlog_log_max_bytes (0: no limit).
  void SetLogMemory(uint64_t bytes, uint64_t max_bytes);

  // With a data directory: registers the WAL metrics (nodes in memory export none of them) and
  // records what start-up recovery found. Call once, before ObserveWalSync.
  void EnableWal(uint64_t recovered_entries, uint64_t truncated_bytes, uint64_t truncated_records);
  // One fsync of the write-ahead log (rlog_wal_fsync_duration_seconds). No-op before EnableWal.
  void ObserveWalSync(std::chrono::nanoseconds took);

  // With tls.*: registers rlog_tls_certificate_expiry_timestamp_seconds{certificate}. Call once,
  // before SetTlsCertificateExpiry.
  void EnableTls();
  // When a certificate expires, Unix seconds: `certificate` is "node" (this node's own, the
  // first of tls.cert_file) or "ca" (the first of tls.ca_file's to expire). No-op before
  // EnableTls.
  void SetTlsCertificateExpiry(const std::string& certificate, int64_t not_after_unix_s);

  // The exposition text (Prometheus text format 0.0.4).
  std::string Serialize() const;

 private:
  struct ConcernHandles {
    std::array<prometheus::Counter*, static_cast<int>(InsertOutcome::kCount)> inserts{};
    prometheus::Histogram* duration = nullptr;
    prometheus::Counter* acks = nullptr;
  };
  struct SentinelHandles {
    prometheus::Histogram* latency = nullptr;
    prometheus::Counter* batches = nullptr;
    prometheus::Counter* entries = nullptr;
    prometheus::Gauge* acked = nullptr;
    prometheus::Gauge* lag = nullptr;
    std::map<std::string, prometheus::Gauge*> up;  // By status.
  };

  ConcernHandles& Concern(const std::string& concern);
  SentinelHandles& Sentinel(const std::string& sentinel);
  ConcernHandles& ConcernAt(size_t index, const std::string& label);

  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>* inserts_;
  prometheus::Family<prometheus::Histogram>* insert_duration_;
  prometheus::Family<prometheus::Counter>* write_acks_;
  prometheus::Family<prometheus::Histogram>* replication_latency_;
  prometheus::Family<prometheus::Counter>* replication_batches_;
  prometheus::Family<prometheus::Counter>* replication_entries_;
  prometheus::Family<prometheus::Gauge>* sentinel_acked_;
  prometheus::Family<prometheus::Gauge>* sentinel_lag_;
  prometheus::Family<prometheus::Gauge>* sentinel_up_;
  std::atomic<prometheus::Histogram*> wal_fsync_{nullptr};
  std::atomic<prometheus::Family<prometheus::Gauge>*> tls_expiry_{nullptr};
  prometheus::Gauge* last_id_;
  prometheus::Gauge* commit_id_;
  prometheus::Gauge* read_only_;
  prometheus::Gauge* log_memory_;
  prometheus::Gauge* log_max_;

  // 1..16, majority, all, other: created on first use (so unused concerns export no series),
  // then read without a lock.
  std::mutex concerns_mu_;
  std::array<std::atomic<ConcernHandles*>, kMaxNumericConcern + 3> concerns_{};
  std::vector<std::unique_ptr<ConcernHandles>> concern_storage_;  // Guarded by concerns_mu_.
  std::mutex sentinels_mu_;
  std::map<std::string, SentinelHandles> sentinels_;  // Guarded by sentinels_mu_.
};

}  // namespace rlog::metrics
