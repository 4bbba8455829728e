#include "metrics/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

namespace rlog::metrics {

namespace {

const char* OutcomeLabel(InsertOutcome o) {
  switch (o) {
    case InsertOutcome::kOk:
      return "ok";
    case InsertOutcome::kTimeout:
      return "timeout";
    case InsertOutcome::kReadOnly:
      return "read_only";
    case InsertOutcome::kBadRequest:
      return "bad_request";
    case InsertOutcome::kTooLarge:
      return "too_large";
    case InsertOutcome::kDraining:
      return "draining";
    case InsertOutcome::kRecovering:
      return "recovering";
    case InsertOutcome::kStorageError:
      return "storage_error";
    case InsertOutcome::kDeposed:
      return "deposed";
    case InsertOutcome::kLogFull:
      return "log_full";
    case InsertOutcome::kCount:
      break;
  }
  return "other";
}

// 10 µs .. 1 h, roughly x2 per bucket, with extra resolution under 1 ms. The top buckets are for
// writes that wait out a long timeoutMs (600 s by default, up to insert.max_timeout_ms: 1 h) and
// for entries replicated to a sentinel that was away for minutes.
prometheus::Histogram::BucketBoundaries LatencyBuckets() {
  return {0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0025,
          0.005,   0.0075,   0.01,    0.025,  0.05,    0.1,    0.25,    0.5,   1,
          2.5,     5,        10,      20,     30,      60,     120,     300,   600,
          1800,    3600};
}

double Seconds(std::chrono::nanoseconds d) { return std::chrono::duration<double>(d).count(); }

}  // namespace

Metrics::Metrics() : registry_(std::make_shared<prometheus::Registry>()) {
  // One family each; series are added per label set (see ConcernAt and Sentinel).
  auto family = [this](auto builder, const char* name, const char* help) {
    return &builder.Name(name).Help(help).Register(*registry_);
  };
  inserts_ = family(prometheus::BuildCounter(), "rlog_inserts_total",
                    "Inserts answered, by write concern and outcome.");
  insert_duration_ = family(prometheus::BuildHistogram(), "rlog_insert_duration_seconds",
                            "Time from receiving an insert to answering it, by write concern.");
  write_acks_ = family(prometheus::BuildCounter(), "rlog_write_acks_total",
                       "Node acknowledgements counted toward committed writes (w per write).");
  replication_latency_ = family(prometheus::BuildHistogram(), "rlog_replication_latency_seconds",
                                "Time from append on the master to the sentinel's ack.");
  replication_batches_ = family(prometheus::BuildCounter(), "rlog_replication_batches_total",
                                "Batches of entries sent to the sentinel (not heartbeats).");
  replication_entries_ = family(prometheus::BuildCounter(), "rlog_replication_entries_total",
                                "Entries sent to the sentinel, resent ones included.");
  sentinel_acked_ = family(prometheus::BuildGauge(), "rlog_sentinel_acked_id",
                           "Highest id the sentinel acknowledged holding contiguously.");
  sentinel_lag_ = family(prometheus::BuildGauge(), "rlog_sentinel_lag_entries",
                         "Entries the sentinel lacks: master's last id minus its acked id.");
  sentinel_up_ = family(prometheus::BuildGauge(), "rlog_sentinel_up",
                        "1 for the sentinel's current status (Healthy/Suspected/Unhealthy).");
  // Gauges without labels: one series each, created here.
  auto gauge = [this](const char* name, const char* help) {
    return &prometheus::BuildGauge().Name(name).Help(help).Register(*registry_).Add({});
  };
  last_id_ = gauge("rlog_log_last_id", "Last id this node holds (its readers see up to rlog_commit_id).");
  commit_id_ = gauge("rlog_commit_id",
                     "Highest id this node knows a majority holds; its readers see no more.");
  read_only_ = gauge("rlog_read_only", "1 while the master refuses writes for lack of a majority.");
  log_memory_ = gauge("rlog_log_memory_bytes",
                      "Memory the log's entries take on this node (slots and payload chunks).");
  log_max_ = gauge("rlog_log_max_bytes",
                   "max_log_bytes: the master refuses inserts beyond it (0: no limit).");
}

Metrics::~Metrics() = default;

void Metrics::EnableTls() {
  tls_expiry_.store(&prometheus::BuildGauge()
                         .Name("rlog_tls_certificate_expiry_timestamp_seconds")
                         .Help("When a TLS certificate of replication expires (Unix time): this "
                               "node's own (node) or the first of its CA bundle (ca).")
                         .Register(*registry_));
}

void Metrics::SetTlsCertificateExpiry(const std::string& certificate, int64_t not_after_unix_s) {
  if (auto* family = tls_expiry_.load()) {
    family->Add({{"certificate", certificate}}).Set(static_cast<double>(not_after_unix_s));
  }
}

void Metrics::EnableWal(uint64_t recovered_entries, uint64_t truncated_bytes,
                        uint64_t truncated_records) {
  auto gauge = [&](const char* name, const char* help, uint64_t value) {
    prometheus::BuildGauge()
        .Name(name)
        .Help(help)
        .Register(*registry_)
        .Add({})
        .Set(static_cast<double>(value));
  };
  gauge("rlog_wal_recovered_entries", "Entries read back from the write-ahead log at start-up.",
        recovered_entries);
  gauge("rlog_wal_truncated_bytes",
        "Bytes of a torn or zero-filled tail cut from the last WAL segment at start-up.",
        truncated_bytes);
  gauge("rlog_wal_truncated_records", "Records the tail cut at start-up had begun.",
        truncated_records);
  wal_fsync_.store(&prometheus::BuildHistogram()
                        .Name("rlog_wal_fsync_duration_seconds")
                        .Help("Duration of each fsync of the write-ahead log (group commit).")
                        .Register(*registry_)
                        .Add({}, LatencyBuckets()),
                   std::memory_order_release);
}

void Metrics::ObserveWalSync(std::chrono::nanoseconds took) {
  if (prometheus::Histogram* h = wal_fsync_.load(std::memory_order_acquire)) {
    h->Observe(Seconds(took));
  }
}

Metrics::ConcernHandles& Metrics::ConcernAt(size_t index, const std::string& label) {
  if (ConcernHandles* h = concerns_[index].load(std::memory_order_acquire)) return *h;
  std::lock_guard lock(concerns_mu_);
  if (ConcernHandles* h = concerns_[index].load(std::memory_order_acquire)) return *h;
  auto owned = std::make_unique<ConcernHandles>();
  ConcernHandles& h = *owned;
  for (int o = 0; o < static_cast<int>(InsertOutcome::kCount); ++o) {
    h.inserts[o] = &inserts_->Add(
        {{"write_concern", label}, {"outcome", OutcomeLabel(static_cast<InsertOutcome>(o))}});
  }
  h.duration = &insert_duration_->Add({{"write_concern", label}}, LatencyBuckets());
  h.acks = &write_acks_->Add({{"write_concern", label}});
  concern_storage_.push_back(std::move(owned));
  concerns_[index].store(&h, std::memory_order_release);
  return h;
}

Metrics::ConcernHandles& Metrics::Concern(const std::string& concern) {
  if (concern == "majority") return ConcernAt(kMaxNumericConcern, concern);
  if (concern == "all") return ConcernAt(kMaxNumericConcern + 1, concern);
  if (concern.size() <= 2 && !concern.empty() && concern[0] >= '1' && concern[0] <= '9' &&
      (concern.size() == 1 || (concern[1] >= '0' && concern[1] <= '9'))) {
    int w = std::stoi(concern);
    if (w >= 1 && w <= kMaxNumericConcern) return ConcernAt(w - 1, concern);
  }
  return ConcernAt(kMaxNumericConcern + 2, "other");
}

Metrics::SentinelHandles& Metrics::Sentinel(const std::string& sentinel) {
  std::lock_guard lock(sentinels_mu_);
  auto it = sentinels_.find(sentinel);
  if (it != sentinels_.end()) return it->second;
  SentinelHandles h;
  h.latency = &replication_latency_->Add({{"sentinel", sentinel}}, LatencyBuckets());
  h.batches = &replication_batches_->Add({{"sentinel", sentinel}});
  h.entries = &replication_entries_->Add({{"sentinel", sentinel}});
  h.acked = &sentinel_acked_->Add({{"sentinel", sentinel}});
  h.lag = &sentinel_lag_->Add({{"sentinel", sentinel}});
  for (const char* status : {"Healthy", "Suspected", "Unhealthy"}) {
    h.up[status] = &sentinel_up_->Add({{"sentinel", sentinel}, {"status", status}});
  }
  return sentinels_.emplace(sentinel, std::move(h)).first->second;
}

void Metrics::DeclareConcern(const std::string& concern) { Concern(concern); }

void Metrics::CountInsert(const std::string& concern, InsertOutcome outcome) {
  Concern(concern).inserts[static_cast<int>(outcome)]->Increment();
}

void Metrics::ObserveInsert(const std::string& concern, std::chrono::nanoseconds took) {
  Concern(concern).duration->Observe(Seconds(took));
}

void Metrics::CountWriteAcks(const std::string& concern, uint64_t acks) {
  Concern(concern).acks->Increment(static_cast<double>(acks));
}

void Metrics::ObserveReplication(const std::string& sentinel, std::chrono::nanoseconds took) {
  Sentinel(sentinel).latency->Observe(Seconds(took));
}

void Metrics::CountReplicationBatch(const std::string& sentinel, uint64_t entries) {
  SentinelHandles& h = Sentinel(sentinel);
  h.batches->Increment();
  h.entries->Increment(static_cast<double>(entries));
}

void Metrics::SetSentinel(const std::string& sentinel, uint64_t acked_id, uint64_t lag,
                          const std::string& status) {
  SentinelHandles& h = Sentinel(sentinel);
  h.acked->Set(static_cast<double>(acked_id));
  h.lag->Set(static_cast<double>(lag));
  for (auto& [name, gauge] : h.up) gauge->Set(name == status ? 1 : 0);
}

void Metrics::ClearSentinel(const std::string& sentinel) {
  SentinelHandles& h = Sentinel(sentinel);
  h.lag->Set(0);
  for (auto& [name, gauge] : h.up) gauge->Set(0);
}

void Metrics::SetLastId(uint64_t id) { last_id_->Set(static_cast<double>(id)); }
void Metrics::SetCommitId(uint64_t id) { commit_id_->Set(static_cast<double>(id)); }

void Metrics::SetReadOnly(bool read_only) { read_only_->Set(read_only ? 1 : 0); }

void Metrics::SetLogMemory(uint64_t bytes, uint64_t max_bytes) {
  log_memory_->Set(static_cast<double>(bytes));
  log_max_->Set(static_cast<double>(max_bytes));
}

std::string Metrics::Serialize() const {
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

}  // namespace rlog::metrics
