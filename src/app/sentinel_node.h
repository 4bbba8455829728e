// A sentinel: serves the master's replication stream over gRPC and the log over HTTP.
// Writes sent to it are refused with 403 naming the master.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <memory>
#include <thread>

#include "app/node_base.h"
#include "config/config.h"
#include "metrics/metrics.h"
#include "replication/sentinel_service.h"

namespace rlog::app {

class SentinelNode final : public NodeBase {
 public:
  SentinelNode(const Config& config, replication::SentinelFaults faults);
  ~SentinelNode() override;

  // Starts the gRPC server; returns the bound port.
  Result<uint16_t> Start();
  void Drain(std::chrono::milliseconds timeout);

  void Insert(std::string body, http::Responder respond) override;
  http::HttpReply Health() override;
  http::HttpReply Ready() override;
  http::HttpReply Metrics() override;

 private:
  const Config config_;
  storage::MemoryLog memory_;
  replication::SentinelState state_;
  replication::SentinelService service_;
  metrics::Metrics metrics_;
  std::unique_ptr<grpc::Server> server_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> draining_{false};
  std::thread ticker_;
};

}  // namespace rlog::app
