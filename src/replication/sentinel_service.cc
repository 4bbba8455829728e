#include "replication/sentinel_service.h"

#include <grpcpp/grpcpp.h>
#include <pthread.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>
#include <vector>

#include "core/backoff.h"
#include "replication/durable_ack_queue.h"
#include "replication/hello_decision.h"
#include "replication/sentinel_stream.h"

namespace rlog::replication {

namespace {

int64_t SteadyNowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// A refusal of the master's request (its stream ends with it); any other error of the log means
// the log cannot persist.
bool IsRefusal(const Status& st) {
  return st.code() == Status::Code::kFailedPrecondition || st.code() == Status::Code::kFenced ||
         st.code() == Status::Code::kInvalidArgument;
}

grpc::Status ToGrpc(const Status& st) {
  switch (st.code()) {
    case Status::Code::kFailedPrecondition:
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, st.message());
    case Status::Code::kFenced:  // The master tells a deposal by this code (replication.proto).
      return grpc::Status(grpc::StatusCode::ABORTED, st.message());
    case Status::Code::kInvalidArgument:
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, st.message());
    default:
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, st.message());
  }
}

void ToProto(const storage::Entry& e, Entry* out) {
  out->set_id(e.id);
  out->set_timestamp_ms(e.timestamp_ms);
  out->set_message(e.message);
  out->set_epoch(e.epoch);
  if (!e.idempotency_key.empty()) out->set_idempotency_key(e.idempotency_key);
}

}  // namespace

Result<SentinelFaults> ParseFaults(const std::string& spec) {
  SentinelFaults faults;
  std::stringstream in(spec);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (item.empty()) continue;
    auto eq = item.find('=');
    if (eq == std::string::npos)
      return Status::InvalidArgument("test fault '" + item + "': expected key=value");
    std::string key = item.substr(0, eq), value = item.substr(eq + 1);
    char* end = nullptr;
    double v = std::strtod(value.c_str(), &end);
    if (value.empty() || *end != '\0' || v < 0) {
      return Status::InvalidArgument("test fault '" + key + "': bad value '" + value + "'");
    }
    if (key == "fail_after_append" && v <= 1) {
      faults.fail_after_append = v;
    } else if (key == "drop_stream" && v <= 1) {
      faults.drop_stream = v;
    } else if (key == "delay_ms" && v <= 10000) {
      faults.max_delay_ms = static_cast<uint32_t>(v);
    } else if (key == "seed") {
      faults.seed = static_cast<uint64_t>(v);
    } else {
      return Status::InvalidArgument("test fault '" + key + "': unknown or out of range");
    }
  }
  return faults;
}

void SentinelState::SetMaster(const std::string& master_http) {
  std::lock_guard lock(mu_);
  master_http_ = master_http;
}

void SentinelState::Heard() { last_heard_ns_.store(SteadyNowNs()); }

std::string SentinelState::master_http() const {
  std::lock_guard lock(mu_);
  return master_http_;
}

std::optional<int64_t> SentinelState::last_heard_ms_ago() const {
  int64_t ns = last_heard_ns_.load();
  if (ns == 0) return std::nullopt;
  return (SteadyNowNs() - ns) / 1000000;
}

// What every tag on the service's completion queue points at: one operation of one call, whose
// completion runs a member function of that call.
class Tag {
 public:
  virtual void Run(bool ok) = 0;

 protected:
  ~Tag() = default;
};

template <typename Call>
class MemberTag final : public Tag {
 public:
  MemberTag(Call* call, void (Call::*done)(bool)) : call_(call), done_(done) {}
  void Run(bool ok) override { (call_->*done_)(ok); }

 private:
  Call* const call_;
  void (Call::*const done_)(bool);
};

// A unary call (Position or Fetch): accepted, answered at once on the queue's thread, deleted
// when the answer has been sent. Accepting one puts the next in its place.
template <typename Request, typename Reply>
class UnaryCall {
 public:
  using RequestFn = void (Replication::AsyncService::*)(grpc::ServerContext*, Request*,
                                                        grpc::ServerAsyncResponseWriter<Reply>*,
                                                        grpc::CompletionQueue*,
                                                        grpc::ServerCompletionQueue*, void*);
  using AnswerFn = grpc::Status (SentinelService::*)(const Request&, Reply*);

  UnaryCall(SentinelService* service, grpc::ServerCompletionQueue* cq, RequestFn request,
            AnswerFn answer)
      : service_(service), cq_(cq), request_fn_(request), answer_fn_(answer) {
    service_->CallStarted();
    (service_->*request_fn_)(&context_, &request_, &responder_, cq_, cq_, &accept_op_);
  }

 private:
  void OnAccepted(bool ok) {
    if (!ok) {  // The server is shutting down.
      Delete();
      return;
    }
    new UnaryCall(service_, cq_, request_fn_, answer_fn_);
    grpc::Status status = service_->CheckPeer(context_);
    if (status.ok()) status = (service_->*answer_fn_)(request_, &reply_);
    if (status.ok()) {
      responder_.Finish(reply_, status, &finish_op_);
    } else {
      responder_.FinishWithError(status, &finish_op_);
    }
  }

  void OnFinished(bool /*ok*/) { Delete(); }

  void Delete() {
    SentinelService* service = service_;
    delete this;
    service->CallEnded();
  }

  SentinelService* const service_;
  grpc::ServerCompletionQueue* const cq_;
  const RequestFn request_fn_;
  const AnswerFn answer_fn_;
  grpc::ServerContext context_;
  Request request_;
  Reply reply_;
  grpc::ServerAsyncResponseWriter<Reply> responder_{&context_};
  MemberTag<UnaryCall> accept_op_{this, &UnaryCall::OnAccepted};
  MemberTag<UnaryCall> finish_op_{this, &UnaryCall::OnFinished};
};

// One replication stream on the service's completion queue. Each asynchronous operation has its
// own tag (naming the member function its completion runs); the reading side (accept, read,
// Handle) runs only on the queue's thread, writes are also started by OnDurable on whichever
// thread reports durability (the log's committer thread, or this one inside Apply), under mu_. The
// call deletes itself when its Finish completes (or when it was never accepted), after
// unregistering: at that point no operation of it is outstanding, because a read is only started by
// the completion of the previous one and Finish only once no write is.
class ReplicateCall {
 public:
  ReplicateCall(SentinelService* service, grpc::ServerCompletionQueue* cq)
      : service_(service), cq_(cq) {
    service_->CallStarted();
    service_->RequestReplicate(&context_, &stream_, cq_, cq_, &accept_op_);
  }

  // Sends the Ack the log's current durable id allows, if any. Any thread.
  void SendDurableAck() EXCLUDES(mu_) {
    MutexLock lock(mu_);
    // This stream's own message is being applied, and its round reports from inside Apply: the
    // ack goes once Handle has recorded the message (else one ack would name the message before
    // it, and a second this one). A report of the committer thread's round (a handed-off batch)
    // that comes meanwhile is skipped too: Handle sends the Ack after every Apply, and the
    // durable id it reads covers that round.
    if (applying_) return;
    SendDurableAckLocked();
  }

 private:
  void OnAccepted(bool ok) {
    if (!ok) {  // The server is shutting down: no call came.
      Delete();
      return;
    }
    new ReplicateCall(service_, cq_);  // Waits for the next stream.
    if (grpc::Status refused = service_->CheckPeer(context_); !refused.ok()) {
      FinishOnce(refused);
      return;
    }
    random_ = core::Random(service_->faults_.seed + service_->fault_counter_.fetch_add(1));
    service_->state_->StreamOpened();
    service_->Register(this);
    registered_ = true;
    StartNextRead();
  }

  void OnReadDone(bool ok) {
    if (!ok) {  // The master closed or cancelled the stream.
      FinishOnce(grpc::Status::OK);
      return;
    }
    service_->state_->Heard();
    if (!Handle(*incoming_)) return;
    StartNextRead();
  }

  void OnWriteDone(bool ok) EXCLUDES(mu_) {
    MutexLock lock(mu_);
    writing_ = false;
    if (ok && pending_ && !finish_status_) {
      outgoing_ = std::move(*pending_);
      pending_.reset();
      writing_ = true;
      stream_.Write(outgoing_, &write_op_);
      return;
    }
    // A failed write means the call is broken: the outstanding read fails too and finishes it.
    if (finish_status_) StartFinishLocked();
  }

  void OnFinished(bool /*ok*/) {
    if (registered_) {
      service_->Unregister(this);  // After this, OnDurable cannot reach us.
      service_->state_->StreamClosed();
    }
    Delete();
  }

  void Delete() {
    SentinelService* service = service_;
    delete this;
    service->CallEnded();
  }

  // Each message is parsed into a fresh arena message: a batch's entries and their strings are
  // bump-allocated in incoming_block_ (and blocks the arena adds for larger batches), and all
  // of it is dropped at once when the next read starts, instead of a malloc and a free per
  // entry. Nothing refers to the previous message by then: Handle copies what it keeps.
  void StartNextRead() {
    arena_.Reset();
    incoming_ = google::protobuf::Arena::CreateMessage<MasterMessage>(&arena_);
    stream_.Read(incoming_, &read_op_);
  }

  static google::protobuf::ArenaOptions IncomingArenaOptions(char* block, size_t size) {
    google::protobuf::ArenaOptions options;
    options.initial_block = block;
    options.initial_block_size = size;
    return options;
  }

  // Returns false when the stream has been finished.
  bool Handle(const MasterMessage& msg) {
    const SentinelFaults& faults = service_->faults_;
    if (faults.max_delay_ms > 0) {
      std::this_thread::sleep_for(
          std::chrono::milliseconds(random_.Between(0, faults.max_delay_ms)));
    }
    if (faults.drop_stream > 0 && Roll(faults.drop_stream)) {
      FinishOnce(grpc::Status(grpc::StatusCode::UNAVAILABLE, "test fault: dropped stream"));
      return false;
    }
    if (msg.has_hello()) return HandleHello(msg.hello());
    if (!accepted_) {
      FinishOnce(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "expected Hello first"));
      return false;
    }
    // Fencing: once a newer master has been accepted, this stream's master is deposed. Neither
    // its batches nor even an ack (which it would count toward its writes, for ids that now hold
    // the new master's entries) may reach it. Apply and PositionIfCurrent check that under the
    // log lock.
    const bool batch = msg.has_batch() && msg.batch().entries_size() > 0;
    const core::LogId commit =
        msg.has_batch() ? msg.batch().commit_id() : msg.heartbeat().commit_id();
    if (batch) {
      MutexLock lock(mu_);
      applying_ = true;
    }
    Result<core::LogId> last =
        batch ? service_->Apply(msg.batch(), epoch_) : service_->PositionIfCurrent(epoch_, commit);
    if (batch) {
      MutexLock lock(mu_);
      applying_ = false;
    }
    if (!last.ok()) {
      FinishOnce(ToGrpc(last.status()));
      return false;
    }
    if (batch && faults.fail_after_append > 0 && Roll(faults.fail_after_append)) {
      FinishOnce(grpc::Status(grpc::StatusCode::UNAVAILABLE, "test fault: failed after append"));
      return false;
    }
    MutexLock lock(mu_);
    acks_->Processed(msg.seq(), last.value());
    SendDurableAckLocked();
    return true;
  }

  bool HandleHello(const Hello& hello) {
    if (std::string other = service_->ClaimName(this, hello); !other.empty()) {
      // Refused before the log sees the Hello: its master_last_id may be older than entries the
      // other stream delivered, which Admit would take for a diverged tail and drop.
      // A trailer carries the other name alone, for the master (its /health names it).
      context_.AddTrailingMetadata(kDuplicateOfTrailer, other);
      FinishOnce(grpc::Status(grpc::StatusCode::ALREADY_EXISTS,
                              "this sentinel already replicates from this master as '" + other +
                                  "': '" + hello.sentinel_name() + "' is a second name for it"));
      return false;
    }
    SentinelMessage reply;
    Status st = service_->Admit(hello, reply.mutable_welcome());
    if (!st.ok()) {
      if (IsRefusal(st)) spdlog::warn("refusing master {}: {}", hello.master_http(), st.message());
      if (st.code() == Status::Code::kFailedPrecondition) service_->state_->Refused(st.message());
      FinishOnce(ToGrpc(st));
      return false;
    }
    accepted_ = true;
    epoch_ = hello.epoch();
    MutexLock lock(mu_);
    acks_.emplace(reply.welcome().last_id());
    ReplyLocked(std::move(reply));
    return true;
  }

  void SendDurableAckLocked() REQUIRES(mu_) {
    if (!acks_) return;  // Not welcomed yet.
    // A deposed master's stream (a newer epoch was accepted since its Hello) gets no ack: the
    // durable id may now cover the newer master's entries, which it would count as its own. Its
    // next message ends the stream (Superseded).
    if (epoch_ < service_->log_->epoch()) return;
    std::optional<AckPoint> point = acks_->Durable(service_->log_->durable_id());
    if (!point) return;
    SentinelMessage reply;
    reply.mutable_ack()->set_last_id(point->last_id);
    reply.mutable_ack()->set_seq(point->seq);
    ReplyLocked(std::move(reply));
  }

  bool Roll(double p) { return static_cast<double>(random_.Next() % 1000000) < p * 1000000; }

  void ReplyLocked(SentinelMessage reply) REQUIRES(mu_) {
    if (finish_status_) return;
    if (writing_) {
      pending_ = std::move(reply);  // The latest ack supersedes an unsent older one.
      return;
    }
    writing_ = true;
    outgoing_ = std::move(reply);
    stream_.Write(outgoing_, &write_op_);
  }

  // Called on the reading side, with no read outstanding; the Finish waits for a write in flight.
  void FinishOnce(grpc::Status status) EXCLUDES(mu_) {
    MutexLock lock(mu_);
    if (finish_status_) return;
    finish_status_ = status;
    pending_.reset();
    if (!writing_) StartFinishLocked();
  }

  void StartFinishLocked() REQUIRES(mu_) {
    if (finishing_) return;
    finishing_ = true;
    stream_.Finish(*finish_status_, &finish_op_);
  }

  SentinelService* const service_;
  grpc::ServerCompletionQueue* const cq_;
  grpc::ServerContext context_;
  grpc::ServerAsyncReaderWriter<SentinelMessage, MasterMessage> stream_{&context_};
  MemberTag<ReplicateCall> accept_op_{this, &ReplicateCall::OnAccepted};
  MemberTag<ReplicateCall> read_op_{this, &ReplicateCall::OnReadDone};
  MemberTag<ReplicateCall> write_op_{this, &ReplicateCall::OnWriteDone};
  MemberTag<ReplicateCall> finish_op_{this, &ReplicateCall::OnFinished};

  // Used by the reading side only.
  core::Random random_{1};
  bool registered_ = false;
  bool accepted_ = false;
  // Of the master whose Hello was accepted. Written on the queue's thread; read there and by
  // SendDurableAckLocked on whichever thread reports durability.
  std::atomic<uint64_t> epoch_{0};
  static constexpr size_t kIncomingBlockBytes = 64 << 10;
  std::unique_ptr<char[]> incoming_block_{new char[kIncomingBlockBytes]};
  google::protobuf::Arena arena_{IncomingArenaOptions(incoming_block_.get(), kIncomingBlockBytes)};
  MasterMessage* incoming_ = nullptr;  // On arena_; the read in progress or just completed.

  Mutex mu_;
  std::optional<DurableAckQueue> acks_ GUARDED_BY(mu_);  // From the Welcome on.
  SentinelMessage outgoing_ GUARDED_BY(mu_);             // Being written while writing_.
  std::optional<SentinelMessage> pending_ GUARDED_BY(mu_);
  bool writing_ GUARDED_BY(mu_) = false;
  bool applying_ GUARDED_BY(mu_) = false;  // Handle is inside Apply (SendDurableAck).
  bool finishing_ GUARDED_BY(mu_) = false;
  std::optional<grpc::Status> finish_status_ GUARDED_BY(mu_);
};

SentinelService::~SentinelService() { Stop(); }

void SentinelService::AddTo(grpc::ServerBuilder* builder) {
  builder->RegisterService(this);
  cq_ = builder->AddCompletionQueue();
}

void SentinelService::Start() {
  // Each deletes itself, and puts another in its place when it is accepted.
  new ReplicateCall(this, cq_.get());
  new UnaryCall<PositionRequest, PositionReply>(this, cq_.get(), &SentinelService::RequestPosition,
                                                &SentinelService::AnswerPosition);
  new UnaryCall<FetchRequest, FetchReply>(this, cq_.get(), &SentinelService::RequestFetch,
                                          &SentinelService::AnswerFetch);
  cq_thread_ = std::thread([this] { Run(); });
}

void SentinelService::Run() {
  pthread_setname_np(pthread_self(), "rlog-replicate");
  void* tag = nullptr;
  bool ok = false;
  while (cq_->Next(&tag, &ok)) static_cast<Tag*>(tag)->Run(ok);
}

void SentinelService::CallStarted() {
  std::lock_guard lock(calls_mu_);
  ++live_calls_;
}

void SentinelService::CallEnded() {
  std::lock_guard lock(calls_mu_);
  if (--live_calls_ == 0) calls_ended_.notify_all();
}

void SentinelService::Stop() {
  if (stopped_ || !cq_) return;
  stopped_ = true;
  // The server's Shutdown failed the waiting accept and cancelled every stream, but their last
  // operations may still be in the queue, and an operation started on a shut-down queue is a
  // fatal error in gRPC: the queue is shut down only once every call has deleted itself.
  {
    std::unique_lock lock(calls_mu_);
    calls_ended_.wait(lock, [this] { return live_calls_ == 0; });
  }
  cq_->Shutdown();
  if (cq_thread_.joinable()) cq_thread_.join();
}

Status SentinelService::KeepCutCommitted(core::LogId from, core::LogId to, uint64_t epoch) {
  if (!log_->persistent()) {
    // Nothing this node holds outlives it anyway; refusing would only keep it out.
    spdlog::error(
        "log {}: a master of epoch {} replaces ids {}..{}, which this sentinel holds as "
        "committed (its master recovered without the nodes that held them); in memory, no copy "
        "is kept",
        log_->log_id(), epoch, from, to);
    return Status::Ok();
  }
  std::string lines;
  for (core::LogId next = from; next <= to;) {
    const std::vector<storage::Entry> page = log_->memory().Read(next, to - next + 1, 4 << 20);
    if (page.empty()) break;
    for (const storage::Entry& e : page) {
      nlohmann::json line{
          {"id", e.id}, {"epoch", e.epoch}, {"timestamp", e.timestamp_ms}, {"message", e.message}};
      // The client's key, to tell whether a retry of it reached the new master's log.
      if (!e.idempotency_key.empty()) line["idempotencyKey"] = e.idempotency_key;
      lines += line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      lines += '\n';
    }
    next = page.back().id + 1;
  }
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  const std::string name = "cut-committed-" + log_->log_id() + "-" + std::to_string(from) + "-" +
                           std::to_string(to) + "-" + std::to_string(now_ms) + ".jsonl";
  Result<std::string> saved = log_->SaveAside(name, lines);
  if (!saved.ok()) return saved.status();
  spdlog::error(
      "log {}: a master of epoch {} replaces ids {}..{}, which this sentinel holds as committed "
      "(its master recovered without the nodes that held them); kept a copy in {} and following "
      "the master",
      log_->log_id(), epoch, from, to, saved.value());
  return Status::Ok();
}

Status SentinelService::Admit(const Hello& hello, Welcome* welcome) {
  std::vector<core::EpochStart> history;
  history.reserve(hello.epochs_size());
  for (const EpochStart& step : hello.epochs()) history.push_back({step.epoch(), step.first_id()});

  MutexLock lock(log_mu_);
  const std::vector<core::EpochStart> mine_history = log_->EpochStarts();
  SentinelLogView mine{log_->log_id(), log_->epoch(), log_->last_id(), mine_history};
  const HelloDecision decision =
      DecideHello(mine, {hello.log_id(), hello.epoch(), hello.master_last_id(), history});
  switch (decision.verdict) {
    case HelloVerdict::kRefuseOtherLog:
      return Status::FailedPrecondition("this sentinel holds log " + mine.log_id +
                                        "; refusing replication of log " + hello.log_id());
    case HelloVerdict::kRefuseOlderEpoch:
      return Status::Fenced("master epoch " + std::to_string(hello.epoch()) + " of log " +
                            hello.log_id() + " is older than epoch " + std::to_string(mine.epoch) +
                            " this sentinel has accepted");
    case HelloVerdict::kTruncateThenAccept: {
      // A committed entry is in every later master's log, unless that master recovered without
      // the nodes holding it: after a membership change its recovery did not see
      // (docs/OPERATIONS.md, "Changing the number of sentinels"), or a power loss of nodes
      // running fsync: interval or never. This sentinel may hold the last copy: it keeps one
      // aside for an operator, then follows the master (refusing would keep it out of the
      // cluster for good). Without a copy on disk, it refuses.
      const core::LogId committed_held = std::min(commit_id(), mine.last_id);
      if (commit_log_id_ == hello.log_id() && committed_held > decision.keep) {
        if (Status kept = KeepCutCommitted(decision.keep + 1, committed_held, hello.epoch());
            !kept.ok()) {
          return Status::FailedPrecondition(
              "the master's log (epoch " + std::to_string(hello.epoch()) +
              ") replaces ids from " + std::to_string(decision.keep + 1) + " of log " +
              hello.log_id() + ", which this sentinel holds up to " +
              std::to_string(committed_held) + " as committed, and no copy could be kept (" +
              kept.message() + "): refusing it");
        }
        commit_.store(decision.keep, std::memory_order_release);
        commit_lowered_.store(true);
      }
      spdlog::warn(
          "log {}: my entries after id {} (up to id {}) are not in the master's log (epoch {}, "
          "last id {}); dropping them and fetching the master's",
          hello.log_id(), decision.keep, mine.last_id, hello.epoch(), hello.master_last_id());
      break;
    }
    case HelloVerdict::kAccept:
      break;
  }
  // The entries after `keep` go (with kAccept there are none), and so does an epoch mark at the
  // end that the master's log lacks: its entries after it may be older than the mark
  // (NodeLog::TruncateAfter; nothing is done when nothing goes).
  if (Status st = log_->TruncateAfter(decision.keep, history); !st.ok()) {
    return StorageFailure(st);
  }
  // Durable, and it waits for the committer: only when something changed.
  if (log_->log_id() != hello.log_id() || log_->epoch() != hello.epoch()) {
    if (Status st = log_->SetIdentity(hello.log_id(), hello.epoch()); !st.ok()) {
      return IsRefusal(st) ? st : StorageFailure(st);
    }
  }
  // Where this master's own entries start (its epoch's step; the mark it wrote when it took
  // over). Holding everything before it, this log ranks with its epoch: marked now if it holds
  // exactly that, else once Apply reaches it, before the position is acknowledged either way.
  // (A master of a new, empty log has no such step: 0 says there is nothing to mark, and drops
  // what an earlier master asked for.)
  core::LogId epoch_first_id = 0;
  for (const core::EpochStart& step : history) {
    if (step.epoch == hello.epoch()) epoch_first_id = step.first_id;
  }
  if (Status st = log_->MarkEpochStart(epoch_first_id); !st.ok()) {
    return IsRefusal(st) ? st : StorageFailure(st);
  }
  CommitFollowsLogLocked();
  // A master's log holds every id committed before it (its take-over made sure of it), unless
  // it went on without some (recovery.unclean; a power loss under fsync: interval or never). A
  // commit id past its log names ids that are gone: kept, it would make every later take-over
  // wait for them, and show this master's next ids as committed before they are.
  if (commit_log_id_ == hello.log_id() && commit_id() > hello.master_last_id()) {
    spdlog::warn(
        "log {}: the master's log (epoch {}) ends at id {}, before commit id {} this sentinel "
        "was told: ids {}..{} were lost by a take-over; commit id lowered to {}",
        hello.log_id(), hello.epoch(), hello.master_last_id(), commit_id(),
        hello.master_last_id() + 1, commit_id(), hello.master_last_id());
    commit_.store(hello.master_last_id(), std::memory_order_release);
    commit_lowered_.store(true);
  }
  state_->SetMaster(hello.master_http());
  state_->Welcomed(hello.master_last_id());
  welcome->set_log_id(hello.log_id());
  welcome->set_last_id(log_->durable_id());
  welcome->set_node_id(node_id_);
  welcome->set_epoch(log_->epoch());
  welcome->set_commit_id(commit_id());
  return Status::Ok();
}

Status SentinelService::Superseded(uint64_t stream_epoch) const {
  spdlog::warn("ending the stream of a deposed master (epoch {})", stream_epoch);
  return Status::Fenced("a master of epoch " + std::to_string(log_->epoch()) +
                        " has taken over; this stream's master (epoch " +
                        std::to_string(stream_epoch) + ") is deposed");
}

Result<core::LogId> SentinelService::PositionIfCurrent(uint64_t stream_epoch,
                                                       core::LogId commit_id) {
  core::LogId last = 0;
  {
    MutexLock lock(log_mu_);
    if (log_->epoch() > stream_epoch) return Superseded(stream_epoch);
    last = log_->last_id();
    if (!LearnCommitLocked(commit_id)) return last;
  }
  if (on_applied_) on_applied_(last);  // More is readable.
  return last;
}

bool SentinelService::LearnCommitLocked(core::LogId commit_id) {
  if (commit_id <= this->commit_id()) return false;
  commit_.store(commit_id, std::memory_order_release);
  return true;
}

void SentinelService::CommitFollowsLogLocked() {
  if (commit_log_id_ == log_->log_id()) return;
  commit_log_id_ = log_->log_id();
  commit_.store(0, std::memory_order_release);
}

std::pair<std::string, core::LogId> SentinelService::CommitOfLog() const {
  MutexLock lock(log_mu_);
  return {commit_log_id_, commit_id()};
}

void SentinelService::RestoreCommit(const std::string& log_id, core::LogId commit_id) {
  MutexLock lock(log_mu_);
  if (log_id.empty() || log_id != log_->log_id()) return;
  commit_log_id_ = log_id;
  commit_.store(commit_id, std::memory_order_release);
}

Result<core::LogId> SentinelService::Apply(const Batch& batch, uint64_t stream_epoch) {
  std::vector<storage::Entry> entries;
  entries.reserve(batch.entries_size());
  for (const Entry& e : batch.entries()) {
    entries.push_back(storage::Entry{.id = e.id(),
                                     .timestamp_ms = e.timestamp_ms(),
                                     .message = e.message(),
                                     .epoch = e.epoch(),
                                     .idempotency_key = e.idempotency_key()});
  }
  core::LogId before = 0, after = 0;
  Result<core::LogId> last = core::LogId{0};
  bool commit_moved = false;
  {
    MutexLock lock(log_mu_);
    if (log_->epoch() > stream_epoch) return Superseded(stream_epoch);  // Under the lock.
    before = log_->last_id();
    // A pipelined batch's sync goes to the committer thread: the master is not waiting for it,
    // and the batches it sends meanwhile share the next sync (NodeLog::Apply).
    last = log_->Apply(std::move(entries), /*hand_off=*/batch.pipelined());
    after = log_->last_id();  // A refused batch may still have applied a prefix.
    commit_moved = LearnCommitLocked(batch.commit_id());
  }
  state_->Received(batch.entries_size());
  if ((after != before || commit_moved) && on_applied_) on_applied_(after);
  if (!last.ok()) {
    if (IsRefusal(last.status())) {
      spdlog::warn("refusing a batch of the master: {}", last.status().message());
      return last.status();
    }
    return StorageFailure(last.status());
  }
  return last;
}

Status SentinelService::StorageFailure(const Status& error) {
  if (on_storage_failure_) on_storage_failure_(error);
  return error;
}

void SentinelService::OnDurable() {
  MutexLock lock(streams_mu_);
  for (ReplicateCall* stream : streams_) stream->SendDurableAck();
}

void SentinelService::Register(ReplicateCall* stream) {
  MutexLock lock(streams_mu_);
  streams_.insert(stream);
}

void SentinelService::Unregister(ReplicateCall* stream) {
  MutexLock lock(streams_mu_);
  streams_.erase(stream);
  claims_.erase(stream);
}

std::string SentinelService::ClaimName(ReplicateCall* stream, const Hello& hello) {
  MutexLock lock(streams_mu_);
  for (const auto& [other, claim] : claims_) {
    if (other != stream && claim.log_id == hello.log_id() && claim.epoch == hello.epoch() &&
        claim.name != hello.sentinel_name()) {
      return claim.name;
    }
  }
  claims_[stream] = {hello.log_id(), hello.epoch(), hello.sentinel_name()};
  return std::string();
}

grpc::Status SentinelService::CheckPeer(const grpc::ServerContext& context) const {
  if (allowed_master_.empty()) return grpc::Status::OK;
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  std::vector<std::string> names;
  for (const char* property : {"x509_subject_alternative_name", "x509_common_name"}) {
    for (const grpc::string_ref& value : auth->FindPropertyValues(property)) {
      names.emplace_back(value.data(), value.size());
    }
    // A certificate with SANs is named by them alone (RFC 6125), as host name checks do.
    if (!names.empty()) break;
  }
  for (const std::string& name : names) {
    if (name == allowed_master_) return grpc::Status::OK;
  }
  std::string listed;
  for (const std::string& name : names) listed += (listed.empty() ? "" : ", ") + name;
  return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                      "sentinel " + node_id_ + " takes replication only from a master named '" +
                          allowed_master_ + "' (tls.master_name); the client's certificate names " +
                          (listed.empty() ? "nothing" : listed));
}

grpc::Status SentinelService::AnswerPosition(const PositionRequest& request, PositionReply* reply) {
  MutexLock lock(log_mu_);
  if (request.promise_epoch() > log_->epoch() && !request.log_id().empty() &&
      (log_->log_id().empty() || log_->log_id() == request.log_id())) {
    // Durable, and it waits for the committer: a take-over is rare. Streams of older masters
    // end at their next message (Superseded).
    if (Status st = log_->SetIdentity(request.log_id(), request.promise_epoch()); !st.ok()) {
      return ToGrpc(IsRefusal(st) ? st : StorageFailure(st));
    }
    CommitFollowsLogLocked();
    spdlog::info("log {}: promised epoch {} to a master taking the log over", request.log_id(),
                 request.promise_epoch());
    reply->set_promised(true);
  }
  // Read once: a round on the committer thread may move it meanwhile, and the answer must
  // describe one position.
  const core::LogId durable = log_->durable_id();
  reply->set_log_id(log_->log_id());
  reply->set_epoch(log_->epoch());
  reply->set_last_id(durable);
  if (durable > 0) {
    // The epoch of the last durable entry, or of the epoch mark after it (NodeLog::LastEpoch).
    const uint64_t last_epoch = log_->EpochAt(durable);
    reply->set_last_epoch(last_epoch);
    std::vector<core::EpochStart> history;
    for (const core::EpochStart& start : log_->EpochStarts()) {
      // Steps of entries not durable yet go; those of the marks after `durable` stay.
      if (start.first_id > durable + 1) break;
      if (start.first_id == durable + 1 && start.epoch > last_epoch) break;
      history.push_back(start);
      EpochStart* step = reply->add_epochs();
      step->set_epoch(start.epoch);
      step->set_first_id(start.first_id);
    }
    reply->set_epoch_end(std::min(durable, core::EpochEnd(history, request.epoch(), durable)));
  }
  if (commit_log_id_ == log_->log_id()) reply->set_commit_id(commit_id());
  reply->set_node_id(node_id_);
  reply->set_instance_id(instance_id_);
  return grpc::Status::OK;
}

std::string SentinelService::NewInstanceId() {
  std::random_device random;
  char id[17];
  std::snprintf(id, sizeof(id), "%08x%08x", random(), random());
  return id;
}

grpc::Status SentinelService::AnswerFetch(const FetchRequest& request, FetchReply* reply) {
  MutexLock lock(log_mu_);
  if (request.log_id() != log_->log_id()) {
    return grpc::Status(
        grpc::StatusCode::FAILED_PRECONDITION,
        "this sentinel holds log '" + log_->log_id() + "', not '" + request.log_id() + "'");
  }
  // Only durable entries: a master rebuilding its log from this one must not copy an entry
  // this sentinel could still lose.
  core::LogId durable = log_->durable_id();
  core::LogId from = std::max<core::LogId>(request.from_id(), 1);
  // 0 = no bound given: the cap.
  uint64_t max_bytes =
      request.max_bytes() == 0 ? kMaxFetchBytes : std::min(request.max_bytes(), kMaxFetchBytes);
  if (from <= durable) {
    for (const storage::Entry& e : log_->memory().Read(from, durable - from + 1, max_bytes)) {
      ToProto(e, reply->add_entries());
    }
  }
  reply->set_last_id(durable);
  return grpc::Status::OK;
}

}  // namespace rlog::replication
