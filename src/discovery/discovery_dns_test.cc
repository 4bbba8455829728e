// Discovery against a real DNS server: dnsmasq on a loopback port, whose records the tests change
// while Discovery runs (issue 5, item 1). Every wait is on a condition with a deadline.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <iostream>
#include <mutex>
#include <thread>

#include "discovery/discovery.h"
#include "discovery/dnsmasq.h"

namespace rlog::discovery {
namespace {

using testing::Dnsmasq;
using testing::DnsRecords;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using Changes = std::vector<Change>;

constexpr uint64_t kGraceMs = 800;
constexpr auto kDeadline = std::chrono::seconds(10);  // For anything that should take < 1 s.

const std::string kService = "_grpc._tcp.sentinels.rlog.test";
const std::string kSrvItem = "srv:///" + kService;

std::string Sentinel(int i) { return "s" + std::to_string(i) + ".sentinels.rlog.test"; }
uint16_t PortOf(int i) { return static_cast<uint16_t>(9091 + i); }
std::string Identity(int i) { return Sentinel(i) + ":" + std::to_string(PortOf(i)); }

// Sentinels {index, ip} as SRV targets with A records.
DnsRecords SrvRecords(const std::vector<std::pair<int, std::string>>& sentinels) {
  DnsRecords r;
  for (const auto& [i, ip] : sentinels) {
    r.hosts.push_back({Sentinel(i), ip});
    r.srv.push_back({kService, Sentinel(i), PortOf(i)});
  }
  return r;
}

// Collects every batch on_change delivers, for tests to wait on.
class Recorder {
 public:
  Discovery::OnChange Callback() {
    return [this](const Changes& batch) {
      std::lock_guard<std::mutex> lock(mu_);
      changes_.insert(changes_.end(), batch.begin(), batch.end());
      cv_.notify_all();
    };
  }
  // Waits until `count` changes in all have arrived; returns them.
  Changes WaitForCount(size_t count, std::chrono::milliseconds timeout = kDeadline) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return changes_.size() >= count; });
    return changes_;
  }
  Changes All() {
    std::lock_guard<std::mutex> lock(mu_);
    return changes_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  Changes changes_;
};

// Polls `condition` until it holds or `timeout` passes (a bounded wait, not a sleep).
bool Eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (!condition()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(milliseconds(10));
  }
  return true;
}

class DiscoveryDnsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!Dnsmasq::Available()) GTEST_SKIP() << "dnsmasq is not installed (Debian dnsmasq-base)";
    std::string templ = (std::filesystem::temp_directory_path() / "rlog-dns-XXXXXX").string();
    ASSERT_NE(mkdtemp(templ.data()), nullptr);
    dir_ = templ;
    dns_ = std::make_unique<Dnsmasq>(dir_);
  }
  void TearDown() override {
    if (discovery_) discovery_->Stop();
    if (dns_) {
      if (HasFailure()) std::cerr << "dnsmasq log:\n" << dns_->Log();
      dns_->Stop();
    }
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  DiscoveryOptions Options() const {
    DiscoveryOptions o;
    o.dns_server = dns_->server();
    o.refresh_ms = 100;
    o.grace_ms = kGraceMs;
    o.backoff_initial_ms = 50;
    o.backoff_max_ms = 300;
    o.min_interval_ms = 20;
    o.query_timeout_ms = 200;
    o.query_tries = 2;
    o.start_wait_ms = 5000;
    o.seed = 42;
    return o;
  }

  void StartDiscovery(std::vector<std::string> items, DiscoveryOptions options) {
    discovery_ = std::make_unique<Discovery>(std::move(items), options, recorder_.Callback());
    Status s = discovery_->Start();
    ASSERT_TRUE(s.ok()) << s.message();
  }

  uint32_t Failures(size_t item = 0) const {
    return discovery_->Items().at(item).consecutive_failures;
  }

  std::string dir_;
  std::unique_ptr<Dnsmasq> dns_;
  Recorder recorder_;
  std::unique_ptr<Discovery> discovery_;
};

TEST_F(DiscoveryDnsTest, SrvScaleUpAddressChangeAndRemoval) {
  ASSERT_TRUE(dns_->Start(SrvRecords({{0, "127.0.0.11"}, {1, "127.0.0.12"}})).ok()) << dns_->Log();
  StartDiscovery({kSrvItem}, Options());
  // The first round is delivered before Start() returns.
  EXPECT_EQ(recorder_.All(), (Changes{Change::Added(Identity(0), "127.0.0.11:9091"),
                                      Change::Added(Identity(1), "127.0.0.12:9092")}));

  // Scale 2 -> 3: dnsmasq restarts with a third target (queries fail meanwhile: nobody leaves).
  ASSERT_TRUE(
      dns_->Restart(SrvRecords({{0, "127.0.0.11"}, {1, "127.0.0.12"}, {2, "127.0.0.13"}})).ok());
  Changes seen = recorder_.WaitForCount(3);
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[2], Change::Added(Identity(2), "127.0.0.13:9093"));

  // s1's pod moves: same name, new address (SIGHUP, no restart).
  ASSERT_TRUE(dns_->SetHosts({{Sentinel(0), "127.0.0.11"},
                              {Sentinel(1), "127.0.0.22"},
                              {Sentinel(2), "127.0.0.13"}})
                  .ok());
  seen = recorder_.WaitForCount(4);
  ASSERT_EQ(seen.size(), 4u);
  EXPECT_EQ(seen[3], Change::AddressChanged(Identity(1), "127.0.0.22:9092"));

  // s0 leaves DNS: removed, but only after the grace period.
  auto removed_from_dns = Clock::now();
  ASSERT_TRUE(dns_->Restart(SrvRecords({{1, "127.0.0.22"}, {2, "127.0.0.13"}})).ok());
  seen = recorder_.WaitForCount(5, milliseconds(kGraceMs) + kDeadline);
  auto waited = Clock::now() - removed_from_dns;
  ASSERT_EQ(seen.size(), 5u);
  EXPECT_EQ(seen[4], Change::Removed(Identity(0)));
  EXPECT_GE(waited, milliseconds(kGraceMs));

  EXPECT_EQ(discovery_->Members(),
            (std::map<std::string, std::string>{{Identity(1), "127.0.0.22:9092"},
                                                {Identity(2), "127.0.0.13:9093"}}));
  EXPECT_EQ(recorder_.All().size(), 5u) << "no other change";
}

TEST_F(DiscoveryDnsTest, EveryARecordAndAaaaRecordIsASentinel) {
  const std::string name = "sentinels.rlog.test";
  ASSERT_TRUE(dns_->Start({{{name, "127.0.0.11"}, {name, "127.0.0.12"}}, {}}).ok()) << dns_->Log();
  StartDiscovery({"dns:///" + name + ".:9091"}, Options());  // Absolute name: trailing dot.
  EXPECT_EQ(recorder_.All(), (Changes{Change::Added("127.0.0.11:9091", "127.0.0.11:9091"),
                                      Change::Added("127.0.0.12:9091", "127.0.0.12:9091")}));

  ASSERT_TRUE(
      dns_->SetHosts(
              {{name, "127.0.0.11"}, {name, "127.0.0.12"}, {name, "127.0.0.13"}, {name, "::1"}})
          .ok());
  Changes seen = recorder_.WaitForCount(4);
  ASSERT_EQ(seen.size(), 4u);
  // A and AAAA are two queries: the reload may fall between them, so either order is right.
  Changes added(seen.begin() + 2, seen.end());
  std::sort(added.begin(), added.end(),
            [](const Change& a, const Change& b) { return a.identity < b.identity; });
  EXPECT_EQ(added, (Changes{Change::Added("127.0.0.13:9091", "127.0.0.13:9091"),
                            Change::Added("[::1]:9091", "[::1]:9091")}));

  auto removed_from_dns = Clock::now();
  ASSERT_TRUE(dns_->SetHosts({{name, "127.0.0.12"}, {name, "127.0.0.13"}, {name, "::1"}}).ok());
  seen = recorder_.WaitForCount(5, milliseconds(kGraceMs) + kDeadline);
  ASSERT_EQ(seen.size(), 5u);
  EXPECT_EQ(seen[4], Change::Removed("127.0.0.11:9091"));
  EXPECT_GE(Clock::now() - removed_from_dns, milliseconds(kGraceMs));
}

TEST_F(DiscoveryDnsTest, NxdomainAndAnUnreachableServerAreTemporary) {
  ASSERT_TRUE(dns_->Start(SrvRecords({{0, "127.0.0.11"}, {1, "127.0.0.12"}})).ok()) << dns_->Log();
  StartDiscovery({kSrvItem}, Options());
  ASSERT_EQ(recorder_.All().size(), 2u);

  // The SRV name disappears (NXDOMAIN) for longer than the grace period.
  ASSERT_TRUE(dns_->Restart({}).ok());
  auto since = Clock::now();
  ASSERT_TRUE(Eventually(
      [&] { return Failures() >= 3 && Clock::now() - since > milliseconds(2 * kGraceMs); },
      kDeadline));
  EXPECT_NE(discovery_->Items()[0].last_error.find("not found"), std::string::npos)
      << discovery_->Items()[0].last_error;

  // The DNS server is gone altogether (refused / timeouts).
  dns_->Stop();
  uint32_t before = Failures();
  ASSERT_TRUE(Eventually([&] { return Failures() >= before + 2; }, kDeadline));

  // Back with the same records: nothing changed, nothing reported.
  ASSERT_TRUE(dns_->Start(SrvRecords({{0, "127.0.0.11"}, {1, "127.0.0.12"}})).ok());
  ASSERT_TRUE(Eventually([&] { return Failures() == 0; }, kDeadline));
  EXPECT_EQ(recorder_.All().size(), 2u) << "a failure removed or changed a sentinel";
  EXPECT_EQ(discovery_->Members().size(), 2u);
}

TEST_F(DiscoveryDnsTest, SrvTargetWhoseAddressDoesNotResolveKeepsItsPlace) {
  ASSERT_TRUE(dns_->Start(SrvRecords({{0, "127.0.0.11"}, {1, "127.0.0.12"}})).ok()) << dns_->Log();
  StartDiscovery({kSrvItem}, Options());
  ASSERT_EQ(recorder_.All().size(), 2u);

  // s1 is still an SRV target, but its A record is gone past the grace period.
  ASSERT_TRUE(dns_->SetHosts({{Sentinel(0), "127.0.0.11"}}).ok());
  auto since = Clock::now();
  ASSERT_TRUE(Eventually(
      [&] { return Failures() >= 3 && Clock::now() - since > milliseconds(2 * kGraceMs); },
      kDeadline));
  EXPECT_EQ(recorder_.All().size(), 2u);
  EXPECT_EQ(discovery_->Members().at(Identity(1)), "127.0.0.12:9092");
}

TEST_F(DiscoveryDnsTest, RequestRefreshPicksUpAChangeBeforeTheRefreshInterval) {
  ASSERT_TRUE(dns_->Start(SrvRecords({{0, "127.0.0.11"}})).ok()) << dns_->Log();
  DiscoveryOptions o = Options();
  o.refresh_ms = 600'000;
  StartDiscovery({kSrvItem}, o);
  ASSERT_EQ(recorder_.All().size(), 1u);

  ASSERT_TRUE(dns_->SetHosts({{Sentinel(0), "127.0.0.21"}}).ok());
  // SIGHUP is asynchronous: ask again until the new address shows (each ask is rate-limited).
  ASSERT_TRUE(Eventually(
      [&] {
        discovery_->RequestRefresh();
        return recorder_.All().size() >= 2;
      },
      kDeadline));
  EXPECT_EQ(recorder_.All()[1], Change::AddressChanged(Identity(0), "127.0.0.21:9091"));
}

TEST_F(DiscoveryDnsTest, NamesAreQueriedAsWrittenWhenADnsServerIsSet) {
  ASSERT_TRUE(dns_->Start(SrvRecords({{0, "127.0.0.11"}})).ok()) << dns_->Log();
  // A search list and ndots like a Kubernetes pod's: with dns_server set, neither applies (the
  // test's dnsmasq would refuse the searched names).
  setenv("LOCALDOMAIN", "default.svc.cluster.local", 1);
  setenv("RES_OPTIONS", "ndots:5", 1);
  StartDiscovery({kSrvItem}, Options());
  unsetenv("LOCALDOMAIN");
  unsetenv("RES_OPTIONS");
  EXPECT_EQ(recorder_.All(), (Changes{Change::Added(Identity(0), "127.0.0.11:9091")}));
}

TEST(Discovery, StaticItemsAreAddedBeforeStartReturns) {
  Recorder recorder;
  Discovery discovery({"127.0.0.1:9091", "sentinel-1:9092"}, {}, recorder.Callback());
  ASSERT_TRUE(discovery.Start().ok());
  EXPECT_EQ(recorder.All(), (Changes{Change::Added("127.0.0.1:9091", "127.0.0.1:9091"),
                                     Change::Added("sentinel-1:9092", "sentinel-1:9092")}));
  discovery.Stop();
}

TEST(Discovery, BadItemFailsStartNamingIt) {
  Discovery discovery({"127.0.0.1:9091", "dns:///nope"}, {}, nullptr);
  Status s = discovery.Start();
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("dns:///nope"), std::string::npos) << s.message();
}

TEST(Discovery, BadDnsServerFailsStartNamingIt) {
  DiscoveryOptions o;
  o.dns_server = "dns.example:53";
  Discovery discovery({"dns:///a.rlog.test:9091"}, o, nullptr);
  Status s = discovery.Start();
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("dns.example:53"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace rlog::discovery
