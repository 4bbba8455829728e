// Master side of one replication stream to one sentinel (gRPC callback API).
//
// One object per connection attempt (the core's "generation"). It sends the Hello, then whatever
// the owner hands to Send(), in order, never more than one StartWrite at a time (gRPC's rule):
// messages handed over while a write is in flight wait in a small queue. Everything the sentinel
// says is passed to StreamEvents; OnClosed is the last call and comes exactly once.
// Thread-safe: Send/Cancel from any thread; callbacks run on gRPC threads and must not block.
#pragma once

#include <grpcpp/grpcpp.h>

#include <deque>
#include <memory>
#include <mutex>

#include "core/types.h"
#include "rlog/replication.grpc.pb.h"

namespace rlog::replication {

class StreamEvents {
 public:
  virtual ~StreamEvents() = default;
  virtual void OnWelcome(core::SentinelId s, uint64_t gen, const Welcome& welcome) = 0;
  virtual void OnAck(core::SentinelId s, uint64_t gen, const Ack& ack) = 0;
  // A message handed to Send() has been written (not sent for the Hello).
  virtual void OnWriteDone(core::SentinelId s, uint64_t gen) = 0;
  virtual void OnClosed(core::SentinelId s, uint64_t gen, const grpc::Status& status) = 0;
};

class SentinelStream final : public grpc::ClientBidiReactor<MasterMessage, SentinelMessage>,
                             public std::enable_shared_from_this<SentinelStream> {
 public:
  // Build with std::make_shared, store where events can find it, then Start.
  SentinelStream(core::SentinelId sentinel, uint64_t generation, StreamEvents* events)
      : sentinel_(sentinel), generation_(generation), events_(events) {}

  // Starts the RPC with `hello` as its first message; the stream keeps itself alive until
  // OnDone. Call once.
  void Start(Replication::Stub* stub, MasterMessage hello);

  void Send(MasterMessage message);
  void Cancel();

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;

 private:
  void StartNextWriteLocked();
  // Marks the stream closing (no write starts after it) and removes the hold taken in Start,
  // once; gRPC then finishes the call when its outstanding operations are done.
  void Release();

  // Constant after construction.
  const core::SentinelId sentinel_;
  const uint64_t generation_;
  StreamEvents* const events_;

  grpc::ClientContext context_;
  SentinelMessage incoming_;  // Owned by the one outstanding read.

  std::mutex mu_;
  std::deque<MasterMessage> queue_;  // Guarded by mu_; front() is being written while writing_.
  bool writing_ = false;             // Guarded by mu_.
  bool front_is_hello_ = false;      // Guarded by mu_.
  bool done_ = false;                // Guarded by mu_.
  bool closing_ = false;             // Guarded by mu_. Set once, when the hold is released.
  std::shared_ptr<SentinelStream> self_;  // Keeps the reactor alive until OnDone.
};

}  // namespace rlog::replication
