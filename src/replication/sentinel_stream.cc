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
  StartCall();
}

void SentinelStream::Send(MasterMessage message) {
  std::lock_guard lock(mu_);
  if (done_) return;
  queue_.push_back(std::move(message));
  if (!writing_) StartNextWriteLocked();
}

void SentinelStream::StartNextWriteLocked() {
  if (queue_.empty() || done_) {
    writing_ = false;
    return;
  }
  writing_ = true;
  StartWrite(&queue_.front());
}

void SentinelStream::Cancel() { context_.TryCancel(); }

void SentinelStream::OnReadDone(bool ok) {
  if (!ok) return;  // The stream is over; OnDone follows.
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
    if (!ok) {
      // The stream broke; OnDone follows. Nothing more can be written.
      writing_ = false;
      return;
    }
    StartNextWriteLocked();
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
