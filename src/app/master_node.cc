#include "app/master_node.h"

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>
#include <random>

#include "http/insert_request.h"

namespace rlog::app {

namespace {

std::string NewLogId() {
  std::random_device rd;
  std::mt19937_64 rng((static_cast<uint64_t>(rd()) << 32) ^ rd());
  char buf[33];
  snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(rng()),
           static_cast<unsigned long long>(rng()));
  return buf;
}

core::ReplicatorOptions CoreOptions(const Config& c) {
  auto ticks = [&](uint64_t ms) { return std::max<core::Tick>(1, (ms + c.tick_ms - 1) / c.tick_ms); };
  core::ReplicatorOptions o;
  o.batch_max_entries = c.batch_max_entries;
  o.batch_max_bytes = c.batch_max_bytes;
  o.window_batches = c.window_batches;
  o.min_pipelined_batch = c.min_pipelined_batch;
  o.heartbeat_every = ticks(c.heartbeat_ms);
  o.health.suspect_after = ticks(c.suspect_after_ms);
  o.health.unhealthy_after = ticks(c.unhealthy_after_ms);
  o.backoff_initial = ticks(c.backoff_initial_ms);
  o.backoff_max = ticks(c.backoff_max_ms);
  o.seed = std::random_device{}();
  return o;
}

int64_t UnixMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

MasterNode::MasterNode(const Config& config)
    : config_(config),
      log_id_(NewLogId()),
      core_(CoreOptions(config), &memory_),
      idempotency_(config.idempotency_keys),
      append_times_(kAppendTimes) {
  log_ = &memory_;
}

MasterNode::~MasterNode() {
  stop_ = true;
  if (ticker_.joinable()) ticker_.join();
}

std::shared_ptr<replication::Replication::Stub> MasterNode::NewStub(
    const std::string& address) const {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  // Our core paces reconnects; keep gRPC's own backoff from adding long waits on top.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, static_cast<int>(config_.backoff_initial_ms));
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, static_cast<int>(config_.backoff_initial_ms));
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, static_cast<int>(config_.backoff_max_ms));
  args.SetMaxSendMessageSize(-1);
  args.SetMaxReceiveMessageSize(-1);
  // One channel per sentinel, even for equal addresses: a stream's failure stays its own.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  auto channel = grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
  return std::shared_ptr<replication::Replication::Stub>(
      replication::Replication::NewStub(channel));
}

void MasterNode::ApplyMembership(const std::vector<discovery::Change>& changes) {
  Step([&](core::Replicator& core) NO_THREAD_SAFETY_ANALYSIS {
    for (const discovery::Change& change : changes) {
      auto known = by_identity_.find(change.identity);
      switch (change.kind) {
        case discovery::Change::Kind::kAdded: {
          if (known != by_identity_.end()) break;
          core::SentinelId id = core.AddSentinel(change.identity);
          if (members_.size() <= id) members_.resize(id + 1);
          members_[id].name = change.identity;
          members_[id].stub = NewStub(change.address);
          by_identity_[change.identity] = id;
          spdlog::info("sentinel {} joined at {}", change.identity, change.address);
          break;
        }
        case discovery::Change::Kind::kAddressChanged: {
          if (known == by_identity_.end()) break;
          Member& m = members_[known->second];
          m.stub = NewStub(change.address);
          if (m.stream) to_cancel_.push_back(m.stream);  // Reconnects through the new stub.
          spdlog::info("sentinel {} moved to {}", change.identity, change.address);
          break;
        }
        case discovery::Change::Kind::kRemoved: {
          if (known == by_identity_.end()) break;
          core.RemoveSentinel(known->second);
          members_[known->second].removed = true;
          by_identity_.erase(known);
          spdlog::info("sentinel {} left the cluster", change.identity);
          break;
        }
      }
    }
  });
}

Status MasterNode::Start() {
  discovery::DiscoveryOptions options;
  options.dns_server = config_.dns_server;
  options.refresh_ms = config_.discovery_refresh_ms;
  options.grace_ms = config_.discovery_grace_ms;
  options.backoff_initial_ms = config_.backoff_initial_ms;
  options.backoff_max_ms = std::max(config_.backoff_max_ms, config_.backoff_initial_ms);
  discovery_ = std::make_unique<discovery::Discovery>(
      config_.sentinels, options,
      [this](const std::vector<discovery::Change>& changes) { ApplyMembership(changes); });
  Status started = discovery_->Start();
  if (!started.ok()) return started;
  spdlog::info("master of log {}; sentinels from: {}", log_id_, fmt::join(config_.sentinels, ", "));
  ticker_ = std::thread([this] {
    auto period = std::chrono::milliseconds(config_.tick_ms);
    auto next = std::chrono::steady_clock::now() + period;
    while (!stop_) {
      std::this_thread::sleep_until(next);
      next += period;
      Step([](core::Replicator& core) { core.OnTick(); });
      ExpireTails(Clock::now());
    }
  });
  return Status::Ok();
}

core::Tick MasterNode::ToTicks(uint64_t ms) const {
  return std::max<core::Tick>(1, (ms + config_.tick_ms - 1) / config_.tick_ms);
}

replication::MasterMessage MasterNode::BuildSend(const core::Ready::Send& send) const {
  replication::MasterMessage msg;
  msg.set_seq(send.seq);
  if (send.heartbeat()) {
    msg.mutable_heartbeat()->set_master_last_id(memory_.last_id());
    return msg;
  }
  replication::Batch* batch = msg.mutable_batch();
  for (storage::Entry& e : memory_.Read(send.first, send.last - send.first + 1, UINT64_MAX)) {
    replication::Entry* out = batch->add_entries();
    out->set_id(e.id);
    out->set_timestamp_ms(e.timestamp_ms);
    out->set_message(std::move(e.message));
  }
  batch->set_master_last_id(memory_.last_id());
  return msg;
}

void MasterNode::Step(const std::function<void(core::Replicator&)>& event) {
  struct Answer {
    Parked parked;
    core::WriteOutcome outcome;
  };
  std::vector<Answer> answers;
  std::vector<std::pair<std::shared_ptr<replication::SentinelStream>, core::Ready::Send>> sends;
  struct Start {
    std::shared_ptr<replication::SentinelStream> stream;
    std::shared_ptr<replication::Replication::Stub> stub;
    std::string name;
  };
  std::vector<Start> to_start;
  std::vector<std::shared_ptr<replication::SentinelStream>> to_cancel;
  std::vector<std::pair<std::string, Clock::time_point>> replicated;
  std::vector<std::string> notes;
  core::Ready ready;
  bool draining = false;
  {
    MutexLock lock(mu_);
    event(core_);
    ready = core_.TakeReady();
    draining = draining_;
    to_cancel.swap(to_cancel_);
    for (const auto& a : ready.acks) {
      if (a.to > a.from && core_.last_id() - a.to < kAppendTimes) {
        replicated.emplace_back(members_[a.sentinel].name, append_times_[a.to % kAppendTimes]);
      }
    }
    for (const auto& c : ready.completions) {
      auto it = parked_.find(c.handle);
      if (it == parked_.end()) continue;
      answers.push_back({std::move(it->second), c.outcome});
      parked_.erase(it);
    }
    if (draining_ && parked_.empty()) drained_.notify_all();
    for (const auto& c : ready.connects) {
      // Created (and stored) before it starts, so its first events find it here.
      Member& m = members_[c.sentinel];
      m.generation = c.generation;
      m.stream = std::make_shared<replication::SentinelStream>(c.sentinel, c.generation, this);
      to_start.push_back({m.stream, m.stub, m.name});
    }
    for (const auto& c : ready.cancels) {
      const Member& m = members_[c.sentinel];
      if (m.generation == c.generation && m.stream) to_cancel.push_back(m.stream);
    }
    for (const auto& s : ready.sends) {
      const Member& m = members_[s.sentinel];
      if (m.generation == s.generation && m.stream) sends.emplace_back(m.stream, s);
    }
    for (const auto& c : ready.status_changes) {
      notes.push_back(fmt::format("sentinel {} is {} (was {})", members_[c.sentinel].name,
                                  core::HealthName(c.to), core::HealthName(c.from)));
    }
  }

  for (Start& start : to_start) {
    replication::MasterMessage hello;
    replication::Hello* h = hello.mutable_hello();
    h->set_log_id(log_id_);
    h->set_epoch(1);
    h->set_master_last_id(memory_.last_id());
    h->set_master_http(config_.advertise_http);
    h->set_sentinel_name(start.name);
    start.stream->Start(start.stub.get(), std::move(hello));
  }
  for (auto& stream : to_cancel) stream->Cancel();
  for (auto& [stream, send] : sends) stream->Send(BuildSend(send));
  auto now = Clock::now();
  for (const auto& [name, appended_at] : replicated) {
    metrics_.ObserveReplication(name, now - appended_at);
  }
  for (Answer& a : answers) {
    metrics::InsertOutcome outcome = a.outcome == core::WriteOutcome::kCommitted
                                         ? metrics::InsertOutcome::kOk
                                     : draining ? metrics::InsertOutcome::kDraining
                                                : metrics::InsertOutcome::kTimeout;
    metrics_.CountInsert(a.parked.concern, outcome);
    metrics_.ObserveInsert(a.parked.concern, now - a.parked.start);
    if (outcome == metrics::InsertOutcome::kOk) metrics_.CountWriteAcks(a.parked.concern, a.parked.w);
    if (a.outcome == core::WriteOutcome::kCommitted) {
      a.parked.respond({200,
                        nlohmann::json{{"id", a.parked.id}, {"writeConcern", a.parked.w}}.dump(),
                        {}});
    } else if (draining) {
      a.parked.respond(http::JsonError(
          503, "the master is shutting down before enough nodes acknowledged the write",
          "\"id\":" + std::to_string(a.parked.id) + ",\"stored\":true"));
    } else {
      a.parked.respond(http::JsonError(
          504,
          "timed out waiting for " + std::to_string(a.parked.w) +
              " nodes to acknowledge; the message is stored with id " +
              std::to_string(a.parked.id) + " and will still reach every sentinel",
          "\"id\":" + std::to_string(a.parked.id) + ",\"stored\":true"));
    }
  }
  for (const std::string& note : notes) spdlog::info("{}", note);
  if (ready.read_only) {
    if (*ready.read_only) {
      spdlog::warn("read-only: fewer than a majority of the cluster is reachable");
    } else {
      spdlog::info("writable: a majority of the cluster is reachable");
    }
  }
}

void MasterNode::Insert(std::string body, http::Responder respond) {
  Result<http::InsertRequest> parsed = http::ParseInsertRequest(body);
  if (!parsed.ok()) {
    metrics_.CountInsert("other", metrics::InsertOutcome::kBadRequest);
    respond(http::JsonError(400, parsed.status().message()));
    return;
  }
  http::InsertRequest& req = parsed.value();
  const std::string concern = req.concern.Label();
  const Clock::time_point start = Clock::now();
  std::optional<http::HttpReply> reply;
  metrics::InsertOutcome refused = metrics::InsertOutcome::kBadRequest;
  core::LogId appended = 0;
  int64_t now_ms = UnixMillis();
  Step([&](core::Replicator& core) NO_THREAD_SAFETY_ANALYSIS {
    if (draining_) {
      refused = metrics::InsertOutcome::kDraining;
      reply = http::JsonError(503, "the master is shutting down");
      reply->headers.emplace_back("Retry-After", "1");
      return;
    }
    uint32_t cluster = core.cluster_size();
    uint64_t w = req.concern.Resolve(cluster);
    if (w > cluster) {
      reply = http::JsonError(400, "writeConcern " + std::to_string(w) +
                                       " is larger than the cluster (" + std::to_string(cluster) +
                                       " nodes)");
      return;
    }
    if (core.read_only()) {
      refused = metrics::InsertOutcome::kReadOnly;
      reply = http::JsonError(503,
                              "read-only: fewer than a majority of the cluster is reachable",
                              "\"reachable\":" + std::to_string(core.reachable()) +
                                  ",\"majority\":" + std::to_string(core.majority()));
      reply->headers.emplace_back("Retry-After", "1");
      return;
    }
    std::optional<core::LogId> id;
    if (req.idempotency_key) id = idempotency_.Find(*req.idempotency_key);
    if (!id) {
      id = memory_.AppendNext(now_ms, std::move(req.message));
      appended = *id;
      append_times_[*id % kAppendTimes] = start;
      core.Appended(*id);
      core.LocalDurable(*id);  // In memory: held as soon as it is appended.
      if (req.idempotency_key) idempotency_.Insert(*req.idempotency_key, *id);
    }
    uint64_t timeout_ms = std::min(req.timeout_ms.value_or(config_.default_timeout_ms),
                                   config_.max_timeout_ms);
    core::WriteHandle handle = core.ParkWrite(*id, static_cast<uint32_t>(w), ToTicks(timeout_ms));
    parked_.emplace(handle, Parked{std::move(respond), *id, w, concern, start});
  });
  if (reply) {
    metrics_.CountInsert(concern, refused);
    respond(std::move(*reply));
  }
  if (appended != 0) NotifyAppended(appended);
}

http::HttpReply MasterNode::Health() {
  nlohmann::json j;
  MutexLock lock(mu_);
  j["role"] = "master";
  j["nodeId"] = config_.node_id;
  j["logId"] = log_id_;
  j["lastId"] = core_.last_id();
  j["readOnly"] = core_.read_only();
  j["state"] = draining_ ? "draining" : core_.read_only() ? "read-only" : "writable";
  j["quorum"] = {{"clusterSize", core_.cluster_size()},
                 {"reachable", core_.reachable()},
                 {"majority", core_.majority()}};
  j["parkedWrites"] = core_.parked_writes();
  nlohmann::json sentinels = nlohmann::json::array();
  for (const core::SentinelStatus& s : core_.Sentinels()) {
    nlohmann::json o = {{"name", s.name},
                        {"status", core::HealthName(s.health)},
                        {"connected", s.connected},
                        {"ackedId", s.acked},
                        {"lag", s.lag},
                        {"lastHeardMs", s.silent_for * config_.tick_ms}};
    if (!members_[s.id].last_error.empty()) o["lastError"] = members_[s.id].last_error;
    sentinels.push_back(o);
  }
  j["sentinels"] = sentinels;
  return {200, j.dump(), {}};
}

http::HttpReply MasterNode::Ready() {
  MutexLock lock(mu_);
  if (draining_) return http::JsonError(503, "draining");
  return {200, R"({"ready":true})", {}};
}

void MasterNode::InsertTooLarge() {
  metrics_.CountInsert("other", metrics::InsertOutcome::kTooLarge);
}

http::HttpReply MasterNode::Metrics() {
  {
    MutexLock lock(mu_);
    for (const core::SentinelStatus& s : core_.Sentinels()) {
      metrics_.SetSentinel(s.name, s.acked, s.lag, core::HealthName(s.health));
    }
    metrics_.SetLastId(core_.last_id());
    metrics_.SetReadOnly(core_.read_only());
  }
  return {200, metrics_.Serialize(), {}, "text/plain; version=0.0.4"};
}

void MasterNode::OnWelcome(core::SentinelId s, uint64_t gen, const replication::Welcome& w) {
  Step([&](core::Replicator& core) NO_THREAD_SAFETY_ANALYSIS {
    members_[s].last_error.clear();
    core.Connected(s, gen, w.last_id());
  });
}

void MasterNode::OnAck(core::SentinelId s, uint64_t gen, const replication::Ack& ack) {
  Step([&](core::Replicator& core) { core.Acked(s, gen, ack.seq(), ack.last_id()); });
}

void MasterNode::OnWriteDone(core::SentinelId s, uint64_t gen) {
  Step([&](core::Replicator& core) { core.WriteDone(s, gen); });
}

void MasterNode::OnClosed(core::SentinelId s, uint64_t gen, const grpc::Status& status) {
  std::string name;
  Step([&](core::Replicator& core) NO_THREAD_SAFETY_ANALYSIS {
    Member& m = members_[s];
    name = m.name;
    if (m.generation == gen) {
      m.stream.reset();
      if (!status.ok()) m.last_error = status.error_message();
    }
    core.Disconnected(s, gen);
  });
  if (status.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {
    spdlog::error("sentinel {} refused replication: {}", name, status.error_message());
  } else {
    spdlog::debug("stream to sentinel {} closed: {}", name, status.error_message());
  }
  // gRPC's own re-resolution can lag; ask discovery to look again soon (rate-limited there).
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE && discovery_) {
    discovery_->RequestRefresh();
  }
}

void MasterNode::Drain(std::chrono::milliseconds timeout) {
  {
    MutexLock lock(mu_);
    draining_ = true;
  }
  spdlog::info("draining: refusing new writes, waiting up to {} ms for parked ones",
               timeout.count());
  {
    std::unique_lock lock(mu_.native());
    drained_.wait_for(lock, timeout, [this]() NO_THREAD_SAFETY_ANALYSIS { return parked_.empty(); });
  }
  Step([](core::Replicator& core) { core.ExpireAllWrites(); });
  ExpireTails(Clock::now(), /*all=*/true);
  stop_ = true;
  if (ticker_.joinable()) ticker_.join();
  if (discovery_) discovery_->Stop();
  MutexLock lock(mu_);
  for (Member& m : members_) {
    if (m.stream) m.stream->Cancel();
  }
}

}  // namespace rlog::app
