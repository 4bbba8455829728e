// The master's side of a replication stream (SentinelStream on a StreamQueue) against a real
// SentinelService over an in-memory NodeLog, on 127.0.0.1: the events arrive in order and
// OnClosed exactly once, however the stream ends, and the queue stops only after its streams.
#include "replication/sentinel_stream.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "replication/sentinel_service.h"

namespace rlog::replication {
namespace {

using namespace std::chrono_literals;

constexpr auto kWait = 10s;

// An in-memory sentinel serving on an ephemeral loopback port.
class Sentinel {
 public:
  Sentinel() {
    auto opened = storage::NodeLog::Open(storage::NodeLogOptions{}, nullptr, nullptr);
    EXPECT_TRUE(opened.ok()) << opened.status().message();
    log_ = std::move(opened).value();
    service_ = std::make_unique<SentinelService>(log_.get(), &state_, "s1", SentinelFaults{});
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    service_->AddTo(&builder);
    server_ = builder.BuildAndStart();
    EXPECT_NE(port_, 0);
    service_->Start();
  }
  ~Sentinel() { Stop(); }

  // Ends every open stream from the sentinel's side.
  void Stop() {
    if (!server_) return;
    server_->Shutdown(std::chrono::system_clock::now());
    service_->Stop();
    server_.reset();
  }

  std::shared_ptr<Replication::Stub> NewStub() const {
    return NewStubTo("127.0.0.1:" + std::to_string(port_));
  }
  static std::shared_ptr<Replication::Stub> NewStubTo(const std::string& address) {
    return Replication::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  }
  storage::NodeLog& log() { return *log_; }

 private:
  SentinelState state_;
  std::unique_ptr<storage::NodeLog> log_;
  std::unique_ptr<SentinelService> service_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

// Records the events of one stream and checks they come on one thread, none after OnClosed.
class Recorder final : public StreamEvents {
 public:
  void OnWelcome(core::SentinelId, uint64_t, const Welcome& welcome) override {
    Record([&] { welcomes_.push_back(welcome); });
  }
  void OnAck(core::SentinelId, uint64_t, const Ack& ack) override {
    Record([&] { acks_.push_back(ack); });
  }
  void OnWriteDone(core::SentinelId, uint64_t) override {
    Record([&] { ++writes_done_; });
  }
  void OnClosed(core::SentinelId, uint64_t, const grpc::Status& status) override {
    Record([&] { closes_.push_back(status); });
  }

  template <typename Pred>
  bool WaitFor(Pred pred, std::chrono::milliseconds timeout = kWait) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return pred(); });
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Welcome> welcomes_;
  std::vector<Ack> acks_;
  int writes_done_ = 0;
  std::vector<grpc::Status> closes_;
  int events_after_close_ = 0;
  std::thread::id thread_;
  bool other_thread_ = false;

 private:
  template <typename F>
  void Record(F f) {
    std::lock_guard lock(mu_);
    if (!closes_.empty()) ++events_after_close_;
    if (thread_ == std::thread::id()) thread_ = std::this_thread::get_id();
    if (thread_ != std::this_thread::get_id()) other_thread_ = true;
    f();
    cv_.notify_all();
  }
};

MasterMessage Hello(const std::string& log_id) {
  MasterMessage m;
  m.mutable_hello()->set_log_id(log_id);
  m.mutable_hello()->set_epoch(1);
  return m;
}

MasterMessage Batch(uint64_t seq, core::LogId id) {
  MasterMessage m;
  m.set_seq(seq);
  Entry* e = m.mutable_batch()->add_entries();
  e->set_id(id);
  e->set_timestamp_ms(1000);
  e->set_message("m" + std::to_string(id));
  e->set_epoch(1);
  return m;
}

// Starts a stream of log "log-a" to `sentinel`; null (the stream cancelled, so that the queue
// can still shut down) unless its Welcome, naming that log, came.
std::shared_ptr<SentinelStream> StartWelcomed(const Sentinel& sentinel, StreamQueue* queue,
                                              Recorder* events) {
  auto stream = std::make_shared<SentinelStream>(0, 1, events);
  stream->Start(sentinel.NewStub(), queue, Hello("log-a"));
  bool welcomed = events->WaitFor(
      [&] { return !events->welcomes_.empty() && events->welcomes_[0].log_id() == "log-a"; });
  if (welcomed) return stream;
  stream->Cancel();
  return nullptr;
}

TEST(SentinelStreamTest, EverySendIsWrittenInOrderAndAckedThenCancelClosesOnce) {
  Sentinel sentinel;
  Recorder events;
  StreamQueue queue;
  std::shared_ptr<SentinelStream> stream = StartWelcomed(sentinel, &queue, &events);
  ASSERT_TRUE(stream);

  // Faster than the writes complete, so most wait in the stream's queue.
  constexpr int kMessages = 500;
  for (int i = 1; i <= kMessages; ++i) stream->Send(Batch(i, i));
  ASSERT_TRUE(events.WaitFor([&] {
    return events.writes_done_ == kMessages && !events.acks_.empty() &&
           events.acks_.back().seq() == kMessages;
  }));
  EXPECT_EQ(events.acks_.back().last_id(), static_cast<core::LogId>(kMessages));
  EXPECT_EQ(sentinel.log().last_id(), static_cast<core::LogId>(kMessages));  // No gap, no loss.

  stream->Cancel();
  ASSERT_TRUE(events.WaitFor([&] { return !events.closes_.empty(); }));
  queue.Shutdown();
  std::lock_guard lock(events.mu_);
  ASSERT_EQ(events.closes_.size(), 1u);
  EXPECT_EQ(events.closes_[0].error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_EQ(events.events_after_close_, 0);
  EXPECT_FALSE(events.other_thread_);
}

TEST(SentinelStreamTest, SentinelThatStopsClosesTheStreamOnce) {
  Sentinel sentinel;
  Recorder events;
  StreamQueue queue;
  std::shared_ptr<SentinelStream> stream = StartWelcomed(sentinel, &queue, &events);
  ASSERT_TRUE(stream);
  sentinel.Stop();
  ASSERT_TRUE(events.WaitFor([&] { return !events.closes_.empty(); }));
  stream->Send(Batch(1, 1));  // After the end: dropped, no event.
  queue.Shutdown();
  std::lock_guard lock(events.mu_);
  EXPECT_EQ(events.closes_.size(), 1u);
  EXPECT_EQ(events.events_after_close_, 0);
}

TEST(SentinelStreamTest, NoServerClosesWithUnavailable) {
  // Port 1 on loopback: nothing listens there (and connecting needs no privilege).
  Recorder events;
  StreamQueue queue;
  auto stream = std::make_shared<SentinelStream>(0, 1, &events);
  stream->Start(Sentinel::NewStubTo("127.0.0.1:1"), &queue, Hello("log-a"));
  stream->Send(Batch(1, 1));
  ASSERT_TRUE(events.WaitFor([&] { return !events.closes_.empty(); }));
  queue.Shutdown();
  std::lock_guard lock(events.mu_);
  EXPECT_EQ(events.closes_.size(), 1u);
  EXPECT_EQ(events.closes_[0].error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_TRUE(events.welcomes_.empty());
  EXPECT_EQ(events.writes_done_, 0);
}

TEST(SentinelStreamTest, ShutdownWaitsForCancelledStreamsAndLaterStartsNeverRun) {
  Sentinel sentinel;
  StreamQueue queue;
  constexpr int kStreams = 8;
  std::vector<std::unique_ptr<Recorder>> events;
  std::vector<std::shared_ptr<SentinelStream>> streams;
  for (int i = 0; i < kStreams; ++i) {
    events.push_back(std::make_unique<Recorder>());
    streams.push_back(std::make_shared<SentinelStream>(i, 1, events.back().get()));
    streams.back()->Start(sentinel.NewStub(), &queue, Hello("log-a"));
  }
  // Sends racing with the cancels, from another thread.
  std::thread sender([&] {
    for (int seq = 1; seq <= 200; ++seq) {
      for (auto& stream : streams) stream->Send(Batch(seq, seq));
    }
  });
  queue.Close();
  Recorder late_events;
  auto late = std::make_shared<SentinelStream>(99, 1, &late_events);
  late->Start(sentinel.NewStub(), &queue, Hello("log-a"));  // After Close: never runs.
  late->Send(Batch(1, 1));
  for (auto& stream : streams) stream->Cancel();
  queue.Shutdown();  // Returns only once every started stream has closed.
  sender.join();
  for (auto& e : events) {
    std::lock_guard lock(e->mu_);
    EXPECT_EQ(e->closes_.size(), 1u);
    EXPECT_EQ(e->events_after_close_, 0);
  }
  std::lock_guard lock(late_events.mu_);
  EXPECT_TRUE(late_events.closes_.empty());
  EXPECT_TRUE(late_events.welcomes_.empty());
}

}  // namespace
}  // namespace rlog::replication
