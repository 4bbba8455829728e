// Master side of one replication stream to one sentinel (gRPC's asynchronous API).
//
// One object per connection attempt (the core's "generation"). It sends the Hello, then whatever
// the owner hands to Send(), in order, never more than one write at a time (gRPC's rule):
// messages handed over while a write is in flight wait in a small queue. Everything the sentinel
// says is passed to StreamEvents; OnClosed is the last call and comes exactly once.
//
// Threads: every stream of a process runs on one StreamQueue: one completion queue and the one
// thread that drains it, on which all StreamEvents are delivered (they must not block). A write
// is started by Send on the caller's thread when none is in flight, else by the completion of the
// previous one. The callback API, used before, delivered events on two gRPC threads that woke
// each other (see sentinel_service.h and docs/PERFORMANCE.md, "Replication threads").
// Send/Cancel are thread-safe.
#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>

// common/thread_annotations.h before any gRPC header (see sentinel_service.h).
#include "common/thread_annotations.h"
#include "core/types.h"
#include "rlog/replication.grpc.pb.h"

namespace rlog::replication {
// Trailing metadata of a sentinel's ALREADY_EXISTS (a second name for a sentinel that already
// replicates from this master): the first name. SentinelStream hands it to OnClosed as the
// status's details.
inline constexpr char kDuplicateOfTrailer[] = "rlog-duplicate-of";
}  // namespace rlog::replication

namespace rlog::replication {

class SentinelStream;

class StreamEvents {
 public:
  virtual ~StreamEvents() = default;
  virtual void OnWelcome(core::SentinelId s, uint64_t gen, const Welcome& welcome) = 0;
  virtual void OnAck(core::SentinelId s, uint64_t gen, const Ack& ack) = 0;
  // A message handed to Send() has been written (not sent for the Hello).
  virtual void OnWriteDone(core::SentinelId s, uint64_t gen) = 0;
  virtual void OnClosed(core::SentinelId s, uint64_t gen, const grpc::Status& status) = 0;
};

// The completion queue of the master's streams and its thread. To stop: Close() (a stream
// started after it never runs and reports nothing), cancel the streams, then Shutdown() (or the
// destructor), which waits until every stream started on it has closed and stops the thread.
class StreamQueue {
 public:
  StreamQueue();
  ~StreamQueue();
  StreamQueue(const StreamQueue&) = delete;
  StreamQueue& operator=(const StreamQueue&) = delete;

  void Close();
  void Shutdown();

 private:
  friend class SentinelStream;

  // What a completion-queue tag points at: one operation of one stream.
  struct Op {
    SentinelStream* stream;
    void (SentinelStream::*done)(bool ok);
  };

  grpc::CompletionQueue* cq() { return &cq_; }
  // False once shutting down: the stream must not start.
  bool StreamStarted();
  void StreamEnded();
  void Run();

  grpc::CompletionQueue cq_;
  std::mutex mu_;
  std::condition_variable ended_;
  int streams_ = 0;         // Guarded by mu_.
  bool closing_ = false;    // Guarded by mu_.
  bool shut_down_ = false;  // Guarded by mu_.
  std::thread thread_;
};

class SentinelStream final : public std::enable_shared_from_this<SentinelStream> {
 public:
  // Build with std::make_shared, store where events can find it, then Start.
  SentinelStream(core::SentinelId sentinel, uint64_t generation, StreamEvents* events)
      : sentinel_(sentinel), generation_(generation), events_(events) {}

  // Starts the RPC on `queue` with `hello` as its first message; the stream keeps itself (and
  // the stub) alive until OnClosed. Call once.
  void Start(std::shared_ptr<Replication::Stub> stub, StreamQueue* queue, MasterMessage hello);

  void Send(MasterMessage message);
  // Ends the stream; OnClosed follows (with CANCELLED unless it was ending already).
  void Cancel();

 private:
  void OnStarted(bool ok);
  void OnReadDone(bool ok);
  void OnWriteDone(bool ok);
  void OnFinished(bool ok);

  void StartNextWriteLocked();
  // No write starts after it; Finish is called once the read side is over and no write is in
  // flight (gRPC's rule for Finish).
  void CloseLocked();
  void MaybeFinishLocked();

  // Constant after construction.
  const core::SentinelId sentinel_;
  const uint64_t generation_;
  StreamEvents* const events_;

  // Set by Start.
  std::shared_ptr<Replication::Stub> stub_;
  StreamQueue* queue_ = nullptr;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientAsyncReaderWriter<MasterMessage, SentinelMessage>> call_;
  StreamQueue::Op start_op_{this, &SentinelStream::OnStarted};
  StreamQueue::Op read_op_{this, &SentinelStream::OnReadDone};
  StreamQueue::Op write_op_{this, &SentinelStream::OnWriteDone};
  StreamQueue::Op finish_op_{this, &SentinelStream::OnFinished};
  SentinelMessage incoming_;  // Owned by the one outstanding read.
  grpc::Status status_;       // Filled by Finish.

  std::mutex mu_;
  std::deque<MasterMessage> queue_messages_;  // Guarded by mu_; front() is being written while
                                              // writing_.
  bool started_ = false;                  // Guarded by mu_: the start completed; writes may begin.
  bool writing_ = false;                  // Guarded by mu_.
  bool front_is_hello_ = false;           // Guarded by mu_.
  bool reading_done_ = false;             // Guarded by mu_: no read is outstanding or will be.
  bool closing_ = false;                  // Guarded by mu_: no write starts any more.
  bool finishing_ = false;                // Guarded by mu_: Finish was called.
  std::shared_ptr<SentinelStream> self_;  // Keeps the stream alive until OnFinished.
};

}  // namespace rlog::replication
