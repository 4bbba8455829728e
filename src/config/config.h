// rlog's configuration: one YAML file, overridden by environment variables, overridden by flags.
//
// Precedence: flags > environment > file > defaults. Every key has a default that works for the
// local three-node cluster (master HTTP :8080, sentinels :8081/:8082, gRPC :9091/:9092).
// Unknown keys and bad values are rejected by LoadConfig with a message that names the key.
// Pure value type: no globals, no I/O after LoadConfig returns.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace rlog {

enum class Role { kMaster, kSentinel };
enum class FsyncPolicy { kAlways, kInterval, kNever };
enum class LogFormat { kText, kJson };
// What a node does when recovery finds its write-ahead log corrupt (not merely torn at the end).
enum class OnCorruption { kFail, kRefetch };

struct Config {
  Role role = Role::kMaster;                  // role / ROLE / --role  (master | sentinel)
  std::string node_id;                        // node_id / NODE_ID / --node-id (default: "<role>-<http_port>")

  // HTTP (Pistache).
  std::string http_address = "0.0.0.0";       // http.address / HTTP_ADDRESS / --http-address
  uint16_t http_port = 8080;                  // http.port / PORT / --port (0 = ephemeral)
  int http_threads = 2;                       // http.threads / HTTP_THREADS / --http-threads (1..64)
  uint64_t max_body_bytes = 1 << 20;          // http.max_body_bytes / MAX_BODY_BYTES / --max-body-bytes
  uint64_t get_all_max_bytes =
      64 << 20;  // http.get_all_max_bytes / GET_ALL_MAX_BYTES / --get-all-max-bytes
  uint64_t max_waiting_reads = 10000;  // http.max_waiting_reads / MAX_WAITING_READS (long polls)
  uint64_t slow_answers_max_bytes = 256ull << 20;  // http.slow_answers_max_bytes
  std::string advertise_http;                 // http.advertise / ADVERTISE_HTTP (what sentinels tell clients; default 127.0.0.1:port)

  // gRPC (sentinels serve replication; the master dials its sentinels).
  std::string grpc_address = "0.0.0.0";       // grpc.address / GRPC_ADDRESS / --grpc-address
  uint16_t grpc_port = 9091;                  // grpc.port / GRPC_PORT / --grpc-port (0 = ephemeral)

  // Master only: the sentinels, each "host:port", "dns:///name:port" or "srv:///_grpc._tcp.name".
  std::vector<std::string> sentinels;         // sentinels (YAML list or comma string) / SENTINELS / --sentinels (comma-separated)

  // Discovery of dns:/// and srv:/// sentinels.
  std::string dns_server;                     // discovery.dns_server / DNS_SERVER / --dns-server (ip[:port]; empty = system resolver)
  uint64_t discovery_refresh_ms = 5000;       // discovery.refresh_ms
  uint64_t discovery_grace_ms = 30000;        // discovery.grace_ms
  // How many sentinels the cluster is meant to have (the StatefulSet's replicas): a master that
  // recovers its log counts the quorum of answers it needs against at least this many, so that a
  // sentinel DNS does not list yet (a Pending pod) cannot be left out. 0: what discovery finds.
  uint32_t expected_sentinels = 0;            // discovery.expected_sentinels / EXPECTED_SENTINELS / --expected-sentinels

  // Replication.
  uint32_t batch_max_entries = 512;           // replication.batch_max_entries (1..65536)
  uint64_t batch_max_bytes = 1 << 20;         // replication.batch_max_bytes (>= 1024)
  uint32_t window_batches = 8;                // replication.window_batches (1..1024)
  uint32_t min_pipelined_batch = 256;         // replication.min_pipelined_batch (1..65536)
  uint64_t linger_ms = 10;                    // replication.linger_ms (0 = off)
  uint32_t heartbeat_ms = 200;                // replication.heartbeat_ms / HEARTBEAT_MS / --heartbeat-ms (>= 1)
  uint32_t backoff_initial_ms = 50;           // replication.backoff_initial_ms (>= 1)
  uint32_t backoff_max_ms = 2000;             // replication.backoff_max_ms (>= backoff_initial_ms)

  // Health thresholds: silence before a sentinel is Suspected, then Unhealthy.
  uint32_t suspect_after_ms = 1000;           // health.suspect_after_ms / SUSPECT_AFTER_MS / --suspect-after-ms
  uint32_t unhealthy_after_ms = 3000;         // health.unhealthy_after_ms / UNHEALTHY_AFTER_MS / --unhealthy-after-ms (> suspect_after_ms)

  // Inserts.
  uint64_t default_timeout_ms = 600000;       // insert.default_timeout_ms / DEFAULT_TIMEOUT_MS / --default-timeout-ms (>= 1)
  uint64_t max_timeout_ms = 3600000;          // insert.max_timeout_ms (>= default_timeout_ms)
  uint64_t idempotency_keys = 100000;         // insert.idempotency_keys (how many keys are remembered; 0 disables)
  // Master: memory the log may take (entries and message bytes, MemoryLog::memory_bytes); inserts
  // beyond it are refused with 507 (etcd's space quota), where without it the process would grow
  // until the kernel or the container limit kills it. 0: no limit.
  uint64_t max_log_bytes = 0;                 // max_log_bytes / MAX_LOG_BYTES / --max-log-bytes

  uint32_t tick_ms = 10;                      // tick_ms / TICK_MS / --tick-ms (core clock resolution, 1..1000)
  uint64_t drain_timeout_ms = 5000;           // shutdown.drain_timeout_ms / DRAIN_TIMEOUT_MS / --drain-timeout-ms

  // Mutual TLS on the replication streams (docs/OPERATIONS.md, "TLS"): all three files, or none
  // (plaintext gRPC).
  std::string tls_ca_file;                    // tls.ca_file / TLS_CA_FILE / --tls-ca-file: CA bundle the peers' certificates must chain to
  std::string tls_cert_file;                  // tls.cert_file / TLS_CERT_FILE / --tls-cert-file: this node's certificate chain (PEM)
  std::string tls_key_file;                   // tls.key_file / TLS_KEY_FILE / --tls-key-file: its private key (PEM)
  std::string tls_server_name;                // tls.server_name / TLS_SERVER_NAME / --tls-server-name: master: name the sentinels' certificates must carry (empty: each sentinel's host)
  std::string tls_master_name;                // tls.master_name / TLS_MASTER_NAME / --tls-master-name: sentinel: name the master's certificate must carry (empty: any of the CA)
  uint32_t tls_reload_interval_s = 60;       // tls.reload_interval_s: how often the three files are read again
  bool tls_enabled() const { return !tls_cert_file.empty(); }

  // Durability (data_dir empty = in memory).
  std::string data_dir;                       // data_dir / DATA_DIR / --data-dir
  FsyncPolicy fsync = FsyncPolicy::kAlways;   // fsync / FSYNC / --fsync (always | interval | never)
  uint32_t fsync_interval_ms = 10;            // fsync_interval_ms / FSYNC_INTERVAL_MS
  uint64_t wal_segment_bytes = 64ull << 20;   // wal.segment_bytes (>= 4096): a new segment file starts past this size
  uint64_t wal_preallocate_bytes = 4ull << 20;  // wal.preallocate_bytes: zeros written ahead of appends (0: off)
  uint32_t wal_group_commit_us = 1000;        // wal.group_commit_us: least time between fsync starts (fsync: always)
  // fail: refuse to start, naming the file and offset. refetch (sentinels only): move the damaged
  // log aside and fetch the whole log from the master again.
  OnCorruption wal_on_corruption = OnCorruption::kFail;  // wal.on_corruption / WAL_ON_CORRUPTION
  // Sentinels: write and fsync each batch on the replication thread, before its ack, instead of
  // handing it to the committer thread (storage::NodeLogOptions::rounds_on_caller). A master
  // ignores it.
  bool wal_sync_on_replication_thread = false;  // wal.sync_on_replication_thread
  // Master: a take-over may go on with a log that ends before a commit id a sentinel reports
  // (losing those committed ids) instead of waiting for a node that holds them. Kafka's
  // unclean.leader.election.enable.
  bool recovery_unclean = false;  // recovery.unclean / RECOVERY_UNCLEAN / --recovery-unclean

  // Logging.
  std::string log_level = "info";             // log.level / LOG_LEVEL / --log-level (trace|debug|info|warn|error|off)
  LogFormat log_format = LogFormat::kText;    // log.format / LOG_FORMAT / --log-format (text | json)

  // Testing only. Writes the bound ports as JSON {"http":N,"grpc":N} once listening.
  std::string ports_file;                     // --ports-file only (flag)
  // Fault injection in the sentinel, honoured only together with --enable-test-faults.
  // Spec: comma-separated "fail_after_append=P,delay_ms=MAX,drop_stream=P,seed=N".
  std::string test_faults;                    // --test-faults only (flag)
  bool enable_test_faults = false;            // --enable-test-faults only (flag)
  uint64_t test_recovery_pause_ms = 0;        // --test-recovery-pause-ms only (flag, needs --enable-test-faults)
  // Journal every durable change to the data directory here (storage/sync_journal_file_system.h),
  // so a test can cut the files of a killed node to what it had synced: a power loss. Needs
  // --enable-test-faults and data_dir, as does the next one.
  std::string test_sync_journal;  // --test-sync-journal only (flag)
  // Acknowledge writes before their fsync, as a broken node would: for the test that shows the
  // power-loss tests catch it. Never in production.
  bool test_ack_before_fsync = false;  // --test-ack-before-fsync only (flag)
};

// Parses flags (argv), the environment (env: name -> value; pass the real environment from
// main) and the YAML file named by --config or CONFIG. On any unknown key, bad value or
// unreadable file returns InvalidArgument whose message names the key (e.g.
// "config key 'http.port': expected an integer in 0..65535, got 'abc'").
// --help / --version: returns NotFound with the help text as message (caller prints it, exits 0).
// Never throws. Every key, variable and flag: docs/CONFIGURATION.md (or --help).
Result<Config> LoadConfig(int argc, const char* const* argv,
                          const std::map<std::string, std::string>& env);

// The current process environment as a map (for LoadConfig).
std::map<std::string, std::string> ProcessEnvironment();

// The spelling LoadConfig accepts for each value ("master", "interval", "json").
const char* RoleName(Role role);
const char* FsyncPolicyName(FsyncPolicy policy);
const char* LogFormatName(LogFormat format);
const char* OnCorruptionName(OnCorruption action);

}  // namespace rlog
