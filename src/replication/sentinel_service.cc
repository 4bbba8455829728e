#include "replication/sentinel_service.h"

#include <spdlog/spdlog.h>

#include <sstream>
#include <thread>

#include "core/backoff.h"

namespace rlog::replication {

namespace {

int64_t SteadyNowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Result<SentinelFaults> ParseFaults(const std::string& spec) {
  SentinelFaults faults;
  std::stringstream in(spec);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (item.empty()) continue;
    auto eq = item.find('=');
    if (eq == std::string::npos) return Status::InvalidArgument("test fault '" + item + "': expected key=value");
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

Status SentinelState::AcceptMaster(const std::string& log_id, const std::string& master_http,
                                   bool log_empty) {
  std::lock_guard lock(mu_);
  if (!log_id_.empty() && log_id_ != log_id && !log_empty) {
    return Status::FailedPrecondition("this sentinel holds log " + log_id_ +
                                      "; refusing replication of log " + log_id);
  }
  log_id_ = log_id;
  master_http_ = master_http;
  return Status::Ok();
}

void SentinelState::Heard() { last_heard_ns_.store(SteadyNowNs()); }

std::string SentinelState::log_id() const {
  std::lock_guard lock(mu_);
  return log_id_;
}

std::string SentinelState::master_http() const {
  std::lock_guard lock(mu_);
  return master_http_;
}

std::optional<int64_t> SentinelState::last_heard_ms_ago() const {
  int64_t ns = last_heard_ns_.load();
  if (ns == 0) return std::nullopt;
  return (SteadyNowNs() - ns) / 1000000;
}

class ReplicateReactor final : public grpc::ServerBidiReactor<MasterMessage, SentinelMessage> {
 public:
  ReplicateReactor(SentinelService* service, uint64_t seed)
      : service_(service), random_(seed) {
    service_->state_->StreamOpened();
    StartRead(&incoming_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      FinishOnce(grpc::Status::OK);
      return;
    }
    service_->state_->Heard();
    if (!Handle(incoming_)) return;
    StartRead(&incoming_);
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard lock(mu_);
    if (!ok) {
      writing_ = false;
      return;
    }
    if (pending_) {
      outgoing_ = std::move(*pending_);
      pending_.reset();
      StartWrite(&outgoing_);
      return;
    }
    writing_ = false;
    if (finish_status_) Finish(*finish_status_);
  }

  void OnDone() override {
    service_->state_->StreamClosed();
    delete this;
  }

 private:
  // Returns false when the stream has been finished.
  bool Handle(const MasterMessage& msg) {
    const SentinelFaults& faults = service_->faults_;
    if (faults.max_delay_ms > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(random_.Between(0, faults.max_delay_ms)));
    }
    if (faults.drop_stream > 0 && Roll(faults.drop_stream)) {
      FinishOnce(grpc::Status(grpc::StatusCode::UNAVAILABLE, "test fault: dropped stream"));
      return false;
    }
    SentinelMessage reply;
    if (msg.has_hello()) {
      const Hello& hello = msg.hello();
      Status st = service_->state_->AcceptMaster(hello.log_id(), hello.master_http(),
                                                 service_->log_->last_id() == 0);
      if (!st.ok()) {
        spdlog::warn("refusing master {}: {}", hello.master_http(), st.message());
        FinishOnce(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, st.message()));
        return false;
      }
      accepted_ = true;
      Welcome* welcome = reply.mutable_welcome();
      welcome->set_log_id(hello.log_id());
      welcome->set_last_id(service_->log_->last_id());
      welcome->set_node_id(service_->node_id_);
    } else if (!accepted_) {
      FinishOnce(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "expected Hello first"));
      return false;
    } else {
      core::LogId last = service_->log_->last_id();
      if (msg.has_batch() && msg.batch().entries_size() > 0) {
        std::vector<storage::Entry> entries;
        entries.reserve(msg.batch().entries_size());
        for (const Entry& e : msg.batch().entries()) {
          entries.push_back(storage::Entry{e.id(), e.timestamp_ms(), e.message()});
        }
        core::LogId before = last;
        last = service_->log_->Apply(std::move(entries));
        if (last != before && service_->on_applied_) service_->on_applied_(last);
        if (faults.fail_after_append > 0 && Roll(faults.fail_after_append)) {
          FinishOnce(grpc::Status(grpc::StatusCode::UNAVAILABLE, "test fault: failed after append"));
          return false;
        }
      }
      Ack* ack = reply.mutable_ack();
      ack->set_last_id(last);
      ack->set_seq(msg.seq());
    }
    Reply(std::move(reply));
    return true;
  }

  bool Roll(double p) { return static_cast<double>(random_.Next() % 1000000) < p * 1000000; }

  void Reply(SentinelMessage reply) {
    std::lock_guard lock(mu_);
    if (finish_status_) return;
    if (writing_) {
      pending_ = std::move(reply);  // The latest ack supersedes an unsent older one.
      return;
    }
    writing_ = true;
    outgoing_ = std::move(reply);
    StartWrite(&outgoing_);
  }

  void FinishOnce(grpc::Status status) {
    std::lock_guard lock(mu_);
    if (finish_status_) return;
    finish_status_ = status;
    pending_.reset();
    if (!writing_) Finish(status);
  }

  SentinelService* const service_;
  core::Random random_;  // Used by the reading side only.
  bool accepted_ = false;
  MasterMessage incoming_;

  std::mutex mu_;
  SentinelMessage outgoing_;                 // Guarded by mu_; being written while writing_.
  std::optional<SentinelMessage> pending_;   // Guarded by mu_.
  bool writing_ = false;                     // Guarded by mu_.
  std::optional<grpc::Status> finish_status_;  // Guarded by mu_.
};

grpc::ServerBidiReactor<MasterMessage, SentinelMessage>* SentinelService::Replicate(
    grpc::CallbackServerContext* /*context*/) {
  return new ReplicateReactor(this, faults_.seed + fault_counter_.fetch_add(1));
}

}  // namespace rlog::replication
