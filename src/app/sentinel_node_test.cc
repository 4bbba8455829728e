// SentinelNode's own lifetime: destroying a started sentinel must end promptly even while a
// master's replication stream is open (main() returns early on a failed HTTP start, tests drop
// nodes without draining), and must not race with the group committer's durable callbacks.
#include "app/sentinel_node.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <iostream>
#include <string>
#include <thread>

#include "rlog/replication.grpc.pb.h"

namespace rlog::app {
namespace {

using replication::MasterMessage;
using replication::SentinelMessage;

Config SentinelConfig(const std::string& data_dir) {
  Config c;
  c.role = Role::kSentinel;
  c.grpc_address = "127.0.0.1";
  c.grpc_port = 0;
  c.data_dir = data_dir;
  if (!data_dir.empty()) c.fsync = FsyncPolicy::kAlways;
  return c;
}

// A master's side of one Replicate stream, on gRPC's synchronous API: says Hello, waits for the
// Welcome, then can stream batches of one entry each.
class FakeMaster {
 public:
  explicit FakeMaster(uint16_t port)
      : stub_(replication::Replication::NewStub(grpc::CreateChannel(
            "127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()))),
        stream_(stub_->Replicate(&context_)) {}

  bool Welcomed() {
    MasterMessage hello;
    hello.mutable_hello()->set_log_id("log-a");
    hello.mutable_hello()->set_epoch(1);
    SentinelMessage reply;
    return stream_->Write(hello) && stream_->Read(&reply) && reply.has_welcome();
  }

  // Writes entries next_id_.. until a write fails (the sentinel went away) or `stop` is set.
  void StreamUntilClosed(const std::atomic<bool>& stop) {
    while (!stop) {
      MasterMessage m;
      m.set_seq(next_id_);
      replication::Entry* e = m.mutable_batch()->add_entries();
      e->set_id(next_id_);
      e->set_epoch(1);
      e->set_timestamp_ms(1000);
      e->set_message("m" + std::to_string(next_id_));
      if (!stream_->Write(m)) return;
      ++next_id_;
    }
  }

  // Reads acks until the stream ends; acked() is the highest id acknowledged so far.
  void ReadAcks() {
    SentinelMessage m;
    while (stream_->Read(&m)) {
      if (m.has_ack()) acked_ = m.ack().last_id();
    }
  }

  uint64_t sent() const { return next_id_ - 1; }
  uint64_t acked() const { return acked_; }
  void Cancel() { context_.TryCancel(); }

 private:
  std::unique_ptr<replication::Replication::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<MasterMessage, SentinelMessage>> stream_;
  std::atomic<uint64_t> next_id_{1};
  std::atomic<uint64_t> acked_{0};
};

// Destroys `node` on another thread; a destructor still running after `limit` fails the test and
// ends the process (a hung gRPC shutdown would otherwise hang the test binary too).
void DestroyWithin(std::unique_ptr<SentinelNode> node, std::chrono::seconds limit) {
  std::promise<void> done;
  std::future<void> finished = done.get_future();
  std::thread([&node, &done] {
    node.reset();
    done.set_value();
  }).detach();
  if (finished.wait_for(limit) != std::future_status::ready) {
    ADD_FAILURE() << "~SentinelNode still running after " << limit.count() << " s";
    std::cerr << "~SentinelNode hangs with a replication stream open" << std::endl;
    std::_Exit(1);
  }
}

TEST(SentinelNodeTest, DestroyedWithAnOpenReplicationStreamEndsPromptly) {
  auto node = std::make_unique<SentinelNode>(SentinelConfig(""), replication::SentinelFaults{});
  Result<uint16_t> port = node->Start();
  ASSERT_TRUE(port.ok()) << port.status().message();
  FakeMaster master(port.value());
  ASSERT_TRUE(master.Welcomed());
  // The stream stays open: the master neither ends nor cancels it. No Drain first.
  DestroyWithin(std::move(node), std::chrono::seconds(10));
  master.Cancel();
}

TEST(SentinelNodeTest, DestroyedWhileDurableAcksFlowEndsCleanly) {
  // fsync: always, so every batch goes through the group committer and its on_durable callback
  // into the service: the destructor must not free the service under that callback.
  std::string dir = testing::TempDir() + "/sentinel_node_test_" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  auto node = std::make_unique<SentinelNode>(SentinelConfig(dir), replication::SentinelFaults{});
  Result<uint16_t> port = node->Start();
  ASSERT_TRUE(port.ok()) << port.status().message();
  FakeMaster master(port.value());
  ASSERT_TRUE(master.Welcomed());
  std::atomic<bool> stop{false};
  std::thread writer([&] { master.StreamUntilClosed(stop); });
  std::thread reader([&] { master.ReadAcks(); });
  for (int i = 0; i < 500 && master.acked() < 200; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_GE(master.acked(), 200u) << "too few durable acks before the node went away";
  DestroyWithin(std::move(node), std::chrono::seconds(10));
  stop = true;
  master.Cancel();
  writer.join();
  reader.join();
  std::filesystem::remove_all(dir);
}

TEST(SentinelNodeTest, LongPollAfterDrainIsAnsweredAtOnce) {
  auto node = std::make_unique<SentinelNode>(SentinelConfig(""), replication::SentinelFaults{});
  ASSERT_TRUE(node->Start().ok());
  node->Drain(std::chrono::milliseconds(100));
  // Nothing will arrive and no ticker expires it: parked, it would never be answered.
  std::promise<http::HttpReply> reply;
  node->Messages(1, 10, 60000, [&](http::HttpReply r) { reply.set_value(std::move(r)); });
  std::future<http::HttpReply> answer = reply.get_future();
  ASSERT_EQ(answer.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  http::HttpReply r = answer.get();
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("\"messages\":[]"), std::string::npos) << r.body;
}

}  // namespace
}  // namespace rlog::app
