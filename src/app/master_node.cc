#include "app/master_node.h"

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "app/node_storage.h"
#include "app/tls.h"
#include "core/epochs.h"
#include "http/insert_request.h"
#include "replication/master_message.h"
#include "storage/commit_checkpoint.h"

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
  auto ticks = [&](uint64_t ms) {
    return std::max<core::Tick>(1, (ms + c.tick_ms - 1) / c.tick_ms);
  };
  core::ReplicatorOptions o;
  o.batch_max_entries = c.batch_max_entries;
  o.batch_max_bytes = c.batch_max_bytes;
  o.window_batches = c.window_batches;
  o.min_pipelined_batch = c.min_pipelined_batch;
  o.linger = c.linger_ms == 0 ? 0 : ticks(c.linger_ms);
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
    : config_(config), idempotency_(config.idempotency_keys), append_times_(kAppendTimes) {}

MasterNode::~MasterNode() {
  stop_ = true;
  {
    MutexLock lock(recovery_call_mu_);
    if (recovery_call_ != nullptr) recovery_call_->TryCancel();
  }
  if (recovery_thread_.joinable()) recovery_thread_.join();
  if (ticker_.joinable()) ticker_.join();
  // The streams' events call into this object (and into discovery_): end them all before
  // anything is destroyed.
  stream_queue_.Close();
  {
    MutexLock lock(mu_);
    for (Member& m : members_) {
      if (m.stream) m.stream->Cancel();
    }
    for (auto& stream : to_cancel_) stream->Cancel();
  }
  stream_queue_.Shutdown();
  if (discovery_) discovery_->Stop();
  // Last, while every member is still alive (store_ is destroyed after all of them): stop the
  // group committer, whose final flush may still call on_durable (Step), on_error and the fsync
  // metric. A stream started by that Step is refused by the closed queue; a Send to an ended
  // stream is dropped.
  if (store_) store_->Close();
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
  if (!config_.tls_server_name.empty()) {
    args.SetSslTargetNameOverride(config_.tls_server_name);
  }
  auto channel = grpc::CreateCustomChannel(address, ChannelCredentials(config_), args);
  return std::shared_ptr<replication::Replication::Stub>(
      replication::Replication::NewStub(channel));
}

void MasterNode::ApplyMembership(const std::vector<discovery::Change>& changes) {
  Step([&](core::Replicator& core) NO_THREAD_SAFETY_ANALYSIS {
    if (recovering_) {
      // No stream may open before the log is taken over; recovery only needs the addresses.
      for (const discovery::Change& change : changes) {
        if (change.kind == discovery::Change::Kind::kRemoved) {
          recovery_targets_.erase(change.identity);
        } else {
          recovery_targets_[change.identity] = change.address;
        }
      }
      pending_membership_.insert(pending_membership_.end(), changes.begin(), changes.end());
      return;
    }
    ApplyMembershipLocked(core, changes);
  });
}

void MasterNode::ApplyMembershipLocked(core::Replicator& core,
                                       const std::vector<discovery::Change>& changes) {
  {
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
  }
}

Status MasterNode::Start() {
  auto fs = DataDirFileSystem::Open(config_);
  if (!fs.ok()) return fs.status();
  fs_ = std::move(fs).value();
  auto opened = OpenNodeLog(
      config_, fs_, metrics_,
      [this](core::LogId durable) {
        Step([durable](core::Replicator& core) { core.LocalDurable(durable); });
        NotifyAppended(durable);  // Readable from now on (node_base.h).
      },
      [this](const Status& error) { OnStorageError(error); });
  if (!opened.ok()) return opened.status();
  store_ = std::move(opened).value();
  served_ = store_.get();
  get_all_max_bytes_ = config_.get_all_max_bytes;
  max_waiting_reads_ = static_cast<size_t>(config_.max_waiting_reads);
  if (store_->persistent()) {
    // Decided before anything is written: a run with fsync: never or interval may lose, in a
    // power loss, writes it counted itself for, so its log stops vouching for itself until a
    // take-over under fsync: always has made it whole again (TakeOver).
    own_log_trusted_ = store_->recovered_existing() && config_.fsync == FsyncPolicy::kAlways &&
                       HasAlwaysSyncedMark(fs_, config_.data_dir);
    if (config_.fsync != FsyncPolicy::kAlways) {
      if (Status s = ClearAlwaysSyncedMark(fs_, config_.data_dir); !s.ok()) return s;
    }
    // What readers saw before the restart stays readable while the core learns the commit id
    // again (it counts only this epoch's copies; storage/commit_checkpoint.h).
    auto loaded = storage::LoadCommitCheckpoint(fs_.get(), config_.data_dir);
    if (!loaded.ok()) {
      spdlog::warn("ignoring the saved commit id: {}", loaded.status().message());
    } else if (loaded.value() && loaded.value()->log_id == store_->log_id()) {
      MutexLock lock(mu_);
      saved_commit_ = loaded.value()->commit_id;
      read_cap_.store(saved_commit_, std::memory_order_release);
      spdlog::info("log {}: commit id {} (saved), readers see up to id {}", store_->log_id(),
                   saved_commit_, VisibleId());
    }
  }
  if (config_.tls_enabled()) metrics_.EnableTls();
  // The concerns clients use most, at 0 from the first scrape (Metrics::DeclareConcern).
  const size_t nodes = 1 + std::max<size_t>(config_.sentinels.size(), config_.expected_sentinels);
  for (size_t w = 1; w <= std::min<size_t>(nodes, metrics::Metrics::kMaxNumericConcern); ++w) {
    metrics_.DeclareConcern(std::to_string(w));
  }
  metrics_.DeclareConcern("majority");
  metrics_.DeclareConcern("all");
  const bool persistent = store_->persistent();
  {
    MutexLock lock(mu_);
    core_ = std::make_unique<core::Replicator>(CoreOptions(config_), &store_->memory());
    // In memory with sentinels, the master may be restarting: they may hold its log.
    recovering_ = persistent || !config_.sentinels.empty();
    if (recovering_) recovery_progress_ = "waiting for the sentinels' addresses";
  }

  discovery::DiscoveryOptions discovery_options;
  discovery_options.dns_server = config_.dns_server;
  discovery_options.refresh_ms = config_.discovery_refresh_ms;
  discovery_options.grace_ms = config_.discovery_grace_ms;
  discovery_options.backoff_initial_ms = config_.backoff_initial_ms;
  discovery_options.backoff_max_ms = std::max(config_.backoff_max_ms, config_.backoff_initial_ms);
  discovery_ = std::make_unique<discovery::Discovery>(
      config_.sentinels, discovery_options,
      [this](const std::vector<discovery::Change>& changes) { ApplyMembership(changes); });
  Status started = discovery_->Start();
  if (!started.ok()) return started;
  if (config_.sentinels.empty()) {
    spdlog::info("no sentinels: a master alone, a cluster of one node");
  } else {
    spdlog::info("sentinels from: {}", fmt::join(config_.sentinels, ", "));
  }
  if (persistent || !config_.sentinels.empty()) {
    recovery_thread_ = std::thread([this] { RecoverFromSentinels(); });
  } else {
    // In memory and alone: nothing to recover and nobody to ask.
    if (Status s = TakeOver(NewLogId(), 1); !s.ok()) return s;
  }
  ticker_ = std::thread([this] {
    auto period = std::chrono::milliseconds(config_.tick_ms);
    auto next = std::chrono::steady_clock::now() + period;
    while (!stop_) {
      std::this_thread::sleep_until(next);
      next += period;
      Step([](core::Replicator& core) { core.OnTick(); });
      ExpireTails(Clock::now());
      if (Clock::now() - last_commit_save_ >= std::chrono::seconds(1)) SaveCommit();
    }
  });
  return Status::Ok();
}

Status MasterNode::TakeOver(const std::string& log_id, uint64_t epoch) {
  if (Status s = store_->SetIdentity(log_id, epoch); !s.ok()) return s;
  // What was copied may still wait for its fsync (SetIdentity flushes only when the epoch
  // changes, and the copy may have been made under the promised epoch already): durable before
  // the first write, so that reads show the whole log from then on.
  if (Status s = store_->Flush(); !s.ok()) return s;
  // This epoch's own entries start after what it took over; a log holding all of that ranks with
  // this epoch in a later take-over (NodeLog::MarkEpochStart). Sentinels mark it too, each once
  // it holds all of it, so that the commit rule below can count them there.
  if (Status s = store_->MarkEpochStart(store_->last_id() + 1); !s.ok()) return s;
  // The log is durable and whole (what a majority held, copied), and from here on every write is
  // synced before it counts: a restart may trust it again.
  if (store_->persistent() && config_.fsync == FsyncPolicy::kAlways) {
    if (Status s = SetAlwaysSyncedMark(fs_, config_.data_dir); !s.ok()) {
      spdlog::warn("cannot mark the log as synced ({}): a restart will not count it", s.message());
    }
  }
  core::LogId last = 0;
  std::vector<storage::MemoryLog::KeyedId> keys;
  Step([&](core::Replicator& core) NO_THREAD_SAFETY_ANALYSIS {
    log_id_ = log_id;
    epoch_ = epoch;
    recovering_ = false;
    recovery_progress_.clear();
    last = store_->last_id();
    // The sentinels first: before they are members the master alone is a majority, and telling
    // the core what the log holds would commit all of it at once, a tail no sentinel holds
    // included (shown to the master's readers, and sent to the sentinels as the commit id).
    std::vector<discovery::Change> pending;
    pending.swap(pending_membership_);
    recovery_targets_.clear();
    recovery_answers_.clear();
    ApplyMembershipLocked(core, pending);
    // The keys the log holds, as the master that wrote them knew them: a retry with one of them
    // gets its id, whichever master it reached first.
    keys = store_->memory().Keys();
    std::vector<std::pair<std::string_view, core::LogId>> restored;
    restored.reserve(keys.size());
    for (const storage::MemoryLog::KeyedId& k : keys) restored.emplace_back(k.key, k.id);
    idempotency_.Restore(restored);
    // A saved commit id past the log taken over (a power loss under fsync: interval or never took
    // ids from every node that had them) would show this master's next writes at once: they go
    // to those ids. Only what the log holds now can have been committed.
    if (read_cap_.load(std::memory_order_relaxed) > last) {
      read_cap_.store(last, std::memory_order_release);
    }
    // Entries of earlier epochs are committed once a majority holds them all with this epoch's
    // mark (or an entry of it), or by what a sentinel reports it learned before (its Welcome),
    // never by counting copies that reach less.
    core.EpochStarted(last + 1);
    core.Appended(last);
    core.LocalDurable(store_->durable_id());
  });
  if (!keys.empty()) {
    spdlog::info("idempotency keys of ids {}..{} taken over with the log ({} keys)",
                 keys.front().id, keys.back().id, keys.size());
  }
  spdlog::info("master of log {} at epoch {}; last id {}; accepting writes", log_id, epoch, last);
  return Status::Ok();
}

core::Tick MasterNode::ToTicks(uint64_t ms) const {
  return std::max<core::Tick>(1, (ms + config_.tick_ms - 1) / config_.tick_ms);
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
  std::vector<std::pair<std::string, uint64_t>> batches;  // Sentinel name, entries.
  std::vector<std::string> notes;
  core::Ready ready;
  bool draining = false;
  bool readable = false;  // The read cap moved: parked long polls may be answered.
  std::string deposed;
  std::string log_id;
  uint64_t epoch = 0;
  {
    MutexLock lock(mu_);
    event(*core_);
    ready = core_->TakeReady();
    if (core_->commit_id() > read_cap_.load(std::memory_order_relaxed)) {
      read_cap_.store(core_->commit_id(), std::memory_order_release);
      readable = true;
    }
    log_id = log_id_;
    epoch = epoch_;
    draining = draining_;
    deposed = deposed_;
    to_cancel.swap(to_cancel_);
    for (const auto& a : ready.acks) {
      if (a.to > a.from && core_->last_id() - a.to < kAppendTimes) {
        replicated.emplace_back(members_[a.sentinel].name, append_times_[a.to % kAppendTimes]);
      }
    }
    for (const auto& c : ready.completions) {
      auto it = parked_.find(c.handle);
      if (it == parked_.end()) continue;
      if (c.w != 0) it->second.w = c.w;  // "majority" / "all" follow the cluster's size.
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
      if (m.generation != s.generation || !m.stream) continue;
      sends.emplace_back(m.stream, s);
      if (!s.heartbeat()) batches.emplace_back(m.name, s.last - s.first + 1);
    }
    for (const auto& c : ready.status_changes) {
      notes.push_back(fmt::format("sentinel {} is {} (was {})", members_[c.sentinel].name,
                                  core::HealthName(c.to), core::HealthName(c.from)));
    }
  }

  // The last id first: an append landing in between then only adds a history step past it, which
  // the sentinel ignores. Read the other way round, the first entry of a new epoch could be
  // counted in master_last_id but missing from the history, and a sentinel's diverged entry at
  // that id kept (core::CommonPrefix).
  core::LogId master_last = 0;
  std::vector<core::EpochStart> history;
  if (!to_start.empty()) {
    master_last = store_->last_id();
    history = store_->EpochStarts();  // With this epoch's mark: where a sentinel marks it.
  }
  for (Start& start : to_start) {
    replication::MasterMessage hello;
    replication::Hello* h = hello.mutable_hello();
    h->set_log_id(log_id);
    h->set_epoch(epoch);
    for (const auto& [step_epoch, first_id] : history) {
      replication::EpochStart* step = h->add_epochs();
      step->set_epoch(step_epoch);
      step->set_first_id(first_id);
    }
    h->set_master_last_id(master_last);
    h->set_master_http(config_.advertise_http);
    h->set_sentinel_name(start.name);
    start.stream->Start(start.stub, &stream_queue_, std::move(hello));
  }
  for (auto& stream : to_cancel) stream->Cancel();
  for (auto& [stream, send] : sends) {
    stream->Send(replication::BuildMasterMessage(send, store_->memory()));
  }
  for (const auto& [name, entries] : batches) metrics_.CountReplicationBatch(name, entries);
  auto now = Clock::now();
  for (const auto& [name, appended_at] : replicated) {
    metrics_.ObserveReplication(name, now - appended_at);
  }
  for (Answer& a : answers) {
    metrics::InsertOutcome outcome = a.outcome == core::WriteOutcome::kCommitted
                                         ? metrics::InsertOutcome::kOk
                                     : draining          ? metrics::InsertOutcome::kDraining
                                     : !deposed.empty()  ? metrics::InsertOutcome::kDeposed
                                                         : metrics::InsertOutcome::kTimeout;
    metrics_.CountInsert(a.parked.concern, outcome);
    metrics_.ObserveInsert(a.parked.concern, now - a.parked.start);
    if (outcome == metrics::InsertOutcome::kOk)
      metrics_.CountWriteAcks(a.parked.concern, a.parked.w);
    if (a.outcome == core::WriteOutcome::kCommitted) {
      a.parked.respond({200,
                        "{\"id\":" + std::to_string(a.parked.id) +
                            ",\"writeConcern\":" + std::to_string(a.parked.w) + "}",
                        {}});
    } else if (!deposed.empty()) {
      // Stored here, and perhaps on a sentinel the new master copied from: nobody can say.
      a.parked.respond(http::JsonError(
          503,
          "deposed: " + deposed + "; id " + std::to_string(a.parked.id) +
              " was stored on this master but not acknowledged, and whether the new master's "
              "log holds it is unknown: read the log there before sending it again",
          "\"id\":" + std::to_string(a.parked.id) + ",\"acknowledged\":false"));
    } else if (draining) {
      // The key is in the log with the entry: the next master knows it if its log holds the
      // entry (README.md, "Idempotency keys").
      a.parked.respond(http::JsonError(
          503,
          "the master is shutting down before enough nodes acknowledged the write; id " +
              std::to_string(a.parked.id) +
              " is stored here but not acknowledged: retry with the same idempotencyKey, and the "
              "next master answers with this id if its log holds it",
          "\"id\":" + std::to_string(a.parked.id) + ",\"stored\":true"));
    } else {
      a.parked.respond(
          http::JsonError(504,
                          "timed out waiting for " + std::to_string(a.parked.w) +
                              " nodes to acknowledge; the message is stored on the master with "
                              "id " +
                              std::to_string(a.parked.id) +
                              " and is still sent to every sentinel, but is not acknowledged: "
                              "a master that loses its data before a majority holds it loses it",
                          "\"id\":" + std::to_string(a.parked.id) + ",\"stored\":true"));
    }
  }
  if (readable) NotifyAppended(read_cap_.load(std::memory_order_acquire));
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
  metrics_.DeclareConcern(concern);
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
    if (recovering_) {
      refused = metrics::InsertOutcome::kRecovering;
      reply = http::JsonError(503,
                              "recovering: the master does not take writes until it has "
                              "recovered the log from its sentinels (" +
                                  recovery_progress_ + ")");
      reply->headers.emplace_back("Retry-After", "1");
      return;
    }
    if (!storage_error_.empty()) {
      refused = metrics::InsertOutcome::kStorageError;
      reply = http::JsonError(
          500, "not acknowledged: the master's write-ahead log failed (" + storage_error_ + ")");
      return;
    }
    if (!deposed_.empty()) {
      // No Retry-After: this master will not take writes again; the newer one does.
      refused = metrics::InsertOutcome::kDeposed;
      reply = http::JsonError(
          503, "deposed: " + deposed_ + "; this master takes no writes (send them to the new one)");
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
      reply = http::JsonError(503, "read-only: fewer than a majority of the cluster is reachable",
                              "\"reachable\":" + std::to_string(core.reachable()) +
                                  ",\"majority\":" + std::to_string(core.majority()));
      reply->headers.emplace_back("Retry-After", "1");
      return;
    }
    std::optional<core::LogId> id;
    if (req.idempotency_key) id = idempotency_.Find(*req.idempotency_key);
    if (id) {
      // A retry must be the same request: a key sent again with another message would be told
      // "stored" for a message that never was (the IETF Idempotency-Key draft answers 422).
      const std::vector<storage::Entry> first = store_->memory().Read(*id, 1, UINT64_MAX);
      if (first.size() == 1 && first[0].message != req.message) {
        refused = metrics::InsertOutcome::kBadRequest;
        reply = http::JsonError(422,
                                "idempotencyKey was first used for id " + std::to_string(*id) +
                                    " with another message; a retry must send the same message",
                                "\"id\":" + std::to_string(*id));
        return;
      }
    }
    if (!id && config_.max_log_bytes != 0) {
      // Checked against what the log takes now: one more entry may pass the limit by a chunk.
      const uint64_t used = store_->memory().memory_bytes();
      if (used + req.message.size() > config_.max_log_bytes) {
        refused = metrics::InsertOutcome::kLogFull;
        reply = http::JsonError(507,
                                "log full: the log takes " + std::to_string(used) +
                                    " bytes of memory and max_log_bytes is " +
                                    std::to_string(config_.max_log_bytes) +
                                    "; inserts are refused until the limit is raised (reads go on)",
                                "\"logBytes\":" + std::to_string(used) +
                                    ",\"maxLogBytes\":" + std::to_string(config_.max_log_bytes));
        return;
      }
    }
    if (!id) {
      // The key goes into the log with the entry: a master that takes the log over after this
      // one (restarted, or rebuilt from the sentinels) learns it from there (TakeOver).
      std::string key = config_.idempotency_keys > 0 ? req.idempotency_key.value_or("") : "";
      Result<core::LogId> stored =
          store_->AppendNext(epoch_, now_ms, std::move(req.message), std::move(key));
      if (!stored.ok()) {
        refused = metrics::InsertOutcome::kStorageError;
        reply = http::JsonError(500,
                                "not acknowledged: the master could not write it to its "
                                "write-ahead log (" +
                                    stored.status().message() + ")");
        return;
      }
      id = stored.value();
      appended = *id;
      append_times_[*id % kAppendTimes] = start;
      core.Appended(*id);
      // In memory an entry is held as soon as it is appended; on disk, once the group committer
      // reports it covered by the fsync policy (on_durable -> LocalDurable).
      if (!store_->persistent()) core.LocalDurable(*id);
      if (req.idempotency_key) idempotency_.Insert(*req.idempotency_key, *id);
    }
    uint64_t timeout_ms =
        std::min(req.timeout_ms.value_or(config_.default_timeout_ms), config_.max_timeout_ms);
    using Kind = http::WriteConcern::Kind;
    const core::Replicator::Concern follows = req.concern.kind == Kind::kMajority
                                                  ? core::Replicator::Concern::kMajority
                                              : req.concern.kind == Kind::kAll
                                                  ? core::Replicator::Concern::kAll
                                                  : core::Replicator::Concern::kCount;
    core::WriteHandle handle =
        core.ParkWrite(*id, static_cast<uint32_t>(w), ToTicks(timeout_ms), follows);
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
  j["epoch"] = epoch_;
  j["lastId"] = store_->last_id();
  j["durableId"] = store_->durable_id();
  j["lastEpoch"] = store_->DurableLastEpoch();  // As on sentinels.
  // What sentinels may show their readers (the high watermark; see replication.proto).
  j["commitId"] = core_->commit_id();
  j["visibleId"] = VisibleId();  // What readers see: up to the commit id (ReadCap).
  j["waitingReads"] = WaitingReads();
  // Keys a retry would be answered from (taken over with the log, then added by inserts).
  j["idempotencyKeys"] = idempotency_.size();
  j["logBytes"] = store_->memory().memory_bytes();
  j["maxLogBytes"] = config_.max_log_bytes;
  // Writes are refused while recovering too (state says why).
  j["readOnly"] = recovering_ || !deposed_.empty() || core_->read_only();
  j["state"] = draining_                 ? "draining"
               : !storage_error_.empty() ? "storage-error"
               : recovering_             ? "recovering"
               : !deposed_.empty()       ? "deposed"
               : core_->read_only()      ? "read-only"
                                         : "writable";
  if (recovering_) j["recovery"] = recovery_progress_;
  if (!deposed_.empty()) j["deposed"] = deposed_;
  if (!storage_error_.empty()) j["storageError"] = storage_error_;
  if (store_->persistent()) {
    const storage::WalRecoveryReport& r = store_->recovery();
    j["commitSavedId"] = saved_commit_;  // In <data_dir>/commit: what a restart shows at once.
    j["wal"] = {{"dataDir", config_.data_dir},
                {"fsync", FsyncPolicyName(config_.fsync)},
                {"recoveredEntries", r.entries},
                {"truncatedBytes", r.truncated_bytes}};
  }
  j["parkedWrites"] = core_->parked_writes();
  nlohmann::json sentinels = nlohmann::json::array();
  if (recovering_) {
    // No stream is open before the take-over: each sentinel as recovery last heard from it
    // (Healthy once it gave its position), in a cluster of those known or expected.
    size_t answered = 0;
    for (const RecoveringSentinel& r : RecoveringSentinels()) {
      answered += r.gave ? 1 : 0;
      nlohmann::json o = {{"name", r.name},
                          {"status", r.gave ? "Healthy" : "Unhealthy"},
                          {"connected", false},
                          {"ackedId", 0},
                          {"lag", 0}};
      if (!r.why.empty()) o["lastError"] = r.why;
      sentinels.push_back(o);
    }
    const size_t cluster =
        1 + std::max<size_t>(recovery_targets_.size(), config_.expected_sentinels);
    j["quorum"] = {{"clusterSize", cluster},
                   {"reachable", 1 + answered},
                   {"majority", cluster / 2 + 1}};
    j["sentinels"] = sentinels;
    return {200, j.dump(), {}};
  }
  j["quorum"] = {{"clusterSize", core_->cluster_size()},
                 {"reachable", core_->reachable()},
                 {"majority", core_->majority()}};
  for (const core::SentinelStatus& s : core_->Sentinels()) {
    nlohmann::json o = {{"name", s.name},
                        {"status", core::HealthName(s.health)},
                        {"connected", s.connected},
                        {"ackedId", s.acked},
                        {"lag", s.lag},
                        {"lastHeardMs", s.silent_for * config_.tick_ms}};
    if (!members_[s.id].last_error.empty()) o["lastError"] = members_[s.id].last_error;
    if (!members_[s.id].duplicate_of.empty()) o["duplicateOf"] = members_[s.id].duplicate_of;
    sentinels.push_back(o);
  }
  j["sentinels"] = sentinels;
  return {200, j.dump(), {}};
}

std::vector<MasterNode::RecoveringSentinel> MasterNode::RecoveringSentinels() const {
  std::vector<RecoveringSentinel> out;
  for (const auto& [identity, address] : recovery_targets_) {
    auto heard = recovery_answers_.find(identity);
    const bool asked = heard != recovery_answers_.end();
    out.push_back({identity, asked && heard->second.empty(), asked ? heard->second : ""});
  }
  return out;
}

http::HttpReply MasterNode::Ready() {
  MutexLock lock(mu_);
  if (draining_) return http::JsonError(503, "draining");
  if (!storage_error_.empty()) return http::JsonError(503, "storage error: " + storage_error_);
  if (recovering_) return http::JsonError(503, "recovering: " + recovery_progress_);
  if (!deposed_.empty()) return http::JsonError(503, "deposed: " + deposed_);
  return {200, R"({"ready":true})", {}};
}

void MasterNode::InsertTooLarge() {
  metrics_.CountInsert("other", metrics::InsertOutcome::kTooLarge);
}

http::HttpReply MasterNode::Metrics() {
  {
    MutexLock lock(mu_);
    std::set<std::string> now;
    if (recovering_) {
      // No stream before the take-over: each sentinel as recovery last heard from it, as on
      // /health (acked id and lag unknown yet: 0), so that RlogSentinelUnhealthy still fires.
      for (const RecoveringSentinel& r : RecoveringSentinels()) {
        metrics_.SetSentinel(r.name, 0, 0, r.gave ? "Healthy" : "Unhealthy");
        now.insert(r.name);
      }
    }
    for (const core::SentinelStatus& s : core_->Sentinels()) {
      metrics_.SetSentinel(s.name, s.acked, s.lag, core::HealthName(s.health));
      now.insert(s.name);
    }
    // Sentinels that left (discovery): their last status would otherwise stay exported, and an
    // alert on Unhealthy would fire for ever after a scale-down.
    for (const std::string& name : metric_sentinels_) {
      if (!now.contains(name)) metrics_.ClearSentinel(name);
    }
    metric_sentinels_ = std::move(now);
    metrics_.SetLastId(store_->last_id());  // The core knows none of it before the take-over.
    metrics_.SetCommitId(read_cap_.load(std::memory_order_acquire));
    metrics_.SetLogMemory(store_->memory().memory_bytes(), config_.max_log_bytes);
    // As /health's readOnly: every reason this master refuses writes.
    metrics_.SetReadOnly(recovering_ || core_->read_only() || !deposed_.empty());
  }
  UpdateTlsMetrics(config_, metrics_, tls_expiry_);
  return {200, metrics_.Serialize(), {}, "text/plain; version=0.0.4"};
}

void MasterNode::OnWelcome(core::SentinelId s, uint64_t gen, const replication::Welcome& w) {
  Step([&](core::Replicator& core) NO_THREAD_SAFETY_ANALYSIS {
    core.KnownCommitted(w.commit_id());
    Member& m = members_[s];
    if (m.generation != gen) return;  // An older stream's: it tells nothing about this one.
    // Welcomed: this name reaches a sentinel no other live stream of ours reaches (a second
    // name is refused before its Welcome: SentinelService::ClaimName, OnClosed).
    m.duplicate_of.clear();
    core.SetDuplicate(s, false);
    m.last_error.clear();
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
  std::string name, duplicate_of;
  bool deposed_now = false;
  bool new_error = false;  // Not the error the last attempt ended with (that one was logged).
  bool new_duplicate = false;
  Step([&](core::Replicator& core) NO_THREAD_SAFETY_ANALYSIS {
    Member& m = members_[s];
    name = m.name;
    if (m.generation == gen) {
      m.stream.reset();
      if (status.error_code() == grpc::StatusCode::ALREADY_EXISTS) {
        // The sentinel already takes this master's stream under another name
        // (SentinelService::ClaimName), which SentinelStream puts in the status's details (from
        // the sentinel's kDuplicateOfTrailer): one node, counted once.
        duplicate_of =
            status.error_details().empty() ? std::string("another name") : status.error_details();
        new_duplicate = m.duplicate_of != duplicate_of;
        m.duplicate_of = duplicate_of;
        core.SetDuplicate(s, true);
      } else if (!status.ok()) {
        new_error = m.last_error != status.error_message();
        m.last_error = status.error_message();
      }
    }
    if (status.error_code() == grpc::StatusCode::ABORTED && deposed_.empty()) {
      deposed_ = "sentinel " + m.name + ": " + status.error_message();
      deposed_now = true;
      // No ack can come any more for what waits (the sentinels refuse this master): answer now
      // rather than at each write's timeout.
      core.ExpireAllWrites();
    }
    core.Disconnected(s, gen);
  });
  if (new_duplicate) {
    spdlog::error(
        "sentinel {} is the same sentinel process as {}: two names for one node; it is not "
        "counted toward write concerns, the cluster size or the majority. List each sentinel "
        "once.",
        name, duplicate_of);
  } else if (deposed_now) {
    spdlog::error(
        "deposed: sentinel {} says a newer master has taken the log over ({}); taking "
        "no more writes",
        name, status.error_message());
  } else if (new_error && (status.error_code() == grpc::StatusCode::FAILED_PRECONDITION ||
                           status.error_code() == grpc::StatusCode::PERMISSION_DENIED)) {
    spdlog::error("sentinel {} refused replication: {}", name, status.error_message());
  } else if (new_error && status.error_code() != grpc::StatusCode::CANCELLED) {
    // Once per distinct cause, so a sentinel that stays unreachable (down, refused by TLS, a
    // wrong address) is explained in the log, not only on /health, without a line per retry.
    spdlog::warn("stream to sentinel {} ended: {}", name, status.error_message());
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
    drained_.wait_for(lock, timeout,
                      [this]() NO_THREAD_SAFETY_ANALYSIS { return parked_.empty(); });
  }
  Step([](core::Replicator& core) { core.ExpireAllWrites(); });
  ExpireTails(Clock::now(), /*all=*/true);
  stop_ = true;
  {
    MutexLock lock(recovery_call_mu_);
    if (recovery_call_ != nullptr) recovery_call_->TryCancel();
  }
  if (recovery_thread_.joinable()) recovery_thread_.join();
  if (ticker_.joinable()) ticker_.join();
  if (discovery_) discovery_->Stop();
  {
    MutexLock lock(mu_);
    for (Member& m : members_) {
      if (m.stream) m.stream->Cancel();
    }
  }
  // No write is taken any more: flush, and close the WAL cleanly (main ends with _Exit).
  if (store_) {
    SaveCommit();
    store_->Close();
  }
}

void MasterNode::SaveCommit() {
  last_commit_save_ = Clock::now();
  if (!store_->persistent()) return;
  std::string log_id;
  const core::LogId commit = read_cap_.load(std::memory_order_acquire);
  {
    MutexLock lock(mu_);
    if (log_id_.empty() || commit == saved_commit_ || !storage_error_.empty()) return;
    log_id = log_id_;
  }
  Status st = storage::SaveCommitCheckpoint(fs_.get(), config_.data_dir, {log_id, commit});
  if (!st.ok()) {
    spdlog::warn("cannot save the commit id (will retry): {}", st.message());
    return;
  }
  MutexLock lock(mu_);
  saved_commit_ = commit;
}

bool MasterNode::StorageFailed() {
  MutexLock lock(mu_);
  return !storage_error_.empty();
}

// ---- start-up recovery ----------------------------------------------------------------------

void MasterNode::RecoverFromSentinels() {
  // Our own log counts as one of the majority only if everything we ever counted ourselves for
  // is on our disk: an existing log (not a lost directory) written with fsync: always all along.
  bool trust_self = own_log_trusted_;
  const uint64_t own_epoch = store_->epoch();  // SetIdentity below may raise the store's.
  const std::string own_log_id = store_->log_id();
  struct Report {
    std::string log_id;
    uint64_t epoch = 0;
    core::LogId last_id = 0;
    uint64_t last_epoch = 0;
    core::LogId epoch_end = 0;  // Its last id in epochs <= that of our own last entry.
    bool promised = false;      // It accepted `promise` (below) and refuses older masters.
    std::vector<core::EpochStart> history = {};  // Of 1..last_id; empty from an older sentinel.
    std::string instance = {};  // The sentinel process (PositionReply.instance_id).
    core::LogId commit_id = 0;  // The highest commit id it was told for its log.
  };
  struct Target {
    std::string address;
    std::shared_ptr<replication::Replication::Stub> stub;
  };
  std::map<std::string, Report> reports;  // By sentinel identity.
  std::map<std::string, Target> stubs;
  // Taking an existing log over goes in two rounds. The first asks for positions and learns the
  // newest epoch; the second asks enough of the same sentinels again, each to accept (promise)
  // the epoch this master will take, and only those answers count for the plan. Between the two
  // an older master still running could have writes acknowledged; after the second it cannot:
  // the promised sentinels refuse it, and with the others alone it has no majority.
  uint64_t promise = 0;               // 0: first round.
  bool trusted_at_promise = false;    // Our own log counted when the promise was made.
  // Why each sentinel last gave no position ("" once it gave one): shown on /health, and logged
  // once per distinct cause rather than per attempt (no stream reports it before the take-over).
  std::map<std::string, std::string> said;
  auto note = [&](const std::string& identity, const grpc::Status& status) {
    std::string why = status.ok() ? std::string() : status.error_message();
    if (why.empty() && !status.ok()) why = "error " + std::to_string(status.error_code());
    {
      MutexLock lock(mu_);
      recovery_answers_[identity] = why;
    }
    auto [last, first] = said.try_emplace(identity, why);
    if (!first && last->second == why) return;
    last->second = why;
    if (status.ok() || status.error_code() == grpc::StatusCode::CANCELLED) return;
    if (status.error_code() == grpc::StatusCode::FAILED_PRECONDITION ||
        status.error_code() == grpc::StatusCode::PERMISSION_DENIED) {
      spdlog::error("sentinel {} refused replication: {}", identity, why);
    } else {
      spdlog::warn("recovering: sentinel {} gave no position: {}", identity, why);
    }
  };
  auto ask = [&](const std::string& identity, uint64_t promise_epoch,
                 const std::string& log_id) -> std::optional<Report> {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(1));
    replication::PositionRequest request;
    request.set_epoch(store_->LastEpoch());
    if (promise_epoch > 0) {
      request.set_log_id(log_id);
      request.set_promise_epoch(promise_epoch);
    }
    replication::PositionReply reply;
    const auto in_call = EnterRecoveryCall(&context);
    grpc::Status status = stubs[identity].stub->Position(&context, request, &reply);
    note(identity, status);
    if (!status.ok()) return std::nullopt;
    Report report{reply.log_id(),     reply.epoch(),     reply.last_id(),
                  reply.last_epoch(), reply.epoch_end(), reply.promised()};
    for (const replication::EpochStart& step : reply.epochs()) {
      report.history.push_back({step.epoch(), step.first_id()});
    }
    report.instance = reply.instance_id();
    report.commit_id = reply.commit_id();
    return report;
  };
  std::string last_progress;
  std::map<std::string, std::string> logged_positions;  // What was last logged of each sentinel.
  // In memory, a first start is the common case and a restart the other (the process lost its
  // log like a master that lost its directory). Until a sentinel reports a log, it is a first
  // start: once every known sentinel has been asked, a new log begins. From then on (sticky)
  // the rules of a lost directory apply.
  bool restart = store_->persistent();
  spdlog::info("recovering: {} own log ({} entries); asking the sentinels where their logs end",
               trust_self ? "trusting its" : "not counting its", store_->last_id());
  while (!stop_) {
    std::map<std::string, std::string> targets;
    {
      MutexLock lock(mu_);
      targets = recovery_targets_;
    }
    std::erase_if(reports, [&](const auto& r) { return !targets.contains(r.first); });
    for (const auto& [identity, address] : targets) {
      Target& target = stubs[identity];
      if (!target.stub || target.address != address) target = {address, NewStub(address)};
      if (reports.contains(identity)) continue;
      std::optional<Report> report = ask(identity, 0, "");
      if (!report) continue;
      // Once per position: while it waits, a master asks the same sentinels again and again.
      std::string position = "log '" + report->log_id + "' up to id " +
                             std::to_string(report->last_id) + " (epoch " +
                             std::to_string(report->epoch) + ")";
      if (report->commit_id > 0) position += ", commit id " + std::to_string(report->commit_id);
      if (std::exchange(logged_positions[identity], position) != position) {
        spdlog::info("recovering: sentinel {} holds {}", identity, position);
      }
      reports[identity] = std::move(*report);
    }

    for (const auto& [identity, r] : reports) restart = restart || !r.log_id.empty();

    // The log to continue: ours, or (our directory was lost) the one most sentinels hold, then
    // the most advanced. Epochs and lengths of two different logs say nothing about which is the
    // cluster's: an abandoned log (one its sentinel kept when a new log began without it, or an
    // old volume) would win by length, and then never gather enough answers. The cluster's log
    // is on every sentinel that acknowledged its last majority write.
    std::string log_id = own_log_id;
    if (log_id.empty()) {
      std::map<std::string, std::set<std::string>> holders;  // Log id -> sentinel processes.
      for (const auto& [identity, r] : reports) {
        if (!r.log_id.empty()) holders[r.log_id].insert(r.instance.empty() ? identity : r.instance);
      }
      const Report* best = nullptr;
      for (const auto& [identity, r] : reports) {
        if (r.log_id.empty()) continue;
        if (!best || std::make_tuple(holders[r.log_id].size(), r.epoch, r.last_id) >
                         std::make_tuple(holders[best->log_id].size(), best->epoch, best->last_id)) {
          best = &r;
        }
      }
      if (best) log_id = best->log_id;
    }
    // Sentinels of another log neither count nor contribute; empty ones count (they hold nothing).
    const std::vector<core::EpochStart> history = store_->EpochStarts();
    const core::LogId own_last = store_->last_id();
    size_t counted = 0;
    uint64_t max_epoch = store_->epoch();
    std::vector<std::string> identities;
    std::vector<core::RecoveryPosition> positions;
    std::string foreign;  // Sentinels of another log, for /health.
    std::map<std::string, std::string> instances;  // Sentinel process -> the name it counted as.
    core::LogId committed = 0;  // The highest commit id an answer of the log reports, and whose.
    std::string committed_by;
    for (const auto& [identity, r] : reports) {
      if (!r.log_id.empty() && r.log_id != log_id) {
        const std::string why = "holds log " + r.log_id + ", not " +
                                (log_id.empty() ? std::string("ours") : log_id) +
                                ": neither counted nor written to";
        foreign += "; sentinel " + identity + " " + why;
        MutexLock lock(mu_);
        recovery_answers_[identity] = why;
        continue;
      }
      if (promise > 0 && !r.promised) continue;  // Second round: promised answers only.
      if (!r.instance.empty()) {
        // Two names of one sentinel are one answer: counting both could make a minority look
        // like the majority whose every acknowledged write the plan must keep.
        const auto [first, fresh] = instances.emplace(r.instance, identity);
        if (!fresh) {
          foreign += "; sentinel " + identity + " is the same sentinel process as " +
                     first->second + ": counted once";
          continue;
        }
      }
      ++counted;
      if (r.commit_id > committed)
        std::tie(committed, committed_by) = std::tie(r.commit_id, identity);
      max_epoch = std::max(max_epoch, r.epoch);
      identities.push_back(identity);
      positions.push_back({r.last_epoch, r.last_id, r.epoch_end, r.history});
    }
    // A sentinel that accepted a newer epoch than ours saw another master take over after us:
    // what that one acknowledged is not in our log, so our log no longer counts as an answer.
    const bool trusted = promise > 0 ? trusted_at_promise : trust_self && max_epoch <= own_epoch;
    // The most up-to-date log by (epoch of its last entry or of the epoch mark after it, length),
    // counted only as far as it extends our own history, and what of our own log it holds
    // (core::PlanRecovery).
    const core::RecoveryPlan plan =
        core::PlanRecovery(history, own_last, store_->LastEpoch(), positions);
    std::string source;
    if (plan.source) source = identities[*plan.source];
    // Where the log taken over would end. A commit id past it (a sentinel learned it, and the
    // nodes that hold those ids did not answer: removed from the cluster by a scale-down, away,
    // or their disks lost) means committed writes the take-over would lose, and reuse the ids of.
    // Under fsync: always nothing else takes them, so it waits for a node that holds them, unless
    // told to go on (recovery.unclean); under interval or never a power loss may have taken them
    // from every node, and it goes on.
    const core::LogId reach = plan.end();
    const bool short_of_commit = !log_id.empty() && committed > reach;
    const bool wait_for_commit =
        short_of_commit && !config_.recovery_unclean && config_.fsync == FsyncPolicy::kAlways;
    // Enough answers that one must hold every majority-acknowledged write
    // (core::RecoveryAnswersNeeded), counted against the sentinels the cluster is meant to have,
    // when configured: one that DNS does not list at the moment (a Pending pod) may hold the
    // write nobody else does.
    // Two names of one sentinel process are one sentinel (PositionReply.instance_id).
    std::set<std::string> processes;
    size_t twice = 0;
    for (const auto& [identity, r] : reports) {
      if (!r.instance.empty() && !processes.insert(r.instance).second) ++twice;
    }
    const size_t sentinels = std::max<size_t>(targets.size() - std::min(twice, targets.size()),
                                              config_.expected_sentinels);
    const size_t cluster = 1 + sentinels;
    size_t needed = core::RecoveryAnswersNeeded(sentinels, trusted);
    if (config_.sentinels.empty()) needed = 0;  // Nobody to ask: the log is what we have.
    // Every known sentinel was asked above (one round), and none holds a log: a first start,
    // once at least one of them has answered. With none answering, this may as well be a restart
    // while every sentinel is down, and a new log begun now would be refused by each of them when
    // it returns (and with no sentinel up, no write could be acknowledged by a majority anyway).
    if (!restart) needed = config_.sentinels.empty() ? 0 : 1;
    // A restart (our directory is gone) where no answer holds a log: either the cluster's first
    // start, or every sentinel holding the log is away and the answers come from sentinels added
    // since, still empty. S - M + 2 answers cannot tell the two apart (they are drawn from today's
    // membership, not the one that acknowledged the writes), so a new log begins only once every
    // sentinel the cluster is meant to have has said it holds none.
    if (restart && log_id.empty() && !config_.sentinels.empty()) {
      needed = std::max(needed, sentinels);
    }
    std::string progress = std::to_string(counted) + " sentinel position(s) received, " +
                           std::to_string(needed) + " needed; cluster of " +
                           std::to_string(cluster);
    if (!restart) {
      progress = std::to_string(counted) + " of " + std::to_string(targets.size()) +
                 " sentinel(s) answered, none holds a log" +
                 (counted < needed ? std::string("; waiting for one to answer") : "");
    } else if (sentinels > targets.size()) {
      progress += " (discovery.expected_sentinels " + std::to_string(sentinels) + ", " +
                  std::to_string(targets.size()) + " known)";
    }
    if (restart && log_id.empty() && counted < needed) {
      progress += "; none holds a log yet: a new one begins only once every sentinel has answered";
    }
    if (wait_for_commit) {
      progress += "; sentinel " + committed_by + " says ids up to " + std::to_string(committed) +
                  " are committed, but the answers hold only up to " + std::to_string(reach) +
                  ": waiting for a node that holds them (recovery.unclean: true goes on without "
                  "them, and they are lost)";
    }
    progress += foreign;
    if (progress != last_progress) {
      spdlog::info("recovering: {}", progress);
      last_progress = progress;
      MutexLock lock(mu_);
      recovery_progress_ = progress;
    }
    const bool enough =
        counted >= needed && (targets.size() > 0 || config_.sentinels.empty()) && !wait_for_commit;
    if (promise > 0 && !enough) {
      if (!wait_for_commit) {
        spdlog::warn(
            "recovering: fewer sentinels than needed kept the promise of epoch {}; "
            "asking again",
            promise);
      }
      promise = 0;
      reports.clear();
    } else if (wait_for_commit) {
      reports.clear();  // Asked again: a sentinel may have caught up meanwhile.
    } else if (enough && promise == 0 && !log_id.empty() && !config_.sentinels.empty()) {
      promise = max_epoch + 1;
      trusted_at_promise = trusted;
      size_t promised = 0;
      for (const std::string& identity : identities) {
        std::optional<Report> report = ask(identity, promise, log_id);
        if (report && report->promised) {
          ++promised;
          reports[identity] = std::move(*report);
        } else {
          reports.erase(identity);  // Asked again (first round) next time.
        }
      }
      spdlog::info("recovering: {} of {} sentinel(s) promised epoch {} of log {}", promised,
                   identities.size(), promise, log_id);
      if (config_.enable_test_faults && config_.test_recovery_pause_ms > 0) {
        // TEST ONLY: widens the window between the promises and the take-over.
        spdlog::warn("TEST: pausing recovery for {} ms", config_.test_recovery_pause_ms);
        const auto until = std::chrono::steady_clock::now() +
                           std::chrono::milliseconds(config_.test_recovery_pause_ms);
        while (!stop_ && std::chrono::steady_clock::now() < until) {
          std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
      }
      continue;  // The plan is made from the promised answers.
    } else if (enough) {
      if (short_of_commit) {
        spdlog::error(
            "recovering: sentinel {} says ids up to {} are committed, but no answer holds past id "
            "{}: ids {}..{} are lost, and go to the next writes ({})",
            committed_by, committed, reach, reach + 1, committed,
            config_.recovery_unclean ? "recovery.unclean" : "fsync: interval or never");
      }
      Status fetched = Status::Ok();
      // The copied entries' epochs must not exceed the log's (a lost directory has none yet).
      if (!source.empty()) fetched = store_->SetIdentity(log_id, max_epoch);
      if (fetched.ok() && plan.keep < own_last) {
        // Our tail from plan.keep + 1 on was replaced by a newer master (one id, two messages),
        // or, without a source, is not in the newest log, which ends at plan.keep (its epoch
        // mark ranks it first): it was never committed. It goes, durably.
        spdlog::warn(
            "recovering: my ids {}..{} (epoch {}) are not in the newest log ({}), "
            "which goes on from id {}; dropping them",
            plan.keep + 1, own_last, store_->LastEpoch(),
            source.empty() ? "it ends there" : "sentinel " + source, plan.keep + 1);
        if (!source.empty()) trust_self = false;  // Part of it will be a copy.
      }
      if (fetched.ok() && (!source.empty() || plan.keep < own_last)) {
        // An epoch mark of ours at plan.keep goes too unless the log we go on with has it
        // (NodeLog::TruncateAfter; nothing is done when nothing goes).
        const std::vector<core::EpochStart> next =
            plan.source ? positions[*plan.source].history : std::vector<core::EpochStart>{};
        if (Status cut = store_->TruncateAfter(plan.keep, next); !cut.ok()) {
          OnStorageError(cut);
          return;
        }
      }
      if (fetched.ok() && !source.empty()) {
        spdlog::info("recovering: copying ids {}..{} from sentinel {}", store_->last_id() + 1,
                     plan.copy_to, source);
        fetched = FetchFrom(*stubs[source].stub, log_id, plan.copy_to);
      }
      if (fetched.ok()) {
        const bool new_log = log_id.empty();
        if (new_log) log_id = NewLogId();
        Status took = TakeOver(log_id, promise > 0 ? promise : max_epoch + 1);
        if (!took.ok()) {
          OnStorageError(took);
          return;
        }
        if (new_log) spdlog::info("no sentinel holds a log: started a new one");
        return;
      }
      spdlog::warn("recovering: copying from sentinel {} failed: {}; asking again", source,
                   fetched.message());
      reports.clear();  // Their epoch_end is relative to our last entry, which may have changed.
      promise = 0;
    }
    for (int i = 0; i < 20 && !stop_; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

std::shared_ptr<void> MasterNode::EnterRecoveryCall(grpc::ClientContext* context) {
  {
    MutexLock lock(recovery_call_mu_);
    recovery_call_ = context;
    if (stop_) context->TryCancel();
  }
  return std::shared_ptr<void>(nullptr, [this](void*) {
    MutexLock lock(recovery_call_mu_);
    recovery_call_ = nullptr;
  });
}

Status MasterNode::FetchFrom(replication::Replication::Stub& stub, const std::string& log_id,
                             core::LogId target) {
  constexpr uint64_t kFetchBytes = 4 << 20;
  while (store_->last_id() < target && !stop_) {
    const core::LogId from = store_->last_id() + 1;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    replication::FetchRequest request;
    request.set_log_id(log_id);
    request.set_from_id(from);
    request.set_max_bytes(kFetchBytes);
    replication::FetchReply reply;
    const auto in_call = EnterRecoveryCall(&context);
    grpc::Status status = stub.Fetch(&context, request, &reply);
    if (!status.ok()) return Status::Unavailable("fetch: " + status.error_message());
    if (reply.entries_size() == 0) {
      return Status::Unavailable("the sentinel no longer holds id " + std::to_string(from));
    }
    const uint64_t own_epoch = store_->LastEpoch();
    std::vector<storage::Entry> entries;
    entries.reserve(reply.entries_size());
    for (const replication::Entry& e : reply.entries()) {
      const core::LogId expected = from + entries.size();
      if (e.id() != expected || e.epoch() < own_epoch ||
          (!entries.empty() && e.epoch() < entries.back().epoch)) {
        return Status::Unavailable("the sentinel sent id " + std::to_string(e.id()) + " (epoch " +
                                   std::to_string(e.epoch()) + ") where id " +
                                   std::to_string(expected) + " was expected");
      }
      if (e.id() > target) break;
      entries.push_back(
          storage::Entry{e.id(), e.timestamp_ms(), e.message(), e.epoch(), e.idempotency_key()});
    }
    Result<core::LogId> applied = store_->Apply(std::move(entries));
    if (!applied.ok()) return applied.status();
  }
  return stop_ ? Status::Unavailable("stopping") : Status::Ok();
}

void MasterNode::OnStorageError(const Status& error) {
  std::vector<Parked> cut;
  {
    MutexLock lock(mu_);
    if (!storage_error_.empty()) return;
    storage_error_ = error.message();
    for (auto& [handle, parked] : parked_) cut.push_back(std::move(parked));
    parked_.clear();
  }
  // A failed write leaves the WAL behind the memory log for good, and after a failed fsync the
  // kernel may have dropped the dirty pages (retrying could report lost data as durable): either
  // way this process can never acknowledge again. Answer what waits, then stop; a restart
  // recovers the log from disk and from the sentinels.
  spdlog::critical("write-ahead log failed: {}. Nothing more is acknowledged; stopping.",
                   error.message());
  auto now = Clock::now();
  for (Parked& p : cut) {
    metrics_.CountInsert(p.concern, metrics::InsertOutcome::kStorageError);
    metrics_.ObserveInsert(p.concern, now - p.start);
    // Not on the master's disk, but it went to the sentinels from memory: a restarted master
    // that copies what they hold may keep it at this id.
    p.respond(http::JsonError(
        500,
        "not acknowledged: the master's write-ahead log failed (" + error.message() + "); id " +
            std::to_string(p.id) +
            " may have reached a sentinel, and whether the log keeps it once the master is "
            "restarted is unknown: read the log there before sending it again",
        "\"id\":" + std::to_string(p.id) + ",\"acknowledged\":false"));
  }
  std::thread([] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // Let the answers go out.
    spdlog::default_logger()->flush();
    std::_Exit(1);
  }).detach();
}

}  // namespace rlog::app
