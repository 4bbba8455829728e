// The sentinel's gRPC service over a real NodeLog (on a FaultInjectionFileSystem, so a test can
// hold fsyncs) and a real gRPC server on 127.0.0.1, driven by a synchronous client stream.
#include "replication/sentinel_service.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <cerrno>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

#include "replication/sentinel_stream.h"
#include "storage/fault_injection_file_system.h"

namespace rlog::replication {
namespace {

using namespace std::chrono_literals;
using Op = storage::FaultInjectionFileSystem::Op;

// Long enough for an ack that should not come to show up on loopback; short for the suite.
constexpr auto kQuiet = 300ms;
constexpr auto kWait = 10s;

// One sentinel: a NodeLog, the service over it, and a gRPC server. Reopening keeps the files.
class Sentinel {
 public:
  // `rounds_on_caller` as a node's sentinel runs (node_storage.cc): each batch written and
  // synced inside Apply, on the service's thread.
  // `fsync_interval` > 0: fsync: interval.
  Sentinel(storage::FaultInjectionFileSystem* fs, bool persistent, bool rounds_on_caller = false,
           std::chrono::milliseconds fsync_interval = {}) {
    storage::NodeLogOptions options;
    if (persistent) options.data_dir = "/data";
    options.rounds_on_caller = rounds_on_caller;
    if (fsync_interval.count() > 0) {
      options.fsync = storage::FsyncPolicy::kInterval;
      options.fsync_interval = fsync_interval;
    }
    options.fs = fs;
    auto opened = storage::NodeLog::Open(
        std::move(options),
        [this](core::LogId) {
          if (SentinelService* s = sink_.load()) s->OnDurable();
        },
        [this](const Status& error) {
          std::lock_guard lock(mu_);
          errors_.push_back(error.message());
        });
    EXPECT_TRUE(opened.ok()) << opened.status().message();
    log_ = std::move(opened).value();
    service_ = std::make_unique<SentinelService>(log_.get(), &state_, "s1", SentinelFaults{});
    service_->set_on_storage_failure([this](const Status& error) {
      std::lock_guard lock(mu_);
      errors_.push_back(error.message());
    });
    sink_ = service_.get();
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    service_->AddTo(&builder);
    server_ = builder.BuildAndStart();
    EXPECT_NE(port_, 0);
    service_->Start();
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(port_),
                                   grpc::InsecureChannelCredentials());
    stub_ = Replication::NewStub(channel_);
  }

  ~Sentinel() {
    server_->Shutdown(std::chrono::system_clock::now());
    service_->Stop();
    server_.reset();
    sink_ = nullptr;
  }

  storage::NodeLog& log() { return *log_; }
  SentinelService& service() { return *service_; }
  Replication::Stub& stub() { return *stub_; }
  std::vector<std::string> errors() {
    std::lock_guard lock(mu_);
    return errors_;
  }

 private:
  std::atomic<SentinelService*> sink_{nullptr};
  std::mutex mu_;
  std::vector<std::string> errors_;
  SentinelState state_;
  std::unique_ptr<storage::NodeLog> log_;
  std::unique_ptr<SentinelService> service_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<Replication::Stub> stub_;
};

// A master's side of one stream: writes messages, a thread collects the sentinel's answers.
class MasterStream {
 public:
  explicit MasterStream(Replication::Stub& stub) : stream_(stub.Replicate(&context_)) {
    reader_ = std::thread([this] {
      SentinelMessage msg;
      while (stream_->Read(&msg)) {
        std::lock_guard lock(mu_);
        received_.push_back(msg);
        cv_.notify_all();
      }
      std::lock_guard lock(mu_);
      ended_ = true;
      cv_.notify_all();
    });
  }
  ~MasterStream() {
    context_.TryCancel();
    reader_.join();
  }

  void Send(uint64_t seq, MasterMessage msg) {
    msg.set_seq(seq);
    ASSERT_TRUE(stream_->Write(msg));
  }
  void Hello(uint64_t seq, const std::string& log_id, uint64_t epoch, core::LogId master_last,
             std::vector<std::pair<uint64_t, core::LogId>> history = {},
             const std::string& sentinel_name = "") {
    MasterMessage m;
    rlog::replication::Hello* h = m.mutable_hello();
    h->set_log_id(log_id);
    h->set_sentinel_name(sentinel_name);
    h->set_epoch(epoch);
    h->set_master_last_id(master_last);
    for (auto [e, first] : history) {
      EpochStart* step = h->add_epochs();
      step->set_epoch(e);
      step->set_first_id(first);
    }
    Send(seq, m);
  }
  // With `keyed`, each entry carries the idempotency key "k<id>".
  void Batch(uint64_t seq, core::LogId first, core::LogId last, uint64_t epoch,
             core::LogId commit_id = 0, bool keyed = false) {
    Send(seq, MakeBatch(first, last, epoch, commit_id, keyed));
  }
  // A batch sent while an earlier one is unacknowledged (Batch.pipelined).
  void PipelinedBatch(uint64_t seq, core::LogId first, core::LogId last, uint64_t epoch) {
    MasterMessage m = MakeBatch(first, last, epoch, 0, false);
    m.mutable_batch()->set_pipelined(true);
    Send(seq, m);
  }
  static MasterMessage MakeBatch(core::LogId first, core::LogId last, uint64_t epoch,
                                 core::LogId commit_id, bool keyed) {
    MasterMessage m;
    m.mutable_batch()->set_commit_id(commit_id);
    for (core::LogId id = first; id <= last; ++id) {
      Entry* e = m.mutable_batch()->add_entries();
      e->set_id(id);
      e->set_timestamp_ms(1000 + static_cast<int64_t>(id));
      e->set_message("m" + std::to_string(id));
      e->set_epoch(epoch);
      if (keyed) e->set_idempotency_key("k" + std::to_string(id));
    }
    return m;
  }
  void Heartbeat(uint64_t seq, core::LogId commit_id = 0) {
    MasterMessage m;
    m.mutable_heartbeat()->set_commit_id(commit_id);
    Send(seq, m);
  }

  // The next answer, or nullopt if none came within `timeout`.
  std::optional<SentinelMessage> Next(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return !received_.empty() || ended_; });
    if (received_.empty()) return std::nullopt;
    SentinelMessage m = received_.front();
    received_.pop_front();
    return m;
  }
  Welcome NextWelcome() {
    auto m = Next(kWait);
    EXPECT_TRUE(m && m->has_welcome()) << (m ? m->DebugString() : "nothing");
    return m ? m->welcome() : Welcome();
  }
  // Waits for an Ack with at least `last_id` (earlier, lower ones are skipped); returns it.
  Ack AckReaching(core::LogId last_id) {
    auto deadline = std::chrono::steady_clock::now() + kWait;
    while (std::chrono::steady_clock::now() < deadline) {
      auto m = Next(100ms);
      if (m && m->has_ack() && m->ack().last_id() >= last_id) return m->ack();
    }
    ADD_FAILURE() << "no Ack reaching " << last_id;
    return Ack();
  }
  // The status the sentinel ended the stream with.
  grpc::Status Finish() {
    {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, kWait, [&] { return ended_; });
    }
    stream_->WritesDone();
    return stream_->Finish();
  }
  // After Finish: the trailing metadata the sentinel sent.
  const grpc::ClientContext& context() const { return context_; }

 private:
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<MasterMessage, SentinelMessage>> stream_;
  std::thread reader_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<SentinelMessage> received_;
  bool ended_ = false;
};

class SentinelServiceTest : public ::testing::Test {
 protected:
  storage::FaultInjectionFileSystem fs_;
};

// A master's whole stream: its Hello of log-a at `epoch`, entries 1..last of that epoch,
// acknowledged, and the end of the stream.
void ReplicateAndClose(Sentinel& s, uint64_t epoch, core::LogId last) {
  MasterStream m(s.stub());
  m.Hello(1, "log-a", epoch, 0);
  m.NextWelcome();
  m.Batch(2, 1, last, epoch);
  m.AckReaching(last);
}

// Welcomed, a batch of ids 1..3 (seq 2) whose fsync is held, then a heartbeat (seq 3): nothing
// is acknowledged until the fsync is let go, at the end.
// Whether the sentinel's log reaches `last` (in memory, durable or not) within kWait.
bool LogReaches(Sentinel& s, core::LogId last) {
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  while (s.log().last_id() < last && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  return s.log().last_id() >= last;
}

void BatchAndHeartbeatWhileTheFsyncIsHeld(storage::FaultInjectionFileSystem& fs, Sentinel& s,
                                          MasterStream& m) {
  m.Hello(1, "log-a", 1, 0);
  EXPECT_EQ(m.NextWelcome().last_id(), 0u);
  fs.BlockSyncs();
  m.Batch(2, 1, 3, 1);
  ASSERT_TRUE(fs.WaitForBlockedSyncs(1, kWait));
  m.Heartbeat(3);
  EXPECT_FALSE(m.Next(kQuiet).has_value()) << "acked before the fsync";
  EXPECT_EQ(s.log().last_id(), 3u);
  EXPECT_EQ(s.log().durable_id(), 0u);
  fs.UnblockSyncs();
}

TEST_F(SentinelServiceTest, AckWaitsForTheFsyncOfTheEntriesItCovers) {
  Sentinel s(&fs_, /*persistent=*/true);
  MasterStream m(s.stub());
  BatchAndHeartbeatWhileTheFsyncIsHeld(fs_, s, m);
  Ack ack = m.AckReaching(3);
  EXPECT_EQ(ack.last_id(), 3u);
  EXPECT_EQ(ack.seq(), 3u);  // The heartbeat came after the batch: one Ack covers both.
  EXPECT_EQ(s.log().durable_id(), 3u);
}

// As a node runs it: the batch is synced on the service's thread, which reads nothing more
// meanwhile, and the Ack follows the sync.
TEST_F(SentinelServiceTest, WithRoundsOnItsThreadTheAckStillWaitsForTheFsync) {
  Sentinel s(&fs_, /*persistent=*/true, /*rounds_on_caller=*/true);
  MasterStream m(s.stub());
  BatchAndHeartbeatWhileTheFsyncIsHeld(fs_, s, m);
  Ack ack = m.AckReaching(3);
  EXPECT_EQ(ack.seq(), 2u);  // The batch's own Ack, then the heartbeat's.
  ack = m.AckReaching(3);
  EXPECT_EQ(ack.seq(), 3u);
  EXPECT_EQ(s.log().durable_id(), 3u);
}

// The round reports inside Apply, before the stream has recorded the message: the Ack still
// names that message, not a first one the message before (one wasted Ack per batch). Acks may
// be coalesced (a newer one replaces one not yet sent), so each names a message and its id.
TEST_F(SentinelServiceTest, WithRoundsOnItsThreadEachAckNamesTheMessageItFollows) {
  Sentinel s(&fs_, /*persistent=*/true, /*rounds_on_caller=*/true);
  MasterStream m(s.stub());
  m.Hello(1, "log-a", 1, 0);
  m.NextWelcome();
  m.Batch(2, 1, 3, 1);
  m.Batch(3, 4, 6, 1);
  m.Heartbeat(4);
  std::vector<std::pair<core::LogId, uint64_t>> acks;
  while (auto answer = m.Next(kQuiet)) {
    ASSERT_TRUE(answer->has_ack()) << answer->DebugString();
    acks.emplace_back(answer->ack().last_id(), answer->ack().seq());
  }
  const std::map<uint64_t, core::LogId> last_of_message = {{2, 3}, {3, 6}, {4, 6}};
  ASSERT_FALSE(acks.empty());
  for (size_t i = 0; i < acks.size(); ++i) {
    const auto [last, seq] = acks[i];
    ASSERT_TRUE(last_of_message.count(seq))
        << "an Ack of message " << seq << " (id " << last << ")";
    EXPECT_EQ(last, last_of_message.at(seq)) << "message " << seq;
    if (i > 0) {
      EXPECT_GT(seq, acks[i - 1].second);
    }
  }
  EXPECT_EQ(acks.back(), std::make_pair(core::LogId{6}, uint64_t{4}));
  EXPECT_TRUE(s.errors().empty());
}

// fsync: interval with the rounds on the service's thread: a batch that comes while the
// committer thread's timed sync runs waits for that sync, then is written and acked (it was
// left queued, unacked, and the master sent nothing more).
TEST_F(SentinelServiceTest, WithRoundsOnItsThreadABatchDuringAnIntervalSyncIsAcked) {
  Sentinel s(&fs_, /*persistent=*/true, /*rounds_on_caller=*/true, /*fsync_interval=*/50ms);
  MasterStream m(s.stub());
  m.Hello(1, "log-a", 1, 0);
  m.NextWelcome();
  fs_.BlockSyncs();
  m.Batch(2, 1, 3, 1);
  EXPECT_EQ(m.AckReaching(3).seq(), 2u);           // Written: acked (interval).
  ASSERT_TRUE(fs_.WaitForBlockedSyncs(1, kWait));  // The timed sync, held.
  m.Batch(3, 4, 6, 1);
  ASSERT_TRUE(LogReaches(s, 6));  // The batch is in memory, waiting for the timed sync.
  ASSERT_EQ(s.log().last_id(), 6u);
  fs_.UnblockSyncs();
  EXPECT_EQ(m.AckReaching(6).seq(), 3u);
  EXPECT_EQ(s.log().durable_id(), 6u);
}

// Batches the master sends without waiting for the acks of the ones before (a catch-up): with
// the rounds on the service's thread, their syncs still go to the committer thread, so the
// thread reads on during a sync and the batches that came meanwhile share the next one.
TEST_F(SentinelServiceTest, WithRoundsOnItsThreadPipelinedBatchesShareTheCommitterThreadsSyncs) {
  Sentinel s(&fs_, /*persistent=*/true, /*rounds_on_caller=*/true);
  MasterStream m(s.stub());
  m.Hello(1, "log-a", 1, 0);
  m.NextWelcome();
  const uint64_t syncs_before = fs_.sync_count();
  fs_.BlockSyncs();
  m.PipelinedBatch(2, 1, 3, 1);
  ASSERT_TRUE(fs_.WaitForBlockedSyncs(1, kWait));  // 1..3's sync, held.
  m.PipelinedBatch(3, 4, 6, 1);
  m.PipelinedBatch(4, 7, 9, 1);
  EXPECT_TRUE(LogReaches(s, 9)) << "the service's thread waited in the sync";
  EXPECT_EQ(s.log().last_id(), 9u);
  EXPECT_EQ(s.log().durable_id(), 0u);
  EXPECT_FALSE(m.Next(kQuiet).has_value()) << "acked before the fsync";
  fs_.UnblockSyncs();
  const Ack ack = m.AckReaching(9);
  EXPECT_EQ(ack.seq(), 4u);
  EXPECT_EQ(s.log().durable_id(), 9u);
  EXPECT_EQ(fs_.sync_count() - syncs_before, 2u);  // 1..3, then 4..9 together.
  // A batch the master waits for is synced on the service's thread again, before its Ack.
  fs_.BlockSyncs();
  m.Batch(5, 10, 10, 1);
  ASSERT_TRUE(fs_.WaitForBlockedSyncs(2, kWait));  // The count goes on from the first hold.
  m.Heartbeat(6);
  EXPECT_FALSE(m.Next(kQuiet).has_value()) << "acked before the fsync";
  fs_.UnblockSyncs();
  EXPECT_EQ(m.AckReaching(10).seq(), 5u);  // Sent before the heartbeat was read.
  EXPECT_TRUE(s.errors().empty());
}

// The old master (epoch 1) writes ids 1..3, acknowledged; then a new master (epoch 2) takes over
// from id 4 and writes 4..new_last, acknowledged, while the old master's stream stays open.
void OldMasterThenNewMaster(MasterStream& old_master, MasterStream& new_master,
                            core::LogId new_last) {
  old_master.Hello(1, "log-a", 1, 0);
  old_master.NextWelcome();
  old_master.Batch(2, 1, 3, 1);
  EXPECT_EQ(old_master.AckReaching(3).last_id(), 3u);
  new_master.Hello(1, "log-a", 2, 3, {{1, 1}, {2, 4}});
  EXPECT_EQ(new_master.NextWelcome().last_id(), 3u);
  new_master.Batch(2, 4, new_last, 2);
  EXPECT_EQ(new_master.AckReaching(new_last).last_id(), new_last);
}

// The new master's entries become durable while the deposed master's stream is still open: that
// stream must not get an ack naming them (its master would count them for its own writes).
TEST_F(SentinelServiceTest, ADeposedMastersStreamIsNotAckedTheNewMastersEntries) {
  for (bool on_caller : {false, true}) {
    SCOPED_TRACE(on_caller ? "rounds on the caller" : "committer thread");
    storage::FaultInjectionFileSystem fs;
    Sentinel s(&fs, /*persistent=*/true, on_caller);
    MasterStream old_master(s.stub());
    MasterStream new_master(s.stub());
    OldMasterThenNewMaster(old_master, new_master, 6);
    while (auto answer = old_master.Next(kQuiet)) {
      EXPECT_FALSE(answer->has_ack() && answer->ack().last_id() > 3)
          << "the deposed master was acked " << answer->DebugString();
    }
  }
}

TEST_F(SentinelServiceTest, FailedFsyncIsReportedAndNothingIsAcked) {
  Sentinel s(&fs_, /*persistent=*/true);
  MasterStream m(s.stub());
  m.Hello(1, "log-a", 1, 0);
  m.NextWelcome();
  fs_.InjectError(Op::kSync, 1, EIO);
  m.Batch(2, 1, 3, 1);
  auto deadline = std::chrono::steady_clock::now() + kWait;
  while (s.errors().empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);  // Polls the recorded errors, bounded by kWait.
  }
  ASSERT_FALSE(s.errors().empty()) << "the failed fsync was not reported";
  m.Heartbeat(3);
  auto answer = m.Next(kQuiet);
  EXPECT_FALSE(answer && answer->has_ack() && answer->ack().last_id() > 0)
      << "acked entries whose fsync failed: " << answer->DebugString();
}

TEST_F(SentinelServiceTest, InMemoryAcksEveryMessageAtOnce) {
  Sentinel s(&fs_, /*persistent=*/false);
  MasterStream m(s.stub());
  m.Hello(1, "log-a", 1, 0);
  m.NextWelcome();
  m.Batch(2, 1, 4, 1);
  Ack ack = m.AckReaching(4);
  EXPECT_EQ(ack.seq(), 2u);
  m.Heartbeat(3);
  ack = m.AckReaching(4);
  EXPECT_EQ(ack.seq(), 3u);
}

TEST_F(SentinelServiceTest, EntriesKeepTheirEpochs) {
  Sentinel s(&fs_, /*persistent=*/true);
  MasterStream m(s.stub());
  m.Hello(1, "log-a", 3, 0);
  m.NextWelcome();
  m.Batch(2, 1, 2, 3);
  m.AckReaching(2);
  auto entries = s.log().memory().Read(1, 10, 1 << 20);
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[1].epoch, 3u);
  EXPECT_EQ(entries[1].message, "m2");
  EXPECT_EQ(s.log().memory().LastEpoch(), 3u);
}

TEST_F(SentinelServiceTest, ReopenedSentinelWelcomesWithItsDurablePosition) {
  {
    Sentinel s(&fs_, /*persistent=*/true);
    MasterStream m(s.stub());
    m.Hello(1, "log-a", 2, 0);
    m.NextWelcome();
    m.Batch(2, 1, 5, 2);
    m.AckReaching(5);
  }
  Sentinel s(&fs_, /*persistent=*/true);
  EXPECT_EQ(s.log().durable_id(), 5u);
  MasterStream m(s.stub());
  m.Hello(1, "log-a", 2, 9);
  Welcome w = m.NextWelcome();
  EXPECT_EQ(w.last_id(), 5u);
  EXPECT_EQ(w.log_id(), "log-a");
  EXPECT_EQ(w.epoch(), 2u);
  EXPECT_EQ(w.node_id(), "s1");
}

// The keys entries arrive with are kept, durably, and handed to a master that fetches the log
// (a master taking over learns from them which keys its log holds).
TEST_F(SentinelServiceTest, IdempotencyKeysAreKeptAndFetchedWithTheirEntries) {
  {
    Sentinel s(&fs_, /*persistent=*/true);
    MasterStream m(s.stub());
    m.Hello(1, "log-a", 2, 0);
    m.NextWelcome();
    m.Batch(2, 1, 2, 2);
    m.Batch(3, 3, 4, 2, 0, /*keyed=*/true);
    m.AckReaching(4);
  }
  fs_.DropUnsyncedData();
  Sentinel s(&fs_, /*persistent=*/true);
  grpc::ClientContext fc;
  FetchRequest req;
  req.set_log_id("log-a");
  req.set_from_id(1);
  req.set_max_bytes(1 << 20);
  FetchReply fetched;
  ASSERT_TRUE(s.stub().Fetch(&fc, req, &fetched).ok());
  ASSERT_EQ(fetched.entries_size(), 4);
  EXPECT_EQ(fetched.entries(1).idempotency_key(), "");
  EXPECT_EQ(fetched.entries(2).idempotency_key(), "k3");
  EXPECT_EQ(fetched.entries(3).idempotency_key(), "k4");
  EXPECT_EQ(fetched.entries(3).message(), "m4");
}

// One master listing this sentinel under two names opens two streams at once. The second
// Hello, built before entries the first stream delivered, would make the log drop them as a
// diverged tail: it is refused before the log sees it, naming the first name.
TEST_F(SentinelServiceTest, ASecondNameFromTheSameMasterIsRefusedBeforeTheLogSeesItsHello) {
  Sentinel s(&fs_, /*persistent=*/true);
  MasterStream first(s.stub());
  first.Hello(1, "log-a", 1, 0, {}, "127.0.0.1:9091");
  first.NextWelcome();
  first.Batch(2, 1, 3, 1);
  first.AckReaching(3);
  MasterStream second(s.stub());
  second.Hello(1, "log-a", 1, 0, {}, "localhost:9091");
  grpc::Status st = second.Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::ALREADY_EXISTS) << st.error_message();
  const auto& trailers = second.context().GetServerTrailingMetadata();
  const auto first_name = trailers.find(kDuplicateOfTrailer);
  ASSERT_NE(first_name, trailers.end()) << "the master reads the first name there";
  EXPECT_EQ(std::string(first_name->second.data(), first_name->second.size()), "127.0.0.1:9091");
  EXPECT_NE(st.error_message().find("as '127.0.0.1:9091'"), std::string::npos)
      << st.error_message();
  EXPECT_EQ(s.log().last_id(), 3u) << "entries the first stream delivered were dropped";
  // The same name again (a reconnect while the old stream lingers) is welcome.
  MasterStream again(s.stub());
  again.Hello(1, "log-a", 1, 3, {}, "127.0.0.1:9091");
  EXPECT_EQ(again.NextWelcome().last_id(), 3u);
}

TEST_F(SentinelServiceTest, MasterWithAnOlderEpochIsRefused) {
  Sentinel s(&fs_, /*persistent=*/true);
  {
    MasterStream m(s.stub());
    m.Hello(1, "log-a", 2, 0);
    m.NextWelcome();
  }
  MasterStream old(s.stub());
  old.Hello(1, "log-a", 1, 0);
  grpc::Status st = old.Finish();
  // ABORTED, not FAILED_PRECONDITION: the code that tells the master it is deposed.
  EXPECT_EQ(st.error_code(), grpc::StatusCode::ABORTED) << st.error_message();
  EXPECT_NE(st.error_message().find("older"), std::string::npos) << st.error_message();
  EXPECT_EQ(s.log().epoch(), 2u);
}

TEST_F(SentinelServiceTest, StreamOfADeposedMasterIsEndedAndNothingOfItApplied) {
  // The old master (epoch 1) keeps its stream while a new one (epoch 2) takes over: from then on
  // the old stream's batches must not land, and it must get no ack it could count for them.
  Sentinel s(&fs_, /*persistent=*/false);
  MasterStream old_master(s.stub());
  MasterStream new_master(s.stub());
  OldMasterThenNewMaster(old_master, new_master, 4);

  old_master.Batch(3, 4, 5, 1);  // Its own id 4, and 5.
  grpc::Status st = old_master.Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::ABORTED) << st.error_message();
  EXPECT_NE(st.error_message().find("deposed"), std::string::npos) << st.error_message();
  EXPECT_EQ(s.log().last_id(), 4u) << "id 5 of the deposed master was applied";
  auto entries = s.log().memory().Read(4, 10, UINT64_MAX);
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].epoch, 2u);  // The new master's id 4.

  // A heartbeat alone is refused too (its ack would report the new master's ids).
  MasterStream stale(s.stub());
  stale.Hello(1, "log-a", 2, 4, {{1, 1}, {2, 4}});
  stale.NextWelcome();
  MasterStream newest(s.stub());
  newest.Hello(1, "log-a", 3, 4, {{1, 1}, {2, 4}});
  newest.NextWelcome();
  stale.Heartbeat(2);
  EXPECT_EQ(stale.Finish().error_code(), grpc::StatusCode::ABORTED);
}

TEST_F(SentinelServiceTest, PromiseOfANewerEpochFencesTheOlderMastersStream) {
  // A master taking the log over asks for a promise of epoch 2 before it copies the log: the
  // old master's stream, still open, must land nothing more and end as deposed.
  Sentinel s(&fs_, /*persistent=*/true);
  MasterStream old_master(s.stub());
  old_master.Hello(1, "log-a", 1, 0);
  old_master.NextWelcome();
  old_master.Batch(2, 1, 3, 1);
  EXPECT_EQ(old_master.AckReaching(3).last_id(), 3u);

  auto position = [&](const std::string& log_id, uint64_t promise) {
    grpc::ClientContext pc;
    PositionRequest request;
    request.set_epoch(0);
    request.set_log_id(log_id);
    request.set_promise_epoch(promise);
    PositionReply pos;
    EXPECT_TRUE(s.stub().Position(&pc, request, &pos).ok());
    return pos;
  };
  EXPECT_FALSE(position("log-b", 5).promised());  // Another log: nothing promised.
  PositionReply pos = position("log-a", 2);
  EXPECT_TRUE(pos.promised());
  EXPECT_EQ(pos.epoch(), 2u);
  EXPECT_EQ(pos.last_id(), 3u);
  EXPECT_EQ(s.log().epoch(), 2u);
  EXPECT_FALSE(position("log-a", 2).promised()) << "one epoch promised twice";

  old_master.Batch(3, 4, 5, 1);
  grpc::Status st = old_master.Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::ABORTED) << st.error_message();
  EXPECT_EQ(s.log().last_id(), 3u) << "the fenced master's batch was applied";
  MasterStream again(s.stub());
  again.Hello(1, "log-a", 1, 3);
  EXPECT_EQ(again.Finish().error_code(), grpc::StatusCode::ABORTED);
}

TEST_F(SentinelServiceTest, MasterOfAnotherLogIsRefusedWhileEntriesAreHeld) {
  Sentinel s(&fs_, /*persistent=*/true);
  ReplicateAndClose(s, 1, 1);
  MasterStream other(s.stub());
  other.Hello(1, "log-b", 5, 0);
  grpc::Status st = other.Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << st.error_message();
  EXPECT_EQ(s.log().log_id(), "log-a");
}

// The entries a sentinel keeps after a cut: 1..5 as the first master wrote them, 6..8 of the
// second.
void ExpectFirstFiveKeptAndThreeNew(const storage::NodeLog& log,
                                    const std::vector<storage::Entry>& before) {
  const std::vector<storage::Entry> after = log.memory().Read(1, 10, UINT64_MAX);
  ASSERT_EQ(after.size(), 8u);
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(after[i].message, before[i].message);
    EXPECT_EQ(after[i].timestamp_ms, before[i].timestamp_ms);
    EXPECT_EQ(after[i].epoch, 1u);
  }
  for (size_t i = 5; i < 8; ++i) EXPECT_EQ(after[i].epoch, 2u);
}

TEST_F(SentinelServiceTest, TailOutsideTheMastersHistoryIsCutAndTheRestKept) {
  std::vector<storage::Entry> before;
  {
    Sentinel s(&fs_, /*persistent=*/true);
    ReplicateAndClose(s, 1, 7);
    before = s.log().memory().Read(1, 10, UINT64_MAX);
    // A new master kept 1..5 of epoch 1 and appended 6.. in epoch 2: our 6 and 7 were never in
    // it; 1..5 are, and stay (Kafka's truncation to the epoch's end).
    MasterStream m(s.stub());
    m.Hello(1, "log-a", 2, 8, {{1, 1}, {2, 6}});
    Welcome w = m.NextWelcome();
    EXPECT_EQ(w.last_id(), 5u);
    EXPECT_EQ(w.epoch(), 2u);
    EXPECT_EQ(s.log().last_id(), 5u);
    m.Batch(2, 6, 8, 2);
    m.AckReaching(8);
    ExpectFirstFiveKeptAndThreeNew(s.log(), before);
  }
  fs_.DropUnsyncedData();  // Everything acknowledged is durable, the cut included.
  Sentinel restarted(&fs_, /*persistent=*/true);
  ExpectFirstFiveKeptAndThreeNew(restarted.log(), before);
  EXPECT_EQ(restarted.log().epoch(), 2u);
}

TEST_F(SentinelServiceTest, PrefixOfTheMastersHistoryIsKept) {
  Sentinel s(&fs_, /*persistent=*/true);
  ReplicateAndClose(s, 1, 5);
  MasterStream m(s.stub());
  m.Hello(1, "log-a", 2, 8, {{1, 1}, {2, 6}});
  EXPECT_EQ(m.NextWelcome().last_id(), 5u);
}

TEST_F(SentinelServiceTest, PositionAndFetchServeOnlyDurableEntries) {
  Sentinel s(&fs_, /*persistent=*/true);
  MasterStream m(s.stub());
  m.Hello(1, "log-a", 4, 0);
  m.NextWelcome();
  m.Batch(2, 1, 3, 3);  // Copied entries of an older epoch.
  m.AckReaching(3);
  fs_.BlockSyncs();
  m.Batch(3, 4, 6, 4);
  ASSERT_TRUE(fs_.WaitForBlockedSyncs(1, kWait));

  grpc::ClientContext pc;
  PositionReply pos;
  ASSERT_TRUE(s.stub().Position(&pc, PositionRequest(), &pos).ok());
  EXPECT_EQ(pos.log_id(), "log-a");
  EXPECT_EQ(pos.epoch(), 4u);
  EXPECT_EQ(pos.last_id(), 3u);
  EXPECT_EQ(pos.last_epoch(), 3u);
  EXPECT_EQ(pos.node_id(), "s1");
  ASSERT_EQ(pos.epochs_size(), 1) << "epoch 4 starts at id 4, which is not durable";
  EXPECT_EQ(pos.epochs(0).epoch(), 3u);
  EXPECT_EQ(pos.epochs(0).first_id(), 1u);

  grpc::ClientContext fc;
  FetchRequest req;
  req.set_log_id("log-a");
  req.set_from_id(2);
  req.set_max_bytes(1 << 20);
  FetchReply fetched;
  ASSERT_TRUE(s.stub().Fetch(&fc, req, &fetched).ok());
  ASSERT_EQ(fetched.entries_size(), 2);  // 2 and 3; 4..6 are not durable.
  EXPECT_EQ(fetched.entries(0).id(), 2u);
  EXPECT_EQ(fetched.entries(1).message(), "m3");
  EXPECT_EQ(fetched.entries(1).epoch(), 3u);
  EXPECT_EQ(fetched.last_id(), 3u);
  fs_.UnblockSyncs();
  m.AckReaching(6);

  grpc::ClientContext one;
  req.set_max_bytes(1);  // Smaller than any entry: still one.
  FetchReply small;
  ASSERT_TRUE(s.stub().Fetch(&one, req, &small).ok());
  EXPECT_EQ(small.entries_size(), 1);
  EXPECT_EQ(small.last_id(), 6u);

  grpc::ClientContext past;
  req.set_from_id(7);
  FetchReply none;
  ASSERT_TRUE(s.stub().Fetch(&past, req, &none).ok());
  EXPECT_EQ(none.entries_size(), 0);

  grpc::ClientContext wrong;
  req.set_log_id("log-b");
  FetchReply refused;
  EXPECT_EQ(s.stub().Fetch(&wrong, req, &refused).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(SentinelServiceTest, EmptySentinelReportsAnEmptyPosition) {
  Sentinel s(&fs_, /*persistent=*/false);
  grpc::ClientContext pc;
  PositionReply pos;
  ASSERT_TRUE(s.stub().Position(&pc, PositionRequest(), &pos).ok());
  EXPECT_EQ(pos.log_id(), "");
  EXPECT_EQ(pos.last_id(), 0u);
  EXPECT_EQ(pos.last_epoch(), 0u);
  EXPECT_EQ(pos.epoch_end(), 0u);
}

TEST_F(SentinelServiceTest, PositionSaysWhereAnEpochEndsInThisLog) {
  // Epoch 1 wrote ids 1-3, epoch 3 (a master that took over) ids 4-6.
  Sentinel s(&fs_, /*persistent=*/false);
  MasterStream m(s.stub());
  m.Hello(1, "log-a", 1, 0);
  m.NextWelcome();
  m.Batch(2, 1, 3, 1);
  m.AckReaching(3);
  MasterStream newer(s.stub());
  newer.Hello(1, "log-a", 3, 3, {{1, 1}, {3, 4}});
  newer.NextWelcome();
  newer.Batch(2, 4, 6, 3);
  newer.AckReaching(6);
  auto epoch_end = [&](uint64_t epoch) {
    grpc::ClientContext pc;
    PositionRequest request;
    request.set_epoch(epoch);
    PositionReply pos;
    EXPECT_TRUE(s.stub().Position(&pc, request, &pos).ok());
    EXPECT_EQ(pos.last_id(), 6u);
    EXPECT_EQ(pos.last_epoch(), 3u);
    return pos.epoch_end();
  };
  EXPECT_EQ(epoch_end(0), 0u);  // A master with no entry shares none.
  EXPECT_EQ(epoch_end(1), 3u);  // A master whose last entry is of epoch 1 shares ids 1-3.
  EXPECT_EQ(epoch_end(2), 3u);  // Epoch 2 wrote nothing here.
  EXPECT_EQ(epoch_end(3), 6u);
  EXPECT_EQ(epoch_end(7), 6u);
}

PositionReply PositionOf(Sentinel& s) {
  grpc::ClientContext context;
  PositionReply pos;
  EXPECT_TRUE(s.stub().Position(&context, PositionRequest(), &pos).ok());
  return pos;
}

std::vector<std::pair<uint64_t, core::LogId>> EpochsOf(const PositionReply& pos) {
  std::vector<std::pair<uint64_t, core::LogId>> out;
  for (const EpochStart& step : pos.epochs()) out.emplace_back(step.epoch(), step.first_id());
  return out;
}

// A master that took over at id 6 (epoch 2; its own entries start at 7): a sentinel marks its
// log once it holds 1..6, before it acknowledges 6, so its position ranks with epoch 2; the mark
// survives a restart; a later master whose log lacks it makes it drop the mark and marks its own.
TEST_F(SentinelServiceTest, EpochMarkRanksThePositionOnceTheLogReachesTheMastersEpoch) {
  using Epochs = std::vector<std::pair<uint64_t, core::LogId>>;
  {
    Sentinel s(&fs_, /*persistent=*/true);
    MasterStream m(s.stub());
    m.Hello(1, "log-a", 2, 6, {{1, 1}, {2, 7}});
    m.NextWelcome();
    m.Batch(2, 1, 4, 1);
    m.AckReaching(4);
    EXPECT_EQ(PositionOf(s).last_epoch(), 1u);
    m.Batch(3, 5, 6, 1);
    m.AckReaching(6);
    const PositionReply pos = PositionOf(s);
    EXPECT_EQ(pos.last_id(), 6u);
    EXPECT_EQ(pos.last_epoch(), 2u);
    EXPECT_EQ(EpochsOf(pos), (Epochs{{1, 1}, {2, 7}}));
  }
  Sentinel s(&fs_, /*persistent=*/true);
  EXPECT_EQ(PositionOf(s).last_epoch(), 2u);
  {
    // Epoch 3 took over a log that went on from 6 with entries of epoch 1 (written by the epoch-1
    // master and never replaced): the mark of epoch 2 is not in it.
    MasterStream m(s.stub());
    m.Hello(1, "log-a", 3, 8, {{1, 1}, {3, 9}});
    EXPECT_EQ(m.NextWelcome().last_id(), 6u);
    EXPECT_EQ(PositionOf(s).last_epoch(), 1u);
    m.Batch(2, 7, 8, 1);  // Older than the dropped mark: applied.
    m.AckReaching(8);
    const PositionReply pos = PositionOf(s);
    EXPECT_EQ(pos.last_epoch(), 3u);
    EXPECT_EQ(EpochsOf(pos), (Epochs{{1, 1}, {3, 9}}));
  }
  // A sentinel that already holds everything before the epoch's start marks it at the Hello.
  MasterStream m(s.stub());
  m.Hello(1, "log-a", 4, 8, {{1, 1}, {3, 9}, {4, 9}});
  EXPECT_EQ(m.NextWelcome().last_id(), 8u);
  EXPECT_EQ(PositionOf(s).last_epoch(), 4u);
  EXPECT_TRUE(s.errors().empty());
}

// The commit id only grows, is reported in the Welcome, and is dropped with another log; a Hello
// that would cut committed entries is refused (which only a broken membership change asks for).
bool CommitReaches(SentinelService& service, core::LogId want) {
  auto deadline = std::chrono::steady_clock::now() + kWait;
  while (std::chrono::steady_clock::now() < deadline) {
    if (service.commit_id() == want) return true;
    std::this_thread::sleep_for(1ms);
  }
  return false;
}

TEST_F(SentinelServiceTest, CommitIdOnlyGrowsIsWelcomedAndFollowsTheLog) {
  Sentinel s(&fs_, /*persistent=*/false);
  {
    MasterStream m(s.stub());
    m.Hello(1, "log-a", 1, 0);
    EXPECT_EQ(m.NextWelcome().commit_id(), 0u);
    m.Batch(2, 1, 5, 1, /*commit_id=*/3);
    m.AckReaching(5);
    EXPECT_EQ(s.service().commit_id(), 3u);
    m.Heartbeat(3, 5);
    EXPECT_TRUE(CommitReaches(s.service(), 5));
    m.Heartbeat(4, 2);  // Never back.
    m.Batch(5, 6, 6, 1, 1);
    m.AckReaching(6);
    EXPECT_EQ(s.service().commit_id(), 5u);
  }
  {
    MasterStream m(s.stub());  // A master that took over: it learns what was committed.
    m.Hello(1, "log-a", 2, 6, {{1, 1}});
    EXPECT_EQ(m.NextWelcome().commit_id(), 5u);
  }
  {
    // A Hello that keeps only 1..4 of the entries: 5 was committed (a master that took over
    // without the nodes holding it). In memory no copy can be kept; the sentinel follows and its
    // commit id drops to what is left.
    MasterStream m(s.stub());
    m.Hello(1, "log-a", 3, 4, {{1, 1}, {3, 5}});
    Welcome w = m.NextWelcome();
    EXPECT_EQ(w.last_id(), 4u);
    EXPECT_EQ(w.commit_id(), 4u);
  }

  Sentinel empty(&fs_, /*persistent=*/false);
  {
    MasterStream m(empty.stub());
    m.Hello(1, "log-a", 1, 0);
    m.NextWelcome();
    m.Heartbeat(2, 7);
    EXPECT_TRUE(CommitReaches(empty.service(), 7));
  }
  MasterStream other(empty.stub());  // Holding no entries, it adopts another log: nothing known.
  other.Hello(1, "log-b", 1, 0);
  EXPECT_EQ(other.NextWelcome().commit_id(), 0u);
  EXPECT_EQ(empty.service().commit_id(), 0u);
}

// A master that went on without ids this sentinel was told were committed (an unclean take-over)
// has a log that ends before the commit id; this sentinel holds a prefix of it, so nothing is
// cut, but the commit id drops to the master's end. Kept, it would make every later take-over
// wait for ids nobody holds, and show the master's next ids before they are committed.
TEST_F(SentinelServiceTest, ACommitIdPastTheNewMastersLogDropsToItsEnd) {
  Sentinel s(&fs_, /*persistent=*/true);
  {
    MasterStream m(s.stub());
    m.Hello(1, "log-a", 1, 0);
    m.NextWelcome();
    m.Batch(2, 1, 2, 1, /*commit_id=*/5);  // Lagging: 3..5 committed elsewhere, not here yet.
    m.AckReaching(2);
    EXPECT_EQ(s.service().commit_id(), 5u);
  }
  {
    // The same master again: lagging behind the commit id is no reason to lower it.
    MasterStream m(s.stub());
    m.Hello(1, "log-a", 1, 5);
    EXPECT_EQ(m.NextWelcome().commit_id(), 5u);
  }
  MasterStream m(s.stub());
  m.Hello(1, "log-a", 2, 2, {{1, 1}, {2, 3}});  // Took 1..2 over, without 3..5.
  Welcome w = m.NextWelcome();
  EXPECT_EQ(w.last_id(), 2u);
  EXPECT_EQ(w.commit_id(), 2u);
  EXPECT_EQ(s.service().commit_id(), 2u);
  EXPECT_TRUE(s.service().TakeCommitLowered()) << "saved at the next tick";
  m.Batch(2, 3, 3, 2);  // The new master's id 3, not committed yet: not shown.
  m.AckReaching(3);
  EXPECT_EQ(s.service().commit_id(), 2u);
}

// With a data directory, committed entries a Hello cuts are first kept aside, durably, in a file
// an operator can read (the sentinel may hold their last copy); then it follows the master.
// Without a copy (the write fails), it refuses the Hello and keeps them.
TEST_F(SentinelServiceTest, CommittedEntriesACutWouldDropAreKeptAsideFirst) {
  Sentinel s(&fs_, /*persistent=*/true);
  {
    MasterStream m(s.stub());
    m.Hello(1, "log-a", 1, 0);
    m.NextWelcome();
    m.Batch(2, 1, 6, 1, /*commit_id=*/5, /*keyed=*/true);
    m.AckReaching(6);
    EXPECT_TRUE(CommitReaches(s.service(), 5));
  }
  {
    // The copy cannot be written: refused, nothing cut.
    fs_.InjectError(storage::FaultInjectionFileSystem::Op::kCreate, 1, ENOSPC);
    MasterStream m(s.stub());
    m.Hello(1, "log-a", 3, 3, {{1, 1}, {3, 4}});
    grpc::Status st = m.Finish();
    EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << st.error_message();
    EXPECT_NE(st.error_message().find("no copy could be kept"), std::string::npos);
    EXPECT_EQ(s.log().last_id(), 6u);
    EXPECT_EQ(s.service().commit_id(), 5u);
  }
  fs_.ClearInjectedErrors();
  EXPECT_FALSE(s.service().TakeCommitLowered()) << "the refused Hello lowered nothing";
  MasterStream m(s.stub());
  m.Hello(1, "log-a", 3, 3, {{1, 1}, {3, 4}});
  Welcome w = m.NextWelcome();
  EXPECT_EQ(w.last_id(), 3u);
  EXPECT_EQ(w.commit_id(), 3u);
  // The owner is told once to save the lowered commit id now (SentinelNode's ticker).
  EXPECT_TRUE(s.service().TakeCommitLowered());
  EXPECT_FALSE(s.service().TakeCommitLowered());
  auto files = fs_.ListDir("/data");
  ASSERT_TRUE(files.ok());
  std::string kept;
  for (const std::string& f : files.value()) {
    if (f.rfind("cut-committed-log-a-4-5-", 0) == 0) kept = f;
  }
  ASSERT_FALSE(kept.empty()) << "no cut-committed file in /data";
  auto text = fs_.Contents("/data/" + kept);
  ASSERT_TRUE(text.ok());
  // Ids 4 and 5, each a JSON line with its message; 6 was never committed and is not kept.
  EXPECT_EQ(std::count(text.value().begin(), text.value().end(), '\n'), 2);
  EXPECT_NE(text.value().find("\"id\":4"), std::string::npos) << text.value();
  EXPECT_NE(text.value().find("\"id\":5"), std::string::npos) << text.value();
  EXPECT_NE(text.value().find("\"idempotencyKey\":\"k5\""), std::string::npos) << text.value();
  EXPECT_EQ(text.value().find("\"id\":6"), std::string::npos) << text.value();
}

}  // namespace
}  // namespace rlog::replication
