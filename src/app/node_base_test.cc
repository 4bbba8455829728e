// NodeBase's reads show a node's log only up to its durable id: an entry waiting for its fsync is
// invisible to GET /get-all and GET /messages, and a long poll waiting for it is answered once
// the fsync covers it. The fsync is held with the fault-injecting file system, so nothing here
// depends on timing.
#include "app/node_base.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>

#include "storage/fault_injection_file_system.h"

namespace rlog::app {
namespace {

using namespace std::chrono_literals;

// A node with only the read side: what the master and the sentinel share.
class ReadNode final : public NodeBase {
 public:
  explicit ReadNode(const storage::NodeLog* log) { served_ = log; }
  void Insert(std::string, http::Responder respond) override { respond({405, "{}", {}}); }
  http::HttpReply Health() override { return {200, "{}", {}}; }
  http::HttpReply Ready() override { return {200, "{}", {}}; }
  http::HttpReply Metrics() override { return {200, "", {}}; }
  using NodeBase::NotifyAppended;
  void set_get_all_max_bytes(uint64_t n) { get_all_max_bytes_ = n; }
  void set_max_waiting_reads(size_t n) { max_waiting_reads_ = n; }
  using NodeBase::WaitingReads;
};

std::vector<std::string> Messages(const http::HttpReply& reply) {
  std::vector<std::string> out;
  auto j = nlohmann::json::parse(reply.body);
  const auto& list = j.is_array() ? j : j["messages"];
  for (const auto& e : list) out.push_back(e["message"].get<std::string>());
  return out;
}

class NodeBaseTest : public ::testing::Test {
 protected:
  void Open(storage::FsyncPolicy fsync) {
    storage::NodeLogOptions options;
    options.data_dir = "/data";
    options.fsync = fsync;
    options.fs = &fs_;
    auto opened = storage::NodeLog::Open(
        std::move(options),
        [this](core::LogId n) {
          if (node_) node_->NotifyAppended(n);  // As the nodes' on_durable callbacks do.
          std::lock_guard lock(mu_);
          durable_ = n;
          cv_.notify_all();
        },
        nullptr);
    ASSERT_TRUE(opened.ok()) << opened.status().message();
    log_ = std::move(opened).value();
    ASSERT_TRUE(log_->SetIdentity("log-r", 1).ok());
    node_ = std::make_unique<ReadNode>(log_.get());
  }
  bool WaitDurable(core::LogId n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, 10s, [&] { return durable_ >= n; });
  }
  void TearDown() override {
    fs_.UnblockSyncs();
    log_.reset();  // First: its committer's last callbacks may still reach node_.
    node_.reset();
  }

  storage::FaultInjectionFileSystem fs_;
  std::unique_ptr<storage::NodeLog> log_;
  std::unique_ptr<ReadNode> node_;
  std::mutex mu_;
  std::condition_variable cv_;
  core::LogId durable_ = 0;
};

TEST_F(NodeBaseTest, AnEntryWaitingForItsFsyncIsNotReadable) {
  Open(storage::FsyncPolicy::kAlways);
  ASSERT_TRUE(log_->AppendNext(1, 1, "first").ok());
  ASSERT_TRUE(WaitDurable(1));
  fs_.BlockSyncs();
  ASSERT_TRUE(log_->AppendNext(1, 2, "second").ok());
  ASSERT_TRUE(fs_.WaitForBlockedSyncs(1, 10s));  // Written, its fsync held.
  EXPECT_EQ(log_->last_id(), 2u);
  EXPECT_EQ(Messages(node_->GetAll()), std::vector<std::string>{"first"});
  std::optional<http::HttpReply> page;
  node_->Messages(1, 10, 0, [&](http::HttpReply r) { page = std::move(r); });
  ASSERT_TRUE(page);
  EXPECT_EQ(Messages(*page), std::vector<std::string>{"first"});
  EXPECT_EQ(nlohmann::json::parse(page->body)["lastId"], 1);
  EXPECT_EQ(nlohmann::json::parse(page->body)["next"], 2);

  // A long poll for id 2 waits for the fsync, not for the append.
  std::mutex tail_mu;
  std::condition_variable tail_cv;
  std::optional<http::HttpReply> tail;
  node_->Messages(2, 10, 60000, [&](http::HttpReply r) {
    std::lock_guard lock(tail_mu);
    tail = std::move(r);
    tail_cv.notify_all();
  });
  node_->NotifyAppended(2);  // What an append notifies: nothing is readable yet.
  {
    std::lock_guard lock(tail_mu);
    EXPECT_FALSE(tail);
  }
  fs_.UnblockSyncs();
  ASSERT_TRUE(WaitDurable(2));
  std::unique_lock lock(tail_mu);
  ASSERT_TRUE(tail_cv.wait_for(lock, 10s, [&] { return tail.has_value(); }));
  EXPECT_EQ(Messages(*tail), std::vector<std::string>{"second"});
  EXPECT_EQ(Messages(node_->GetAll()), (std::vector<std::string>{"first", "second"}));
}

TEST_F(NodeBaseTest, WithFsyncNeverAnEntryIsReadableOnceWritten) {
  Open(storage::FsyncPolicy::kNever);
  fs_.BlockSyncs();  // No fsync is needed for it to show.
  ASSERT_TRUE(log_->AppendNext(1, 1, "only").ok());
  ASSERT_TRUE(WaitDurable(1));
  EXPECT_EQ(Messages(node_->GetAll()), std::vector<std::string>{"only"});
}

// Pages are written without a json tree (node_base.cc): they must be the very text nlohmann
// prints for the same entries, whatever the messages hold (quotes, backslashes, control
// characters, multi-byte UTF-8, and invalid UTF-8, which is replaced).
TEST_F(NodeBaseTest, PagesAreTheTextNlohmannPrintsForTheSameEntries) {
  Open(storage::FsyncPolicy::kNever);
  std::mt19937_64 rng(20261206);
  const std::vector<std::string> pieces = {"a",
                                           "\"",
                                           "\\",
                                           "/",
                                           "\n",
                                           "\t",
                                           std::string(1, '\0'),
                                           "\x1f",
                                           "\x7f",
                                           "\xc3\xa9",
                                           "\xe2\x82\xac",
                                           "\xf0\x9f\x98\x80",
                                           "\xff",
                                           "\xc3",
                                           " "};
  nlohmann::json expected = nlohmann::json::array();
  for (core::LogId id = 1; id <= 300; ++id) {
    std::string message;
    for (size_t n = rng() % 12; n > 0; --n) message += pieces[rng() % pieces.size()];
    const int64_t timestamp = static_cast<int64_t>(rng() >> 1);
    ASSERT_EQ(log_->AppendNext(1, timestamp, message).value(), id);
    expected.push_back({{"id", id}, {"message", message}, {"timestamp", timestamp}});
  }
  ASSERT_TRUE(WaitDurable(300));
  const auto dump = [](const nlohmann::json& j) {
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  };
  EXPECT_EQ(node_->GetAll().body, dump(expected));
  std::optional<http::HttpReply> page;
  node_->Messages(11, 20, 0, [&](http::HttpReply r) { page = std::move(r); });
  ASSERT_TRUE(page.has_value());
  nlohmann::json want = {{"messages", nlohmann::json(expected.begin() + 10, expected.begin() + 30)},
                         {"next", 31},
                         {"lastId", 300}};
  EXPECT_EQ(page->body, dump(want));
  page.reset();
  node_->Messages(301, 20, 0, [&](http::HttpReply r) { page = std::move(r); });  // Nothing yet.
  ASSERT_TRUE(page.has_value());
  EXPECT_EQ(page->body, R"({"lastId":300,"messages":[],"next":301})");
}

// /get-all is built a page (4 MiB of messages) at a time: the pages join into the one array
// nlohmann prints, and an answer that would pass get_all_max_bytes is refused, not built.
TEST_F(NodeBaseTest, GetAllJoinsItsPagesAndRefusesAnAnswerOverTheLimit) {
  Open(storage::FsyncPolicy::kNever);
  EXPECT_EQ(node_->GetAll().body, "[]");
  nlohmann::json expected = nlohmann::json::array();
  for (core::LogId id = 1; id <= 9; ++id) {
    const std::string message(700 << 10, static_cast<char>('a' + id));  // 9 x 700 KiB: 2 pages.
    ASSERT_EQ(log_->AppendNext(1, 1000 + id, message).value(), id);
    expected.push_back({{"id", id}, {"message", message}, {"timestamp", 1000 + id}});
  }
  ASSERT_TRUE(WaitDurable(9));
  const std::string whole = expected.dump();
  http::HttpReply all = node_->GetAll();
  EXPECT_EQ(all.status, 200);
  EXPECT_TRUE(all.body == whole) << "the pages do not join into the whole array";

  node_->set_get_all_max_bytes(whole.size());
  EXPECT_EQ(node_->GetAll().status, 200);
  node_->set_get_all_max_bytes(whole.size() - 1);
  http::HttpReply refused = node_->GetAll();
  EXPECT_EQ(refused.status, 400);
  auto j = nlohmann::json::parse(refused.body);
  EXPECT_EQ(j["lastId"], 9);
  EXPECT_EQ(j["getAllMaxBytes"], whole.size() - 1);
  EXPECT_NE(j["error"].get<std::string>().find("/messages?from=1"), std::string::npos) << j;
}

}  // namespace
}  // namespace rlog::app

namespace rlog::app {
namespace {

// The answers of long polls, by the order they were asked.
struct Answers {
  std::mutex mu;
  std::vector<std::optional<http::HttpReply>> replies;
  http::Responder For(size_t i) {
    {
      std::lock_guard lock(mu);
      if (replies.size() <= i) replies.resize(i + 1);
    }
    return [this, i](http::HttpReply r) {
      std::lock_guard lock(mu);
      replies[i] = std::move(r);
    };
  }
  std::optional<http::HttpReply> At(size_t i) {
    std::lock_guard lock(mu);
    return i < replies.size() ? replies[i] : std::nullopt;
  }
};

// Long polls whose clients have gone stay parked until their wait is over (Pistache does not say
// when a client disconnects): beyond http.max_waiting_reads one more is refused at once, 503
// with Retry-After, and the node keeps serving reads that do not wait.
TEST_F(NodeBaseTest, LongPollsBeyondTheCapAreRefusedWith503) {
  Open(storage::FsyncPolicy::kAlways);
  node_->set_max_waiting_reads(2);
  Answers answers;
  node_->Messages(1, 10, 60000, answers.For(0));
  node_->Messages(1, 10, 60000, answers.For(1));
  EXPECT_EQ(node_->WaitingReads(), 2u);
  node_->Messages(1, 10, 60000, answers.For(2));
  const std::optional<http::HttpReply> refused = answers.At(2);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 503);
  EXPECT_NE(refused->body.find("http.max_waiting_reads"), std::string::npos) << refused->body;
  EXPECT_NE(std::find(refused->headers.begin(), refused->headers.end(),
                      std::make_pair(std::string("Retry-After"), std::string("1"))),
            refused->headers.end());
  EXPECT_EQ(node_->WaitingReads(), 2u);
  EXPECT_FALSE(answers.At(0));
  std::optional<http::HttpReply> now;  // A read that does not wait is served.
  node_->Messages(1, 10, 0, [&](http::HttpReply r) { now = std::move(r); });
  ASSERT_TRUE(now);
  EXPECT_EQ(now->status, 200);

  ASSERT_TRUE(log_->AppendNext(1, 1, "first").ok());
  ASSERT_TRUE(WaitDurable(1));  // Answers the two parked polls...
  EXPECT_EQ(node_->WaitingReads(), 0u);
  ASSERT_TRUE(answers.At(0));
  EXPECT_EQ(Messages(*answers.At(1)), std::vector<std::string>{"first"});
  node_->Messages(2, 10, 60000, answers.For(3));  // ...and makes room.
  EXPECT_EQ(node_->WaitingReads(), 1u);
  EXPECT_FALSE(answers.At(3));
}

// Parked polls answered together each get the page of their own start and limit.
TEST_F(NodeBaseTest, ParkedLongPollsEachGetThePageTheyAskedFor) {
  Open(storage::FsyncPolicy::kAlways);
  Answers answers;
  const std::vector<std::pair<core::LogId, size_t>> asked = {{1, 10}, {1, 10}, {1, 1}, {2, 10},
                                                             {1, 10}, {2, 1},  {3, 10}};
  for (size_t i = 0; i < asked.size(); ++i) {
    node_->Messages(asked[i].first, asked[i].second, 60000, answers.For(i));
  }
  ASSERT_TRUE(log_->AppendNext(1, 1, "a").ok());
  ASSERT_TRUE(log_->AppendNext(1, 2, "b").ok());
  ASSERT_TRUE(WaitDurable(2));
  const std::map<std::pair<core::LogId, size_t>, std::vector<std::string>> want = {
      {{1, 10}, {"a", "b"}}, {{1, 1}, {"a"}}, {{2, 10}, {"b"}}, {{2, 1}, {"b"}}};
  for (size_t i = 0; i < asked.size(); ++i) {
    if (asked[i].first == 3) {
      EXPECT_FALSE(answers.At(i)) << "id 3 is not there yet";
      continue;
    }
    const std::optional<http::HttpReply> reply = answers.At(i);
    ASSERT_TRUE(reply) << "poll " << i;
    // Answered at id 1 or, for polls from 1 answered before 2 came, with "a" alone; either way
    // a prefix of what it asked for, from where it asked.
    const std::vector<std::string> got = Messages(*reply);
    const std::vector<std::string>& all = want.at(asked[i]);
    ASSERT_FALSE(got.empty()) << "poll " << i;
    ASSERT_LE(got.size(), all.size()) << "poll " << i;
    EXPECT_TRUE(std::equal(got.begin(), got.end(), all.begin())) << "poll " << i;
    EXPECT_EQ(nlohmann::json::parse(reply->body)["next"], asked[i].first + got.size());
  }
  EXPECT_EQ(node_->WaitingReads(), 1u);
}

}  // namespace
}  // namespace rlog::app
