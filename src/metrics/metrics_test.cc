#include "metrics/metrics.h"

#include <gtest/gtest.h>

#include <map>
#include <sstream>

namespace rlog::metrics {
namespace {

// Parses the exposition into "name{labels}" -> value (series come out in hash order).
std::map<std::string, double> Parse(const std::string& text) {
  std::map<std::string, double> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    auto space = line.rfind(' ');
    out[line.substr(0, space)] = std::stod(line.substr(space + 1));
  }
  return out;
}

TEST(Metrics, InsertsAreCountedByConcernAndOutcome) {
  Metrics m;
  m.CountInsert("3", InsertOutcome::kOk);
  m.CountInsert("3", InsertOutcome::kOk);
  m.CountInsert("majority", InsertOutcome::kTimeout);
  auto s = Parse(m.Serialize());
  EXPECT_EQ(s.at(R"(rlog_inserts_total{outcome="ok",write_concern="3"})"), 2);
  EXPECT_EQ(s.at(R"(rlog_inserts_total{outcome="timeout",write_concern="majority"})"), 1);
  EXPECT_EQ(s.count(R"(rlog_inserts_total{outcome="ok",write_concern="1"})"), 0u)
      << "unused concerns export no series";
}

TEST(Metrics, ADeclaredConcernIsExportedAtZeroBeforeItsFirstAnswer) {
  Metrics m;
  m.DeclareConcern("all");
  auto s = Parse(m.Serialize());
  EXPECT_EQ(s.at(R"(rlog_inserts_total{outcome="timeout",write_concern="all"})"), 0);
  EXPECT_EQ(s.at(R"(rlog_insert_duration_seconds_count{write_concern="all"})"), 0);
  m.CountInsert("all", InsertOutcome::kTimeout);
  s = Parse(m.Serialize());
  EXPECT_EQ(s.at(R"(rlog_inserts_total{outcome="timeout",write_concern="all"})"), 1);
}

TEST(Metrics, LatencyBucketsReachTheLongestInsertTimeout) {
  Metrics m;
  m.ObserveInsert("3", std::chrono::seconds(600));  // insert.default_timeout_ms
  auto s = Parse(m.Serialize());
  EXPECT_EQ(s.at(R"(rlog_insert_duration_seconds_bucket{write_concern="3",le="300"})"), 0);
  EXPECT_EQ(s.at(R"(rlog_insert_duration_seconds_bucket{write_concern="3",le="600"})"), 1);
  EXPECT_EQ(s.count(R"(rlog_insert_duration_seconds_bucket{write_concern="3",le="3600"})"), 1u);
}

TEST(Metrics, HistogramsResolveTensOfMicroseconds) {
  Metrics m;
  m.ObserveInsert("1", std::chrono::microseconds(20));
  m.ObserveReplication("s1", std::chrono::microseconds(300));
  auto s = Parse(m.Serialize());
  EXPECT_EQ(s.at(R"(rlog_insert_duration_seconds_bucket{write_concern="1",le="1e-05"})"), 0);
  EXPECT_EQ(s.at(R"(rlog_insert_duration_seconds_bucket{write_concern="1",le="2.5e-05"})"), 1);
  EXPECT_EQ(s.at(R"(rlog_replication_latency_seconds_count{sentinel="s1"})"), 1);
}

TEST(Metrics, WalMetricsOnlyWithADataDirectory) {
  Metrics m;
  m.ObserveWalSync(std::chrono::microseconds(50));  // Before EnableWal: ignored.
  EXPECT_EQ(m.Serialize().find("rlog_wal_"), std::string::npos);
  m.EnableWal(1000, 37, 1);
  m.ObserveWalSync(std::chrono::microseconds(50));
  m.ObserveWalSync(std::chrono::milliseconds(3));
  auto s = Parse(m.Serialize());
  EXPECT_EQ(s.at("rlog_wal_fsync_duration_seconds_count"), 2);
  EXPECT_EQ(s.at(R"(rlog_wal_fsync_duration_seconds_bucket{le="5e-05"})"), 1);
  EXPECT_EQ(s.at(R"(rlog_wal_fsync_duration_seconds_bucket{le="0.005"})"), 2);
  EXPECT_EQ(s.at("rlog_wal_recovered_entries"), 1000);
  EXPECT_EQ(s.at("rlog_wal_truncated_bytes"), 37);
  EXPECT_EQ(s.at("rlog_wal_truncated_records"), 1);
}

TEST(Metrics, TlsCertificateExpiryOnlyWithTls) {
  Metrics m;
  m.SetTlsCertificateExpiry("node", 1800000000);  // Before EnableTls: ignored.
  EXPECT_EQ(m.Serialize().find("rlog_tls_"), std::string::npos);
  m.EnableTls();
  m.SetTlsCertificateExpiry("node", 1800000000);
  m.SetTlsCertificateExpiry("ca", 1900000000);
  m.SetTlsCertificateExpiry("node", 1800086400);  // Renewed: the same series moves.
  auto s = Parse(m.Serialize());
  EXPECT_EQ(s.at(R"(rlog_tls_certificate_expiry_timestamp_seconds{certificate="node"})"),
            1800086400);
  EXPECT_EQ(s.at(R"(rlog_tls_certificate_expiry_timestamp_seconds{certificate="ca"})"), 1900000000);
}

TEST(Metrics, ReplicationBatchesAndEntriesAreCountedPerSentinel) {
  Metrics m;
  m.CountReplicationBatch("s1", 256);
  m.CountReplicationBatch("s1", 15);
  m.CountReplicationBatch("s2", 1);
  auto s = Parse(m.Serialize());
  EXPECT_EQ(s.at(R"(rlog_replication_batches_total{sentinel="s1"})"), 2);
  EXPECT_EQ(s.at(R"(rlog_replication_entries_total{sentinel="s1"})"), 271);
  EXPECT_EQ(s.at(R"(rlog_replication_batches_total{sentinel="s2"})"), 1);
  EXPECT_EQ(s.at(R"(rlog_replication_entries_total{sentinel="s2"})"), 1);
}

TEST(Metrics, SentinelStatusIsOneHot) {
  Metrics m;
  m.SetSentinel("s1", 10, 2, "Suspected");
  auto s = Parse(m.Serialize());
  EXPECT_EQ(s.at(R"(rlog_sentinel_up{sentinel="s1",status="Suspected"})"), 1);
  EXPECT_EQ(s.at(R"(rlog_sentinel_up{sentinel="s1",status="Healthy"})"), 0);
  EXPECT_EQ(s.at(R"(rlog_sentinel_acked_id{sentinel="s1"})"), 10);
  EXPECT_EQ(s.at(R"(rlog_sentinel_lag_entries{sentinel="s1"})"), 2);
}

TEST(Metrics, UnboundedConcernLabelsFoldIntoOther) {
  Metrics m;
  m.CountInsert("999", InsertOutcome::kBadRequest);
  m.CountInsert("garbage", InsertOutcome::kBadRequest);
  auto s = Parse(m.Serialize());
  EXPECT_EQ(s.at(R"(rlog_inserts_total{outcome="bad_request",write_concern="other"})"), 2);
}

}  // namespace
}  // namespace rlog::metrics
