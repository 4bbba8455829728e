#include "app/sentinel_node.h"

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "app/node_storage.h"
#include "app/tls.h"
#include "storage/commit_checkpoint.h"

namespace rlog::app {

namespace {

// A sentinel that cannot persist must not pretend. After a failed write its WAL stays behind its
// memory log for good; after a failed fsync the kernel may have dropped the dirty pages, so a
// retry could report lost data as durable. Either way any further Ack could count this node
// toward a write concern for entries it may not hold after a crash. Stop at once (no drain: there
// is nothing to answer, acks only ever follow durability); a restart recovers what is on disk and
// the master resends the rest.
[[noreturn]] void StopOnStorageFailure(const Status& error) {
  spdlog::critical("write-ahead log failed: {}. Nothing more is acknowledged; stopping.",
                   error.message());
  spdlog::default_logger()->flush();
  std::_Exit(1);
}

}  // namespace

SentinelNode::SentinelNode(const Config& config, replication::SentinelFaults faults)
    : config_(config), faults_(faults) {}

SentinelNode::~SentinelNode() {
  stop_ = true;
  if (ticker_.joinable()) ticker_.join();
  if (service_) SaveCommit();
  // A deadline, as in Drain: without one gRPC waits for every call to end by itself, and a
  // master's replication stream never does (a node dropped without Drain would hang here).
  if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(200));
  if (service_) service_->Stop();
  server_.reset();
  // Stop the group committer before the service goes (it is destroyed before the log): its
  // on_durable may be inside service_->OnDurable() right now, and its final flush may report
  // more (the stopped service has no stream left to ack on).
  if (node_log_) node_log_->Close();
  durable_sink_ = nullptr;
}

Status SentinelNode::OpenLog() {
  auto fs = DataDirFileSystem::Open(config_);
  if (!fs.ok()) return fs.status();
  fs_ = std::move(fs).value();
  auto opened = OpenNodeLog(
      config_, fs_, metrics_,
      [this](core::LogId durable) {
        if (replication::SentinelService* service = durable_sink_.load()) service->OnDurable();
        NotifyAppended(durable);  // Readable from now on (node_base.h).
      },
      [](const Status& error) { StopOnStorageFailure(error); });
  if (!opened.ok()) return opened.status();
  node_log_ = std::move(opened).value();
  return Status::Ok();
}

Result<uint16_t> SentinelNode::Start() {
  if (Status st = OpenLog(); !st.ok()) return st;
  served_ = node_log_.get();
  get_all_max_bytes_ = config_.get_all_max_bytes;
  max_waiting_reads_ = static_cast<size_t>(config_.max_waiting_reads);
  if (config_.tls_enabled()) metrics_.EnableTls();
  service_ = std::make_unique<replication::SentinelService>(node_log_.get(), &state_,
                                                            config_.node_id, faults_);
  service_->set_on_applied([this](core::LogId last) { NotifyAppended(last); });
  service_->set_allowed_master(config_.tls_master_name);
  service_->set_on_storage_failure([](const Status& error) { StopOnStorageFailure(error); });
  durable_sink_ = service_.get();
  RestoreCommit();

  int port = 0;
  std::string address = config_.grpc_address + ":" + std::to_string(config_.grpc_port);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(address, ServerCredentials(config_), &port);
  service_->AddTo(&builder);
  builder.SetMaxReceiveMessageSize(-1);
  builder.SetMaxSendMessageSize(-1);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  server_ = builder.BuildAndStart();
  if (!server_ || port == 0) {
    return Status::Unavailable("cannot serve gRPC on " + address);
  }
  service_->Start();
  ticker_ = std::thread([this] {
    while (!stop_) {
      std::this_thread::sleep_for(std::chrono::milliseconds(config_.tick_ms));
      ExpireTails(Clock::now());
      if (service_->TakeCommitLowered() || Clock::now() - last_commit_save_ >= kCommitSaveEvery) {
        SaveCommit();
      }
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
  if (service_) service_->Stop();
  stop_ = true;
  if (ticker_.joinable()) ticker_.join();
  SaveCommit();
  // Nothing is applied any more: flush, and close the WAL cleanly (main ends with _Exit).
  if (node_log_) node_log_->Close();
}

core::LogId SentinelNode::ReadCap() const { return service_ ? service_->commit_id() : 0; }

void SentinelNode::RestoreCommit() {
  if (!node_log_->persistent()) return;
  auto loaded = storage::LoadCommitCheckpoint(fs_.get(), config_.data_dir);
  if (!loaded.ok()) {
    spdlog::warn(
        "ignoring the saved commit id: {}; showing readers nothing until a master says "
        "what is committed",
        loaded.status().message());
    return;
  }
  if (!loaded.value()) return;
  const storage::CommitCheckpoint& saved = *loaded.value();
  service_->RestoreCommit(saved.log_id, saved.commit_id);
  saved_commit_ = service_->CommitOfLog();
  saved_commit_id_ = saved_commit_.second;
  spdlog::info("log {}: commit id {} (saved), readers see up to id {}", saved_commit_.first,
               saved_commit_.second, VisibleId());
}

void SentinelNode::SaveCommit() {
  last_commit_save_ = Clock::now();
  if (!node_log_ || !node_log_->persistent()) return;
  std::pair<std::string, core::LogId> now = service_->CommitOfLog();
  if (now == saved_commit_ || now.first.empty()) return;
  Status st = storage::SaveCommitCheckpoint(fs_.get(), config_.data_dir, {now.first, now.second});
  if (!st.ok()) {
    spdlog::warn("cannot save the commit id (will retry): {}", st.message());
    return;
  }
  saved_commit_ = std::move(now);
  saved_commit_id_ = saved_commit_.second;
}

void SentinelNode::Insert(std::string /*body*/, http::Responder respond) {
  std::string master = state_.master_http();
  nlohmann::json m = master.empty() ? nlohmann::json(nullptr) : nlohmann::json(master);
  respond(http::JsonError(403, "this node is a sentinel: send writes to the master",
                          "\"master\":" + m.dump()));
}

http::HttpReply SentinelNode::Health() {
  const storage::NodeLog& log = *node_log_;
  nlohmann::json j = {{"role", "sentinel"},
                      {"nodeId", config_.node_id},
                      {"logId", log.log_id()},
                      {"epoch", log.epoch()},
                      {"lastId", log.last_id()},
                      {"durableId", log.durable_id()},
                      // What a master taking over ranks this log by: the epoch of the last
                      // durable entry, or of the epoch mark after it.
                      {"lastEpoch", log.DurableLastEpoch()},
                      {"commitId", service_->commit_id()},
                      {"visibleId", VisibleId()},
                      {"waitingReads", WaitingReads()},
                      {"heldBack", log.memory().held_back()},
                      {"logBytes", log.memory().memory_bytes()},
                      {"entriesReceived", state_.entries_received()},
                      {"connected", state_.connected()}};
  std::string master = state_.master_http();
  j["master"] = master.empty() ? nlohmann::json(nullptr) : nlohmann::json(master);
  auto heard = state_.last_heard_ms_ago();
  j["lastHeardFromMasterMs"] = heard ? nlohmann::json(*heard) : nlohmann::json(nullptr);
  if (log.persistent()) {
    const storage::WalRecoveryReport& r = log.recovery();
    j["commitSavedId"] = saved_commit_id_.load();
    j["recovery"] = {{"entries", r.entries},
                     {"truncatedBytes", r.truncated_bytes},
                     {"truncatedRecords", r.truncated_records}};
    if (!log.moved_aside().ok()) j["walCorruptionMovedAside"] = log.moved_aside().message();
  }
  return {200, j.dump(), {}};
}

// Ready once the node holds, durably, what a master held when it last connected: not before.
// A rolling update (or a drain the PodDisruptionBudget allows) moves on to the next sentinel
// when this one is Ready; were an empty replacement Ready at once, the next one could go too
// while this one still lacked the log, and with emptyDir volumes nothing would be left of it.
// Sticky: a sentinel that falls behind later under load stays Ready (its lag is on /health).
http::HttpReply SentinelNode::Ready() {
  if (draining_) return http::JsonError(503, "draining");
  // The last master to come was refused for its log, and none replicates to this node now: it
  // serves no cluster (a volume of another log, or committed entries the master lacks), and a
  // rollout or a drain must not count it as a replica.
  if (std::string why = state_.refusal(); !why.empty() && !state_.connected()) {
    return http::JsonError(503, "not ready: refusing its master: " + why);
  }
  if (!caught_up_) {
    if (!state_.welcomed()) {
      return http::JsonError(503, "not ready: no master has connected since this node started");
    }
    const core::LogId held = node_log_->durable_id();
    const core::LogId target = state_.welcomed_last_id();
    if (held < target) {
      return http::JsonError(503,
                             "not ready: catching up, holds " + std::to_string(held) + " of the " +
                                 std::to_string(target) + " ids its master held when it connected",
                             "\"durableId\":" + std::to_string(held) +
                                 ",\"masterLastId\":" + std::to_string(target));
    }
    caught_up_ = true;
  }
  return {200, R"({"ready":true})", {}};
}

http::HttpReply SentinelNode::Metrics() {
  metrics_.SetLastId(node_log_->last_id());
  metrics_.SetCommitId(service_->commit_id());
  metrics_.SetLogMemory(node_log_->memory().memory_bytes(), 0);
  UpdateTlsMetrics(config_, metrics_, tls_expiry_);
  return {200, metrics_.Serialize(), {}, "text/plain; version=0.0.4"};
}

}  // namespace rlog::app
