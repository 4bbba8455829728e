#include "app/sentinel_node.h"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

namespace rlog::app {

SentinelNode::SentinelNode(const Config& config, replication::SentinelFaults faults)
    : config_(config), service_(&memory_, &state_, config.node_id, faults) {
  log_ = &memory_;
  service_.set_on_applied([this](core::LogId last) { NotifyAppended(last); });
}

SentinelNode::~SentinelNode() {
  stop_ = true;
  if (ticker_.joinable()) ticker_.join();
}

Result<uint16_t> SentinelNode::Start() {
  int port = 0;
  std::string address = config_.grpc_address + ":" + std::to_string(config_.grpc_port);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service_);
  builder.SetMaxReceiveMessageSize(-1);
  builder.SetMaxSendMessageSize(-1);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  server_ = builder.BuildAndStart();
  if (!server_ || port == 0) {
    return Status::Unavailable("cannot serve gRPC on " + address);
  }
  ticker_ = std::thread([this] {
    while (!stop_) {
      std::this_thread::sleep_for(std::chrono::milliseconds(config_.tick_ms));
      ExpireTails(Clock::now());
    }
  });
  return static_cast<uint16_t>(port);
}

void SentinelNode::Drain(std::chrono::milliseconds timeout) {
  draining_ = true;
  ExpireTails(Clock::now(), /*all=*/true);
  // Replication streams never end by themselves: give in-flight acks a moment, then cancel them.
  auto grace = std::min<std::chrono::milliseconds>(timeout, std::chrono::milliseconds(200));
  if (server_) server_->Shutdown(std::chrono::system_clock::now() + grace);
  stop_ = true;
  if (ticker_.joinable()) ticker_.join();
}

void SentinelNode::Insert(std::string /*body*/, http::Responder respond) {
  std::string master = state_.master_http();
  nlohmann::json m = master.empty() ? nlohmann::json(nullptr) : nlohmann::json(master);
  respond(http::JsonError(403, "this node is a sentinel: send writes to the master",
                          "\"master\":" + m.dump()));
}

http::HttpReply SentinelNode::Health() {
  nlohmann::json j = {{"role", "sentinel"},
                      {"nodeId", config_.node_id},
                      {"logId", state_.log_id()},
                      {"lastId", memory_.last_id()},
                      {"heldBack", memory_.held_back()},
                      {"connected", state_.connected()}};
  std::string master = state_.master_http();
  j["master"] = master.empty() ? nlohmann::json(nullptr) : nlohmann::json(master);
  auto heard = state_.last_heard_ms_ago();
  j["lastHeardFromMasterMs"] = heard ? nlohmann::json(*heard) : nlohmann::json(nullptr);
  return {200, j.dump(), {}};
}

http::HttpReply SentinelNode::Ready() {
  if (draining_) return http::JsonError(503, "draining");
  return {200, R"({"ready":true})", {}};
}

http::HttpReply SentinelNode::Metrics() {
  metrics_.SetLastId(memory_.last_id());
  return {200, metrics_.Serialize(), {}, "text/plain; version=0.0.4"};
}

}  // namespace rlog::app
