#include "discovery/membership.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

namespace rlog::discovery {
namespace {

constexpr Tick kRefresh = 100;
constexpr Tick kGrace = 1000;

// An SRV target "name.rlog:9091" at "ip:9091".
Endpoint Target(const std::string& name, const std::string& ip) {
  return {name + ".rlog:9091", {ip + ":9091"}};
}
// An A/AAAA record of a dns:/// item: identity and address are both "ip:9091".
Endpoint Record(const std::string& ip) { return {ip + ":9091", {ip + ":9091"}}; }

Change Added(const std::string& name, const std::string& ip) {
  return Change::Added(name + ".rlog:9091", ip + ":9091");
}
Change Moved(const std::string& name, const std::string& ip) {
  return Change::AddressChanged(name + ".rlog:9091", ip + ":9091");
}
Change Removed(const std::string& name) { return Change::Removed(name + ".rlog:9091"); }

using Changes = std::vector<Change>;

class MembershipTest : public ::testing::Test {
 protected:
  static MembershipOptions Options() {
    MembershipOptions o;
    o.refresh = kRefresh;
    o.grace = kGrace;
    o.backoff_initial = 10;
    o.backoff_max = 80;
    o.min_interval = 20;
    o.seed = 7;
    return o;
  }

  void Make(const std::vector<std::string>& texts, MembershipOptions options = Options()) {
    Result<std::vector<SentinelItem>> items = ParseSentinelItems(texts);
    ASSERT_TRUE(items.ok()) << items.status().message();
    m_ = std::make_unique<Membership>(std::move(items).value(), options, 0);
    in_flight_.clear();
    m_->CheckInvariants();
  }

  // Item `index` is resolved at `now` (it must be due by then) with `endpoints`.
  Changes Answer(Tick now, std::vector<Endpoint> endpoints, size_t index = 0) {
    TakeDueAt(now, index);
    if (HasFatalFailure()) return {};
    m_->Resolved(index, now, std::move(endpoints));
    m_->CheckInvariants();
    return m_->TakeChanges();
  }
  Changes Fail(Tick now, size_t index = 0) {
    TakeDueAt(now, index);
    if (HasFatalFailure()) return {};
    m_->Failed(index, now, "NXDOMAIN");
    m_->CheckInvariants();
    return m_->TakeChanges();
  }
  // Other items that fall due meanwhile stay in flight until a test answers them.
  void TakeDueAt(Tick now, size_t index) {
    for (size_t i : m_->TakeDue(now)) in_flight_.insert(i);
    ASSERT_EQ(in_flight_.erase(index), 1u)
        << "item " << index << " is not due at " << now << " (next due " << m_->NextDue() << ")";
  }
  // Answers the SRV item at every refresh in [from, to] and returns all changes.
  Changes AnswerEveryRefresh(Tick from, Tick to, const std::vector<Endpoint>& endpoints) {
    Changes all;
    for (Tick t = from; t <= to; t += kRefresh) {
      Changes c = Answer(t, endpoints);
      all.insert(all.end(), c.begin(), c.end());
    }
    return all;
  }

  std::unique_ptr<Membership> m_;
  std::set<size_t> in_flight_;
};

TEST_F(MembershipTest, StaticItemsAreAddedAtOnceAndNeverResolved) {
  Make({"sentinel-0:9091", "[::1]:9092"});
  EXPECT_EQ(m_->TakeChanges(), (Changes{Change::Added("[::1]:9092", "[::1]:9092"),
                                        Change::Added("sentinel-0:9091", "sentinel-0:9091")}));
  EXPECT_TRUE(m_->TakeDue(1'000'000).empty());
  EXPECT_EQ(m_->NextDue(), kNever);
  EXPECT_TRUE(m_->AllAttempted());
}

TEST_F(MembershipTest, DnsItemsAreDueAtOnce) {
  Make({"srv:///_grpc._tcp.rlog", "dns:///rlog:9091"});
  EXPECT_TRUE(m_->TakeChanges().empty());
  EXPECT_FALSE(m_->AllAttempted());
  EXPECT_EQ(m_->TakeDue(0), (std::vector<size_t>{0, 1}));
  EXPECT_TRUE(m_->TakeDue(0).empty()) << "an item in flight is not handed out twice";
}

TEST_F(MembershipTest, FirstAnswerAddsEveryTarget) {
  Make({"srv:///_grpc._tcp.rlog"});
  EXPECT_EQ(Answer(0, {Target("s0", "10.0.0.1"), Target("s1", "10.0.0.2")}),
            (Changes{Added("s0", "10.0.0.1"), Added("s1", "10.0.0.2")}));
  EXPECT_TRUE(m_->AllAttempted());
}

TEST_F(MembershipTest, EveryRecordOfADnsNameIsASentinel) {
  Make({"dns:///rlog:9091"});
  EXPECT_EQ(Answer(0, {Record("10.0.0.1"), Record("10.0.0.2")}),
            (Changes{Change::Added("10.0.0.1:9091", "10.0.0.1:9091"),
                     Change::Added("10.0.0.2:9091", "10.0.0.2:9091")}));
}

TEST_F(MembershipTest, ScaleUpAddsNewTarget) {
  Make({"srv:///_grpc._tcp.rlog"});
  (void)Answer(0, {Target("s0", "10.0.0.1"), Target("s1", "10.0.0.2")});
  EXPECT_EQ(
      Answer(100, {Target("s0", "10.0.0.1"), Target("s1", "10.0.0.2"), Target("s2", "10.0.0.3")}),
      (Changes{Added("s2", "10.0.0.3")}));
}

TEST_F(MembershipTest, AddressChangeIsReported) {
  Make({"srv:///_grpc._tcp.rlog"});
  (void)Answer(0, {Target("s0", "10.0.0.1"), Target("s1", "10.0.0.2")});
  EXPECT_EQ(Answer(100, {Target("s0", "10.0.0.1"), Target("s1", "10.0.0.22")}),
            (Changes{Moved("s1", "10.0.0.22")}));
  EXPECT_EQ(m_->members().at("s1.rlog:9091"), "10.0.0.22:9091");
}

TEST_F(MembershipTest, RotatingRecordsKeepTheCurrentAddress) {
  Make({"srv:///_grpc._tcp.rlog"});
  EXPECT_EQ(Answer(0, {{"s0.rlog:9091", {"10.0.0.2:9091", "10.0.0.1:9091"}}}),
            (Changes{Added("s0", "10.0.0.1")}));
  EXPECT_TRUE(Answer(100, {{"s0.rlog:9091", {"10.0.0.3:9091", "10.0.0.1:9091"}}}).empty());
  EXPECT_EQ(Answer(200, {{"s0.rlog:9091", {"10.0.0.3:9091", "10.0.0.2:9091"}}}),
            (Changes{Moved("s0", "10.0.0.2")}));
}

TEST_F(MembershipTest, DisappearedTargetRemovedAfterGrace) {
  Make({"srv:///_grpc._tcp.rlog"});
  (void)Answer(0, {Target("s0", "10.0.0.1"), Target("s1", "10.0.0.2")});
  // s1 is missing from every answer from t=100 on; it leaves at the first answer at t >= 1100.
  EXPECT_TRUE(AnswerEveryRefresh(100, 1000, {Target("s0", "10.0.0.1")}).empty());
  EXPECT_EQ(m_->members().size(), 2u);
  EXPECT_EQ(Answer(1100, {Target("s0", "10.0.0.1")}), (Changes{Removed("s1")}));
  EXPECT_EQ(m_->members().size(), 1u);
}

TEST_F(MembershipTest, RemovalIsCheckedAtTheGraceDeadline) {
  MembershipOptions o = Options();
  o.grace = 250;
  Make({"srv:///_grpc._tcp.rlog"}, o);
  (void)Answer(0, {Target("s0", "10.0.0.1"), Target("s1", "10.0.0.2")});
  (void)Answer(100, {Target("s0", "10.0.0.1")});  // s1 absent since 100.
  (void)Answer(200, {Target("s0", "10.0.0.1")});
  (void)Answer(300, {Target("s0", "10.0.0.1")});
  EXPECT_EQ(m_->NextDue(), 350u) << "the deadline comes before the next refresh";
  EXPECT_EQ(Answer(350, {Target("s0", "10.0.0.1")}), (Changes{Removed("s1")}));
  EXPECT_EQ(m_->NextDue(), 450u);
}

TEST_F(MembershipTest, ZeroGraceRemovesAtTheFirstAnswerWithoutIt) {
  MembershipOptions o = Options();
  o.grace = 0;
  Make({"srv:///_grpc._tcp.rlog"}, o);
  (void)Answer(0, {Target("s0", "10.0.0.1"), Target("s1", "10.0.0.2")});
  EXPECT_EQ(Answer(100, {Target("s0", "10.0.0.1")}), (Changes{Removed("s1")}));
}

TEST_F(MembershipTest, FlappingTargetNotRemovedWithinGrace) {
  Make({"srv:///_grpc._tcp.rlog"});
  (void)Answer(0, {Target("s0", "10.0.0.1"), Target("s1", "10.0.0.2")});
  for (Tick t = 100; t <= 5000; t += kRefresh) {
    bool present = (t / kRefresh) % 4 == 0;  // Back for one answer in four: gaps of 300 < grace.
    std::vector<Endpoint> answer = {Target("s0", "10.0.0.1")};
    if (present) answer.push_back(Target("s1", "10.0.0.2"));
    EXPECT_TRUE(Answer(t, answer).empty()) << "at " << t;
  }
  EXPECT_EQ(m_->members().count("s1.rlog:9091"), 1u);
}

TEST_F(MembershipTest, NxdomainIsTemporary) {
  Make({"srv:///_grpc._tcp.rlog"});
  (void)Answer(0, {Target("s0", "10.0.0.1"), Target("s1", "10.0.0.2")});
  // NXDOMAIN (or a timeout) for far longer than the grace period: nobody leaves.
  Tick t = 100;
  for (int i = 0; i < 100; ++i) {
    EXPECT_TRUE(Fail(t).empty());
    t = m_->NextDue();
  }
  EXPECT_GT(t, 5 * kGrace);
  EXPECT_EQ(m_->members().size(), 2u);
  EXPECT_EQ(m_->Status()[0].consecutive_failures, 100u);
  EXPECT_EQ(m_->Status()[0].last_error, "NXDOMAIN");
  // The name comes back unchanged: nothing to report, the failure count clears.
  EXPECT_TRUE(Answer(t, {Target("s0", "10.0.0.1"), Target("s1", "10.0.0.2")}).empty());
  EXPECT_EQ(m_->Status()[0].consecutive_failures, 0u);
  EXPECT_EQ(m_->Status()[0].last_error, "");
}

TEST_F(MembershipTest, EmptyAnswerIsTemporary) {
  Make({"dns:///rlog:9091"});
  (void)Answer(0, {Record("10.0.0.1")});
  for (Tick t = 100; t < 5 * kGrace; t = m_->NextDue()) EXPECT_TRUE(Answer(t, {}).empty());
  EXPECT_EQ(m_->members().size(), 1u);
  EXPECT_GT(m_->Status()[0].consecutive_failures, 0u);
}

TEST_F(MembershipTest, RemovalWaitsForAnAnswerThatConfirmsIt) {
  Make({"srv:///_grpc._tcp.rlog"});
  (void)Answer(0, {Target("s0", "10.0.0.1"), Target("s1", "10.0.0.2")});
  (void)Answer(100, {Target("s0", "10.0.0.1")});  // s1 absent since 100...
  Tick t = 200;
  while (t < 3000) {  // ...then DNS fails past the deadline: that proves nothing.
    EXPECT_TRUE(Fail(t).empty());
    t = m_->NextDue();
  }
  EXPECT_EQ(m_->members().count("s1.rlog:9091"), 1u);
  EXPECT_EQ(Answer(t, {Target("s0", "10.0.0.1")}), (Changes{Removed("s1")}));
}

TEST_F(MembershipTest, RemovedTargetThatReturnsIsAddedAgain) {
  MembershipOptions o = Options();
  o.grace = 0;
  Make({"srv:///_grpc._tcp.rlog"}, o);
  (void)Answer(0, {Target("s0", "10.0.0.1")});
  EXPECT_EQ(Answer(100, {Target("s1", "10.0.0.2")}),
            (Changes{Added("s1", "10.0.0.2"), Removed("s0")}));
  EXPECT_EQ(Answer(200, {Target("s0", "10.0.0.9"), Target("s1", "10.0.0.2")}),
            (Changes{Added("s0", "10.0.0.9")}));
}

TEST_F(MembershipTest, ChangesComeAddedThenMovedThenRemoved) {
  MembershipOptions o = Options();
  o.grace = 0;
  Make({"srv:///_grpc._tcp.rlog"}, o);
  (void)Answer(0, {Target("a", "10.0.0.1"), Target("b", "10.0.0.2")});
  EXPECT_EQ(Answer(100, {Target("b", "10.0.0.3"), Target("c", "10.0.0.4")}),
            (Changes{Added("c", "10.0.0.4"), Moved("b", "10.0.0.3"), Removed("a")}));
}

TEST_F(MembershipTest, SrvTargetWithoutAddressKeepsItsPlace) {
  Make({"srv:///_grpc._tcp.rlog"});
  (void)Answer(0, {Target("s0", "10.0.0.1"), Target("s1", "10.0.0.2")});
  // s1's A query failed and a new s2's too: s1 stays where it was, s2 waits for an address.
  Changes c = Answer(100, {Target("s0", "10.0.0.1"), {"s1.rlog:9091", {}}, {"s2.rlog:9091", {}}});
  EXPECT_TRUE(c.empty());
  EXPECT_EQ(m_->members().at("s1.rlog:9091"), "10.0.0.2:9091");
  EXPECT_EQ(m_->members().count("s2.rlog:9091"), 0u);
  EXPECT_LE(m_->NextDue(), 110u) << "a partial answer is retried with backoff, not at refresh";
  // Even past the grace period, a target that is listed is not absent.
  for (Tick t = m_->NextDue(); t < 3000; t = m_->NextDue()) {
    EXPECT_TRUE(Answer(t, {Target("s0", "10.0.0.1"), {"s1.rlog:9091", {}}}).empty());
  }
  EXPECT_EQ(m_->members().count("s1.rlog:9091"), 1u);
  EXPECT_EQ(Answer(m_->NextDue(),
                   {Target("s0", "10.0.0.1"), Target("s1", "10.0.0.2"), Target("s2", "10.0.0.3")}),
            (Changes{Added("s2", "10.0.0.3")}));
}

TEST_F(MembershipTest, SuccessRefreshesAtTheRegularInterval) {
  Make({"srv:///_grpc._tcp.rlog"});
  (void)Answer(0, {Target("s0", "10.0.0.1")});
  EXPECT_EQ(m_->NextDue(), kRefresh);
  (void)Answer(130, {Target("s0", "10.0.0.1")});
  EXPECT_EQ(m_->NextDue(), 130 + kRefresh);
}

TEST_F(MembershipTest, FailuresBackOffExponentiallyWithJitterUpToTheCap) {
  Make({"srv:///_grpc._tcp.rlog"});
  Tick t = 0;
  Tick base = 10;
  std::set<Tick> delays;
  for (int i = 0; i < 12; ++i) {
    (void)Fail(t);
    Tick delay = m_->NextDue() - t;
    EXPECT_GE(delay, (base + 1) / 2) << "failure " << i;
    EXPECT_LE(delay, base) << "failure " << i;
    delays.insert(delay);
    base = std::min<Tick>(base * 2, 80);
    t = m_->NextDue();
  }
  EXPECT_GT(delays.size(), 3u) << "jitter";
  (void)Answer(t, {Target("s0", "10.0.0.1")});
  EXPECT_EQ(m_->NextDue(), t + kRefresh);
  t = m_->NextDue();
  (void)Fail(t);
  EXPECT_LE(m_->NextDue() - t, 10u) << "a success resets the backoff";
}

TEST_F(MembershipTest, SameSeedSameSchedule) {
  auto schedule = [this] {
    Make({"srv:///_grpc._tcp.rlog"});
    std::vector<Tick> out;
    Tick t = 0;
    for (int i = 0; i < 20; ++i) {
      (void)Fail(t);
      t = m_->NextDue();
      out.push_back(t);
    }
    return out;
  };
  EXPECT_EQ(schedule(), schedule());
}

TEST_F(MembershipTest, RequestRefreshResolvesSoonButNeverHammers) {
  MembershipOptions o = Options();
  o.backoff_initial = 1000;
  o.backoff_max = 1000;
  Make({"srv:///_grpc._tcp.rlog", "dns:///other:9091"}, o);
  (void)Answer(0, {Target("s0", "10.0.0.1")}, 0);
  (void)Fail(0, 1);
  m_->RequestRefresh(5);
  EXPECT_TRUE(m_->TakeDue(19).empty()) << "min_interval is 20 ticks after the last attempt";
  EXPECT_EQ(m_->TakeDue(20), std::vector<size_t>{0});
  EXPECT_GE(m_->NextDue(), 500u) << "an item in backoff keeps its schedule";
}

TEST_F(MembershipTest, IdentityNamedByTwoItemsStaysWhileEitherNamesIt) {
  MembershipOptions o = Options();
  o.grace = 0;
  Make({"10.0.0.1:9091", "dns:///rlog:9091"}, o);
  EXPECT_EQ(m_->TakeChanges(), (Changes{Change::Added("10.0.0.1:9091", "10.0.0.1:9091")}));
  EXPECT_EQ(Answer(0, {Record("10.0.0.1"), Record("10.0.0.2")}, 1),
            (Changes{Change::Added("10.0.0.2:9091", "10.0.0.2:9091")}));
  EXPECT_EQ(Answer(100, {Record("10.0.0.2")}, 1), Changes{});
  EXPECT_EQ(m_->members().count("10.0.0.1:9091"), 1u);
}

// Random histories against a reference written from the definition: an item contributes X iff
// X is in its latest successful answer, or the answers since X was last listed span less than
// the grace period (measured from the first answer that lacked it). Members are the union; the
// changes, replayed, give the members.
TEST(MembershipRandom, AgreesWithTheDefinitionOverSeededHistories) {
  for (uint64_t seed = 1; seed <= 150; ++seed) {
    core::Random rnd(seed);
    MembershipOptions o;
    o.refresh = 50 + rnd.Between(0, 100);
    o.grace = rnd.Between(0, 600);
    o.backoff_initial = 5;
    o.backoff_max = 200;
    o.min_interval = 10;
    o.seed = seed;
    std::vector<std::string> texts = {"srv:///_grpc._tcp.a", "dns:///b:9091"};
    if (rnd.Between(0, 1) == 1) texts.push_back("s1.rlog:9091");
    std::vector<SentinelItem> items = ParseSentinelItems(texts).value();
    Membership m(items, o, 0);

    struct Answered {
      Tick at;
      std::map<std::string, std::vector<std::string>> endpoints;
    };
    std::vector<std::vector<Answered>> history(texts.size());
    std::map<std::string, std::string> replayed;
    std::vector<size_t> in_flight;
    Tick now = 0;

    auto expected = [&](size_t index) {
      std::set<std::string> out;
      if (items[index].kind == SentinelItem::Kind::kStatic)
        return std::set{items[index].StaticIdentity()};
      const std::vector<Answered>& h = history[index];
      std::set<std::string> ever;
      for (const Answered& a : h)
        for (const auto& [id, _] : a.endpoints) ever.insert(id);
      for (const std::string& id : ever) {
        size_t last = h.size();
        for (size_t k = h.size(); k-- > 0;) {
          if (h[k].endpoints.count(id)) {
            last = k;
            break;
          }
        }
        if (last == h.size()) continue;
        if (last + 1 == h.size() || h.back().at - h[last + 1].at < o.grace) out.insert(id);
      }
      return out;
    };

    for (int step = 0; step < 200; ++step) {
      now += rnd.Between(0, 120);
      if (rnd.Between(0, 9) == 0) m.RequestRefresh(now);
      for (size_t index : m.TakeDue(now)) in_flight.push_back(index);
      // Answer some of the items in flight (others stay in flight across steps).
      std::vector<size_t> still;
      for (size_t index : in_flight) {
        if (rnd.Between(0, 3) == 0) {
          still.push_back(index);
          continue;
        }
        uint64_t kind = rnd.Between(0, 9);
        if (kind < 2) {
          m.Failed(index, now, "timeout");
          continue;
        }
        std::vector<Endpoint> endpoints;
        Answered answered{now, {}};
        for (int id = 0; id < 5; ++id) {
          if (rnd.Between(0, 2) == 0) continue;
          std::string identity = "s" + std::to_string(id) + ".rlog:9091";
          std::vector<std::string> addresses;
          for (int a = 0; a < 3; ++a) {
            if (rnd.Between(0, 1))
              addresses.push_back("10.0." + std::to_string(id) + "." + std::to_string(a) + ":9091");
          }
          if (addresses.empty()) addresses.push_back("10.0." + std::to_string(id) + ".9:9091");
          answered.endpoints[identity] = addresses;
          endpoints.push_back({identity, addresses});
        }
        if (!endpoints.empty()) history[index].push_back(answered);
        m.Resolved(index, now, endpoints);
      }
      in_flight = still;
      m.CheckInvariants();

      for (const Change& c : m.TakeChanges()) {
        switch (c.kind) {
          case Change::Kind::kAdded:
            ASSERT_EQ(replayed.count(c.identity), 0u) << "seed " << seed << ": added twice";
            replayed[c.identity] = c.address;
            break;
          case Change::Kind::kAddressChanged:
            ASSERT_EQ(replayed.count(c.identity), 1u) << "seed " << seed;
            ASSERT_NE(replayed[c.identity], c.address) << "seed " << seed;
            replayed[c.identity] = c.address;
            break;
          case Change::Kind::kRemoved:
            ASSERT_EQ(replayed.erase(c.identity), 1u) << "seed " << seed;
            break;
        }
      }
      ASSERT_EQ(replayed, m.members()) << "seed " << seed << " step " << step;

      std::vector<std::set<std::string>> contributed;
      std::set<std::string> want;
      for (size_t i = 0; i < items.size(); ++i) {
        contributed.push_back(expected(i));
        want.insert(contributed[i].begin(), contributed[i].end());
      }
      std::set<std::string> got;
      for (const auto& [id, address] : m.members()) got.insert(id);
      ASSERT_EQ(got, want) << "seed " << seed << " step " << step;
      // Every address is one the contributing item's latest listing of that identity gave.
      for (const auto& member : m.members()) {
        const std::string& id = member.first;
        const std::string& address = member.second;
        for (size_t i = 0; i < items.size(); ++i) {
          if (contributed[i].count(id) == 0) continue;
          if (items[i].kind == SentinelItem::Kind::kStatic) {
            ASSERT_EQ(address, id);
          } else {
            const std::vector<Answered>& h = history[i];
            auto last = std::find_if(h.rbegin(), h.rend(),
                                     [&](const Answered& a) { return a.endpoints.count(id); });
            const std::vector<std::string>& listed = last->endpoints.at(id);
            ASSERT_NE(std::find(listed.begin(), listed.end(), address), listed.end())
                << "seed " << seed << " " << id;
          }
          break;
        }
      }
    }
  }
}

}  // namespace
}  // namespace rlog::discovery
