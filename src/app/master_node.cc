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
      core_(CoreOptions(config), &log_),
      idempotency_(config.idempotency_keys),
      append_times_(kAppendTimes) {}

MasterNode::~MasterNode() {
  stop_ = true;
  if (ticker_.joinable()) ticker_.join();
}

Status MasterNode::Start() {
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
  {
    MutexLock lock(mu_);
    for (const std::string& target : config_.sentinels) {
      auto channel = grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
      stubs_.push_back(replication::Replication::NewStub(channel));
      names_.push_back(target);
      core_.AddSentinel(target);
      links_.emplace_back();
    }
  }
  spdlog::info("master of log {} with {} sentinel(s): {}", log_id_, names_.size(),
               fmt::join(names_, ", "));
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
    msg.mutable_heartbeat()->set_master_last_id(log_.last_id());
    return msg;
  }
  replication::Batch* batch = msg.mutable_batch();
  for (storage::Entry& e : log_.Read(send.first, send.last - send.first + 1, UINT64_MAX)) {
    replication::Entry* out = batch->add_entries();
    out->set_id(e.id);
    out->set_timestamp_ms(e.timestamp_ms);
    out->set_message(std::move(e.message));
  }
  batch->set_master_last_id(log_.last_id());
  return msg;
}

void MasterNode::Step(const std::function<void(core::Replicator&)>& event) {
  struct Answer {
    Parked parked;
    core::WriteOutcome outcome;
  };
  std::vector<Answer> answers;
  std::vector<std::pair<std::shared_ptr<replication::SentinelStream>, core::Ready::Send>> sends;
  std::vector<std::shared_ptr<replication::SentinelStream>> to_start, to_cancel;
  std::vector<std::pair<core::SentinelId, uint64_t>> hellos;
  std::vector<std::pair<core::SentinelId, Clock::time_point>> replicated;
  core::Ready ready;
  bool draining = false;
  {
    MutexLock lock(mu_);
    event(core_);
    ready = core_.TakeReady();
    draining = draining_;
    for (const auto& a : ready.acks) {
      if (a.to > a.from && core_.last_id() - a.to < kAppendTimes) {
        replicated.emplace_back(a.sentinel, append_times_[a.to % kAppendTimes]);
      }
    }
    for (const auto& c : ready.completions) {
      auto it = parked_.find(c.handle);
      if (it == parked_.end()) continue;
      answers.push_back({std::move(it->second), c.outcome});
      parked_.erase(it);
    }
    for (const auto& c : ready.connects) {
      // Created (and stored) before it starts, so its first events find it here.
      Link& link = links_[c.sentinel];
      link.generation = c.generation;
      link.stream = std::make_shared<replication::SentinelStream>(c.sentinel, c.generation, this);
      hellos.emplace_back(c.sentinel, c.generation);
      to_start.push_back(link.stream);
    }
    for (const auto& c : ready.cancels) {
      if (links_[c.sentinel].generation == c.generation && links_[c.sentinel].stream) {
        to_cancel.push_back(links_[c.sentinel].stream);
      }
    }
    for (const auto& s : ready.sends) {
      const Link& link = links_[s.sentinel];
      if (link.generation == s.generation && link.stream) sends.emplace_back(link.stream, s);
    }
  }

  for (size_t i = 0; i < to_start.size(); ++i) {
    auto [s, gen] = hellos[i];
    replication::MasterMessage hello;
    replication::Hello* h = hello.mutable_hello();
    h->set_log_id(log_id_);
    h->set_epoch(1);
    h->set_master_last_id(log_.last_id());
    h->set_master_http(config_.advertise_http);
    h->set_sentinel_name(names_[s]);
    to_start[i]->Start(stubs_[s].get(), std::move(hello));
  }
  for (auto& stream : to_cancel) stream->Cancel();
  for (auto& [stream, send] : sends) stream->Send(BuildSend(send));
  auto now = Clock::now();
  for (const auto& [s, appended_at] : replicated) {
    metrics_.ObserveReplication(names_[s], now - appended_at);
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
  for (const auto& c : ready.status_changes) {
    spdlog::info("sentinel {} is {} (was {})", names_[c.sentinel], core::HealthName(c.to),
                 core::HealthName(c.from));
  }
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
      id = log_.AppendNext(now_ms, std::move(req.message));
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
  auto statuses = core_.Sentinels();
  for (size_t i = 0; i < statuses.size(); ++i) {
    const core::SentinelStatus& s = statuses[i];
    nlohmann::json o = {{"name", s.name},
                        {"status", core::HealthName(s.health)},
                        {"connected", s.connected},
                        {"ackedId", s.acked},
                        {"lag", s.lag},
                        {"lastHeardMs", s.silent_for * config_.tick_ms}};
    if (i < links_.size() && !links_[i].last_error.empty()) o["lastError"] = links_[i].last_error;
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

http::HttpReply MasterNode::Metrics() {
  {
    MutexLock lock(mu_);
    for (const core::SentinelStatus& s : core_.Sentinels()) {
      metrics_.SetSentinel(s.name, s.acked, s.lag, core::HealthName(s.health), s.connected);
    }
    metrics_.SetLastId(core_.last_id());
    metrics_.SetReadOnly(core_.read_only());
  }
  return {200, metrics_.Serialize(), {}, "text/plain; version=0.0.4"};
}

void MasterNode::OnWelcome(core::SentinelId s, uint64_t gen, const replication::Welcome& w) {
  Step([&](core::Replicator& core) NO_THREAD_SAFETY_ANALYSIS {
    links_[s].last_error.clear();
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
  Step([&](core::Replicator& core) NO_THREAD_SAFETY_ANALYSIS {
    Link& link = links_[s];
    if (link.generation == gen) {
      link.stream.reset();
      if (!status.ok()) link.last_error = status.error_message();
    }
    core.Disconnected(s, gen);
  });
  if (status.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {
    spdlog::error("sentinel {} refused replication: {}", names_[s], status.error_message());
  } else {
    spdlog::debug("stream to sentinel {} closed: {}", names_[s], status.error_message());
  }
}

void MasterNode::Drain(std::chrono::milliseconds timeout) {
  {
    MutexLock lock(mu_);
    draining_ = true;
  }
  spdlog::info("draining: refusing new writes, waiting up to {} ms for parked ones",
               timeout.count());
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    {
      MutexLock lock(mu_);
      if (parked_.empty()) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  Step([](core::Replicator& core) { core.ExpireAllWrites(); });
  ExpireTails(Clock::now(), /*all=*/true);
  stop_ = true;
  if (ticker_.joinable()) ticker_.join();
  MutexLock lock(mu_);
  for (Link& link : links_) {
    if (link.stream) link.stream->Cancel();
  }
}

}  // namespace rlog::app
