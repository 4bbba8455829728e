#include "replication/sentinel_stream.h"

namespace rlog::replication {

void SentinelStream::Start(Replication::Stub* stub, MasterMessage hello) {
  {
    std::lock_guard lock(mu_);
    self_ = shared_from_this();
  }
  stub->async()->Replicate(&context_, this);
  {
    std::lock_guard lock(mu_);
    queue_.push_back(std::move(hello));
    front_is_hello_ = true;
    StartNextWriteLocked();
  }
  StartRead(&incoming_);
  // Writes are started from outside gRPC's reactions (Send, on the master's threads). Without a
  // hold, gRPC may finish and free the call the moment its last operation completes, and a Send
  // racing with that would start a write on freed memory (seen under ASan). The hold keeps the
  // call alive until Release(), after which no write is ever started.
  AddHold();
  StartCall();
}

void SentinelStream::Release() {
  bool remove = false;
  {
    std::lock_guard lock(mu_);
    if (!closing_) {
      closing_ = true;
      remove = true;
    }
  }
  if (remove) RemoveHold();
}

void SentinelStream::Send(MasterMessage message) {
  std::lock_guard lock(mu_);
  if (done_ || closing_) return;
  queue_.push_back(std::move(message));
  if (!writing_) StartNextWriteLocked();
}

void SentinelStream::StartNextWriteLocked() {
  if (queue_.empty() || done_ || closing_) {
    writing_ = false;
    return;
  }
  writing_ = true;
  StartWrite(&queue_.front());
}

void SentinelStream::Cancel() { context_.TryCancel(); }

void SentinelStream::OnReadDone(bool ok) {
  if (!ok) {  // The stream is over: write nothing more; OnDone follows.
    Release();
    return;
  }
  if (incoming_.has_welcome()) {
    events_->OnWelcome(sentinel_, generation_, incoming_.welcome());
  } else if (incoming_.has_ack()) {
    events_->OnAck(sentinel_, generation_, incoming_.ack());
  }
  StartRead(&incoming_);
}

void SentinelStream::OnWriteDone(bool ok) {
  bool was_hello = false;
  {
    std::lock_guard lock(mu_);
    was_hello = front_is_hello_;
    front_is_hello_ = false;
    if (!queue_.empty()) queue_.pop_front();
    if (ok) {
      StartNextWriteLocked();
    } else {
      writing_ = false;  // The stream broke; nothing more can be written.
    }
  }
  if (!ok) {
    Release();  // OnDone follows.
    return;
  }
  if (!was_hello) events_->OnWriteDone(sentinel_, generation_);
}

void SentinelStream::OnDone(const grpc::Status& status) {
  {
    std::lock_guard lock(mu_);
    done_ = true;
    queue_.clear();
  }
  events_->OnClosed(sentinel_, generation_, status);
  std::shared_ptr<SentinelStream> last_reference;
  {
    std::lock_guard lock(mu_);
    last_reference = std::move(self_);
  }
  // `last_reference` may destroy *this when it goes out of scope: no member access after it.
}

}  // namespace rlog::replication
