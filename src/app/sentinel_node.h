// A sentinel: serves the master's replication stream (and a restarting master's Position and
// Fetch calls) over gRPC and the log over HTTP. Writes sent to it are refused with 403 naming the
// master.
//
// Its log is a storage::NodeLog: with a data directory, Start() recovers the write-ahead log
// (refusing to start on corruption, or moving it aside and starting empty with
// wal.on_corruption: refetch) and every ack waits for the fsync policy. A failed WAL write or
// fsync stops the process (see StopOnStorageFailure in sentinel_node.cc).
//
// Reads show only what the master told it is committed (ReadCap; replication.proto, "Commit
// id"). With a data directory that commit id is saved to <data_dir>/commit by the ticker, at
// most every kCommitSaveEvery and on the way out, and restored at start: a restarted sentinel
// shows what it showed before even while no master is there.
#pragma once

#include <atomic>
#include <memory>
#include <thread>

#include "app/node_base.h"
#include "app/node_storage.h"
#include "app/tls.h"
#include "config/config.h"
#include "metrics/metrics.h"
#include "replication/sentinel_service.h"
#include "storage/node_log.h"

namespace grpc {
class Server;
}

namespace rlog::app {

class SentinelNode final : public NodeBase {
 public:
  SentinelNode(const Config& config, replication::SentinelFaults faults);
  ~SentinelNode() override;

  // Opens the log (recovering the data directory), then starts the gRPC server; returns the
  // bound port. Errors name the cause, e.g. the corrupt WAL file and offset.
  Result<uint16_t> Start();
  void Drain(std::chrono::milliseconds timeout);

  void Insert(std::string body, http::Responder respond) override;
  http::HttpReply Health() override;
  http::HttpReply Ready() override;
  http::HttpReply Metrics() override;

  static constexpr std::chrono::milliseconds kCommitSaveEvery{1000};

 protected:
  core::LogId ReadCap() const override;

 private:
  Status OpenLog();
  // Restores the saved commit id into the service (before it serves).
  void RestoreCommit();
  // Saves the service's commit id if it moved since the last save (ticker thread, and on the way
  // out once the ticker is gone). A failure is logged and retried later: an older value on disk
  // only makes a restarted sentinel show less for a while.
  void SaveCommit();

  // Constant after construction.
  const Config config_;
  const replication::SentinelFaults faults_;

  replication::SentinelState state_;
  metrics::Metrics metrics_;
  CertificateExpiryCache tls_expiry_;  // For /metrics (tls.h).
  // Where the log's on_durable goes: null until the service exists and after it is gone.
  std::atomic<replication::SentinelService*> durable_sink_{nullptr};
  DataDirFileSystem fs_;  // Set by Start; outlives the log.
  // Set once by Start(), before anything is served; destroyed in the order server, service, log.
  std::unique_ptr<storage::NodeLog> node_log_;
  std::unique_ptr<replication::SentinelService> service_;
  std::unique_ptr<grpc::Server> server_;

  // The commit id on disk (SaveCommit; thread of the ticker, then of the destructor or Drain).
  std::pair<std::string, core::LogId> saved_commit_;
  std::atomic<core::LogId> saved_commit_id_{0};  // For /health.
  std::chrono::steady_clock::time_point last_commit_save_{};

  std::atomic<bool> stop_{false};
  std::atomic<bool> draining_{false};
  // Ready() found this node holding what a master held when it connected (sticky).
  std::atomic<bool> caught_up_{false};
  std::thread ticker_;
};

}  // namespace rlog::app
