// MasterNode's own lifetime: a master with a data directory destroyed right after taking writes
// (main() returns early when HTTP cannot start; tests drop nodes without draining) must stop its
// group committer while everything the committer's callbacks touch still exists. Run under ASan
// (scripts/sanitize.sh address) to see a use after free; here it must at least not crash or hang.
#include "app/master_node.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>

namespace rlog::app {
namespace {

// Start() returns while the master still recovers (on its own thread): wait until it is ready.
bool StartedAndReady(MasterNode& node) {
  if (!node.Start().ok()) return false;
  for (int i = 0; i < 500; ++i) {
    if (node.Ready().status == 200) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

TEST(MasterNodeTest, DestroyedWithWritesNotYetSyncedStopsTheCommitterFirst) {
  std::string dir = testing::TempDir() + "/master_node_test_" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  Config c;
  c.role = Role::kMaster;
  c.data_dir = dir;
  c.fsync = FsyncPolicy::kNever;  // Written, not synced: the committer's last act is a sync.
  auto node = std::make_unique<MasterNode>(c);
  ASSERT_TRUE(StartedAndReady(*node));

  std::mutex mu;
  std::condition_variable cv;
  int answered = 0;
  int ok = 0;
  constexpr int kWrites = 200;
  for (int i = 0; i < kWrites; ++i) {
    node->Insert(R"({"message":"m)" + std::to_string(i) + R"(","writeConcern":1})",
                 [&](http::HttpReply reply) {
                   std::lock_guard lock(mu);
                   ++answered;
                   if (reply.status == 200) ++ok;
                   cv.notify_all();
                 });
  }
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return answered == kWrites; }));
    EXPECT_EQ(ok, kWrites);
  }
  node.reset();  // No Drain.

  // Everything acknowledged is in the WAL: a new master recovers it.
  auto again = std::make_unique<MasterNode>(c);
  ASSERT_TRUE(StartedAndReady(*again));
  EXPECT_NE(again->GetAll().body.find("\"m" + std::to_string(kWrites - 1) + "\""),
            std::string::npos);
  again.reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace rlog::app
