#include "replication/sentinel_stream.h"

#include <pthread.h>

namespace rlog::replication {

StreamQueue::StreamQueue() : thread_([this] { Run(); }) {}

StreamQueue::~StreamQueue() { Shutdown(); }

void StreamQueue::Run() {
  pthread_setname_np(pthread_self(), "rlog-replicate");
  void* tag = nullptr;
  bool ok = false;
  while (cq_.Next(&tag, &ok)) {
    Op* op = static_cast<Op*>(tag);
    (op->stream->*op->done)(ok);
  }
}

bool StreamQueue::StreamStarted() {
  std::lock_guard lock(mu_);
  if (closing_) return false;
  ++streams_;
  return true;
}

void StreamQueue::StreamEnded() {
  std::lock_guard lock(mu_);
  if (--streams_ == 0) ended_.notify_all();
}

void StreamQueue::Close() {
  std::lock_guard lock(mu_);
  closing_ = true;
}

void StreamQueue::Shutdown() {
  {
    std::unique_lock lock(mu_);
    if (shut_down_) return;
    closing_ = true;
    // An operation started on a shut-down completion queue is fatal in gRPC: wait until every
    // stream has finished (the owner cancels them), and only then shut the queue down.
    ended_.wait(lock, [this] { return streams_ == 0; });
    shut_down_ = true;
  }
  cq_.Shutdown();
  thread_.join();
}

void SentinelStream::Start(std::shared_ptr<Replication::Stub> stub, StreamQueue* queue,
                           MasterMessage hello) {
  if (!queue->StreamStarted()) return;  // The process is stopping.
  stub_ = std::move(stub);
  queue_ = queue;
  std::lock_guard lock(mu_);
  self_ = shared_from_this();
  queue_messages_.push_back(std::move(hello));
  front_is_hello_ = true;
  call_ = stub_->PrepareAsyncReplicate(&context_, queue_->cq());
  call_->StartCall(&start_op_);
}

void SentinelStream::Send(MasterMessage message) {
  std::lock_guard lock(mu_);
  if (closing_ || finishing_) return;
  queue_messages_.push_back(std::move(message));
  if (started_ && !writing_) StartNextWriteLocked();
}

void SentinelStream::Cancel() { context_.TryCancel(); }

void SentinelStream::StartNextWriteLocked() {
  if (queue_messages_.empty() || closing_) {
    writing_ = false;
    return;
  }
  writing_ = true;
  call_->Write(queue_messages_.front(), &write_op_);
}

void SentinelStream::CloseLocked() {
  closing_ = true;
  MaybeFinishLocked();
}

void SentinelStream::MaybeFinishLocked() {
  if (!reading_done_ || writing_ || finishing_) return;
  finishing_ = true;
  call_->Finish(&status_, &finish_op_);
}

void SentinelStream::OnStarted(bool ok) {
  std::lock_guard lock(mu_);
  if (!ok) {  // The call never started: no read to wait for.
    reading_done_ = true;
    CloseLocked();
    return;
  }
  started_ = true;
  StartNextWriteLocked();
  call_->Read(&incoming_, &read_op_);
}

void SentinelStream::OnReadDone(bool ok) {
  if (!ok) {  // The stream is over: write nothing more, then finish.
    std::lock_guard lock(mu_);
    reading_done_ = true;
    CloseLocked();
    return;
  }
  if (incoming_.has_welcome()) {
    events_->OnWelcome(sentinel_, generation_, incoming_.welcome());
  } else if (incoming_.has_ack()) {
    events_->OnAck(sentinel_, generation_, incoming_.ack());
  }
  call_->Read(&incoming_, &read_op_);
}

void SentinelStream::OnWriteDone(bool ok) {
  bool was_hello = false;
  {
    std::lock_guard lock(mu_);
    was_hello = front_is_hello_;
    front_is_hello_ = false;
    if (!queue_messages_.empty()) queue_messages_.pop_front();
    writing_ = false;
    if (ok) {
      StartNextWriteLocked();
      MaybeFinishLocked();  // The read side may have ended while this write was in flight.
    } else {
      // The stream broke; nothing more can be written. Cancelling makes sure the outstanding
      // read fails too, so that Finish can follow.
      context_.TryCancel();
      CloseLocked();
    }
  }
  if (ok && !was_hello) events_->OnWriteDone(sentinel_, generation_);
}

void SentinelStream::OnFinished(bool /*ok*/) {
  {
    std::lock_guard lock(mu_);
    queue_messages_.clear();
  }
  grpc::Status status = status_;
  if (status.error_code() == grpc::StatusCode::ALREADY_EXISTS) {
    const auto& trailers = context_.GetServerTrailingMetadata();
    if (auto name = trailers.find(kDuplicateOfTrailer); name != trailers.end()) {
      status = grpc::Status(status.error_code(), status.error_message(),
                            std::string(name->second.data(), name->second.size()));
    }
  }
  events_->OnClosed(sentinel_, generation_, status);
  StreamQueue* queue = queue_;
  std::shared_ptr<SentinelStream> last_reference;
  {
    std::lock_guard lock(mu_);
    last_reference = std::move(self_);
  }
  last_reference.reset();  // May destroy *this: no member access after it.
  queue->StreamEnded();
}

}  // namespace rlog::replication
