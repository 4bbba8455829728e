// Behaviour of the master's replication core, driven by hand-written scenarios and by a seeded
// random simulation that checks the core's invariants after every step.
#include "core/replicator.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <map>
#include <random>
#include <set>
#include <vector>

#include "core/replicator_simulation.h"

namespace rlog::core {
namespace {

using simulation::FakeLog;

ReplicatorOptions SmallOptions() {
  ReplicatorOptions o;
  o.batch_max_entries = 4;
  o.batch_max_bytes = 1000;
  o.window_batches = 2;
  o.min_pipelined_batch = 1;
  o.heartbeat_every = 5;
  o.health = {10, 30};
  o.backoff_initial = 2;
  o.backoff_max = 16;
  return o;
}

// Appends n entries of `bytes` to the log and tells the core (in memory: durable at once).
void AppendN(Replicator& r, FakeLog& log, int n, uint64_t bytes = 10) {
  for (int i = 0; i < n; ++i) log.Append(bytes);
  r.Appended(log.last());
  r.LocalDurable(log.last());
}

// The heartbeat that tells an idle sentinel the commit id moved to `commit`; it is written and
// acknowledged (the sentinel holds `held`).
void ExpectCommitHeartbeat(Replicator& r, SentinelId s, uint64_t gen, LogId commit, LogId held) {
  Ready ready = r.TakeReady();
  ASSERT_EQ(ready.sends.size(), 1u);
  EXPECT_TRUE(ready.sends[0].heartbeat());
  EXPECT_EQ(ready.sends[0].commit, commit);
  r.WriteDone(s, gen);
  r.Acked(s, gen, ready.sends[0].seq, held);
}

// Ticks until the core asks to connect to `s`; returns the generation.
uint64_t ConnectOf(Replicator& r, SentinelId s) {
  for (int i = 0; i < 100; ++i) {
    Ready ready = r.TakeReady();
    for (const auto& c : ready.connects) {
      if (c.sentinel == s) return c.generation;
    }
    r.OnTick();
  }
  ADD_FAILURE() << "no connect for sentinel " << s;
  return 0;
}

TEST(Replicator, ConnectsToEverySentinelOnFirstTick) {
  FakeLog log;
  Replicator r(SmallOptions(), &log);
  r.AddSentinel("s1");
  r.AddSentinel("s2");
  r.OnTick();
  Ready ready = r.TakeReady();
  ASSERT_EQ(ready.connects.size(), 2u);
  EXPECT_EQ(ready.connects[0].generation, 1u);
}

TEST(Replicator, BatchesAreConsecutiveAndCappedByEntriesAndBytes) {
  FakeLog log;
  Replicator r(SmallOptions(), &log);
  SentinelId s = r.AddSentinel("s1");
  uint64_t gen = ConnectOf(r, s);
  r.Connected(s, gen, 0);
  AppendN(r, log, 3, 10);
  AppendN(r, log, 3, 600);  // Ids 4..6 are big: 4 fits after 1..3, 5 does not.
  Ready ready = r.TakeReady();
  ASSERT_EQ(ready.sends.size(), 1u);
  EXPECT_EQ(ready.sends[0].first, 1u);
  EXPECT_EQ(ready.sends[0].last, 4u);
  EXPECT_FALSE(ready.sends[0].pipelined);  // Nothing unacknowledged before it.
  // One write outstanding per stream: nothing more until WriteDone.
  EXPECT_TRUE(r.TakeReady().sends.empty());
  r.WriteDone(s, gen);
  ready = r.TakeReady();
  ASSERT_EQ(ready.sends.size(), 1u);
  EXPECT_EQ(ready.sends[0].first, 5u);
  EXPECT_EQ(ready.sends[0].last, 5u);
  EXPECT_TRUE(ready.sends[0].pipelined);  // 1..4 is not acknowledged yet.
  // Window of 2 unacknowledged batches is full.
  r.WriteDone(s, gen);
  EXPECT_TRUE(r.TakeReady().sends.empty());
  r.Acked(s, gen, 1, 4);
  ready = r.TakeReady();
  ASSERT_EQ(ready.sends.size(), 1u);
  EXPECT_EQ(ready.sends[0].first, 6u);
  EXPECT_TRUE(ready.sends[0].pipelined);  // 5 is not.
  r.WriteDone(s, gen);
  r.Acked(s, gen, 3, 6);
  AppendN(r, log, 1, 10);
  ready = r.TakeReady();
  ASSERT_EQ(ready.sends.size(), 1u);
  EXPECT_EQ(ready.sends[0].first, 7u);
  EXPECT_FALSE(ready.sends[0].pipelined);  // Everything before it is acknowledged.
  ASSERT_TRUE(r.CheckInvariants().ok()) << r.CheckInvariants().message();
}

TEST(Replicator, ResumesFromSentinelReportedPositionAfterReconnect) {
  FakeLog log;
  Replicator r(SmallOptions(), &log);
  SentinelId s = r.AddSentinel("s1");
  AppendN(r, log, 10);
  uint64_t gen = ConnectOf(r, s);
  r.Connected(s, gen, 7);  // It already holds 1..7 (e.g. from before a restart).
  Ready ready = r.TakeReady();
  ASSERT_EQ(ready.sends.size(), 1u);
  EXPECT_EQ(ready.sends[0].first, 8u);
  EXPECT_EQ(ready.sends[0].last, 10u);
}

TEST(Replicator, AckShowingLostBatchRewindsToSentinelPosition) {
  FakeLog log;
  Replicator r(SmallOptions(), &log);
  SentinelId s = r.AddSentinel("s1");
  uint64_t gen = ConnectOf(r, s);
  r.Connected(s, gen, 0);
  AppendN(r, log, 8);
  ASSERT_EQ(r.TakeReady().sends.at(0).last, 4u);  // seq 1: 1..4
  r.WriteDone(s, gen);
  ASSERT_EQ(r.TakeReady().sends.at(0).last, 8u);  // seq 2: 5..8
  r.WriteDone(s, gen);
  // The sentinel processed seq 2 but holds only 1..4: batch 5..8 was lost on its side.
  r.Acked(s, gen, 2, 4);
  Ready ready = r.TakeReady();
  ASSERT_EQ(ready.sends.size(), 1u);
  EXPECT_EQ(ready.sends[0].first, 5u);
  EXPECT_EQ(ready.sends[0].last, 8u);
}

TEST(Replicator, StaleGenerationEventsAreIgnored) {
  FakeLog log;
  Replicator r(SmallOptions(), &log);
  SentinelId s = r.AddSentinel("s1");
  AppendN(r, log, 3);
  uint64_t gen = ConnectOf(r, s);
  r.Connected(s, gen, 0);
  r.Disconnected(s, gen);
  uint64_t gen2 = ConnectOf(r, s);
  ASSERT_GT(gen2, gen);
  r.Acked(s, gen, 1, 3);  // From the dead stream.
  r.Connected(s, gen, 3);
  EXPECT_EQ(r.Sentinels()[0].acked, 0u);
  EXPECT_FALSE(r.Sentinels()[0].connected);
}

TEST(Replicator, W3WaitsWhileSentinelDownAndW1DoesNot) {
  FakeLog log;
  Replicator r(SmallOptions(), &log);
  SentinelId s1 = r.AddSentinel("s1");
  r.AddSentinel("s2");
  uint64_t gen = ConnectOf(r, s1);
  r.Connected(s1, gen, 0);
  AppendN(r, log, 1);
  WriteHandle w3 = r.ParkWrite(1, 3, 1000);
  AppendN(r, log, 1);
  WriteHandle w1 = r.ParkWrite(2, 1, 1000);
  Ready ready = r.TakeReady();
  ASSERT_EQ(ready.completions.size(), 1u);
  EXPECT_EQ(ready.completions[0].handle, w1);
  r.WriteDone(s1, gen);
  r.Acked(s1, gen, 1, 2);
  EXPECT_TRUE(r.TakeReady().completions.empty());  // s1 + master = 2 < 3.
  EXPECT_EQ(r.parked_writes(), 1u);
  (void)w3;
}

TEST(Replicator, ParkedWriteCompletesWhenWthPositionReachesIt) {
  FakeLog log;
  Replicator r(SmallOptions(), &log);
  SentinelId s1 = r.AddSentinel("s1");
  SentinelId s2 = r.AddSentinel("s2");
  r.OnTick();
  Ready first = r.TakeReady();
  ASSERT_EQ(first.connects.size(), 2u);
  uint64_t g1 = first.connects[0].generation;
  uint64_t g2 = first.connects[1].generation;
  r.Connected(s1, g1, 0);
  AppendN(r, log, 5);
  WriteHandle h = r.ParkWrite(5, 3, 1000);
  r.Acked(s1, g1, 1, 5);
  EXPECT_TRUE(r.TakeReady().completions.empty());
  r.Connected(s2, g2, 4);
  EXPECT_TRUE(r.TakeReady().completions.empty());
  r.Acked(s2, g2, 1, 5);
  Ready ready = r.TakeReady();
  ASSERT_EQ(ready.completions.size(), 1u);
  EXPECT_EQ(ready.completions[0].handle, h);
  EXPECT_EQ(ready.completions[0].outcome, WriteOutcome::kCommitted);
}

// "majority" and "all" are resolved against the cluster when the write completes, not when it
// arrived: a "majority" write parked in a cluster of 2 that grows to 6 needs 4 nodes, and an
// "all" write needs every node there is now. A number stays a number.
TEST(Replicator, MajorityAndAllWaitersFollowTheClusterSize) {
  FakeLog log;
  Replicator r(SmallOptions(), &log);
  SentinelId s1 = r.AddSentinel("s1");
  uint64_t g1 = ConnectOf(r, s1);
  AppendN(r, log, 1);
  WriteHandle majority = r.ParkWrite(1, 2, 1000, Replicator::Concern::kMajority);
  WriteHandle all = r.ParkWrite(1, 2, 1000, Replicator::Concern::kAll);
  WriteHandle two = r.ParkWrite(1, 2, 1000);
  std::vector<SentinelId> added;
  std::vector<uint64_t> gens;
  for (const char* name : {"s2", "s3", "s4", "s5"}) added.push_back(r.AddSentinel(name));
  std::map<SentinelId, uint64_t> connects;
  for (int i = 0; i < 100 && connects.size() < added.size(); ++i) {
    r.OnTick();
    Ready ready = r.TakeReady();
    ASSERT_TRUE(ready.completions.empty());
    for (const auto& c : ready.connects) connects[c.sentinel] = c.generation;
  }
  for (SentinelId s : added) gens.push_back(connects.at(s));
  ASSERT_EQ(r.cluster_size(), 6u);

  r.Connected(s1, g1, 1);  // Master and s1: the 2 the writes were given on arrival.
  Ready ready = r.TakeReady();
  ASSERT_EQ(ready.completions.size(), 1u);
  EXPECT_EQ(ready.completions[0].handle, two);
  EXPECT_EQ(ready.completions[0].w, 2u);
  r.Connected(added[0], gens[0], 1);
  EXPECT_TRUE(r.TakeReady().completions.empty());  // 3 of 6.
  r.Connected(added[1], gens[1], 1);
  ready = r.TakeReady();
  ASSERT_EQ(ready.completions.size(), 1u);  // 4 of 6: a majority.
  EXPECT_EQ(ready.completions[0].handle, majority);
  EXPECT_EQ(ready.completions[0].w, 4u);
  ASSERT_TRUE(r.CheckInvariants().ok()) << r.CheckInvariants().message();

  // The two sentinels that never held it leave: "all" of the cluster of 4 left is every node
  // that holds it, and it completes with that w.
  r.RemoveSentinel(added[2]);
  EXPECT_TRUE(r.TakeReady().completions.empty());  // 4 of 5.
  r.RemoveSentinel(added[3]);
  ASSERT_EQ(r.cluster_size(), 4u);
  ready = r.TakeReady();
  ASSERT_EQ(ready.completions.size(), 1u);
  EXPECT_EQ(ready.completions[0].handle, all);
  EXPECT_EQ(ready.completions[0].w, 4u);
  EXPECT_EQ(r.parked_writes(), 0u);
  ASSERT_TRUE(r.CheckInvariants().ok()) << r.CheckInvariants().message();
}

// Connects every sentinel of `r` (ticking until it asks), each holding what `held` says.
std::vector<uint64_t> ConnectAll(Replicator& r, const std::vector<LogId>& held) {
  std::vector<uint64_t> gens(held.size(), 0);
  for (int i = 0; i < 100; ++i) {
    for (const auto& c : r.TakeReady().connects) gens[c.sentinel] = c.generation;
    if (std::find(gens.begin(), gens.end(), 0u) == gens.end()) break;
    r.OnTick();
  }
  for (SentinelId s = 0; s < held.size(); ++s) r.Connected(s, gens[s], held[s]);
  return gens;
}

TEST(Replicator, CommitIdIsWhatAMajorityHoldsAndIdleStreamsAreToldAtOnce) {
  FakeLog log;
  ReplicatorOptions o = SmallOptions();
  o.batch_max_entries = 100;
  Replicator r(o, &log);
  for (int i = 0; i < 4; ++i) r.AddSentinel("s" + std::to_string(i + 1));  // 5 nodes: 3 needed.
  std::vector<uint64_t> gens = ConnectAll(r, {0, 6, 0, 0});  // s2 holds 1..6 from before.
  AppendN(r, log, 10);
  Ready ready = r.TakeReady();
  ASSERT_EQ(ready.sends.size(), 4u);
  for (const auto& send : ready.sends) {
    EXPECT_EQ(send.commit, 0u);  // Only the master holds 7..10, s2 1..6.
    r.WriteDone(send.sentinel, send.generation);
  }
  r.Acked(0, gens[0], 1, 10);
  EXPECT_EQ(r.commit_id(), 6u);  // The master, s1 and s2 hold 1..6.
  // s1 has nothing in flight: it is told at once; the others hear it with their acks.
  ready = r.TakeReady();
  ASSERT_EQ(ready.sends.size(), 1u);
  EXPECT_EQ(ready.sends[0].sentinel, 0u);
  EXPECT_TRUE(ready.sends[0].heartbeat());
  EXPECT_EQ(ready.sends[0].commit, 6u);
  r.WriteDone(0, gens[0]);
  r.Acked(0, gens[0], ready.sends[0].seq, 10);
  EXPECT_TRUE(r.TakeReady().sends.empty());  // Told once.
  r.Acked(2, gens[2], 1, 10);
  EXPECT_EQ(r.commit_id(), 10u);
  ready = r.TakeReady();
  ASSERT_EQ(ready.sends.size(), 2u);  // s1 and s3; s2's and s4's batches are still in flight.
  for (const auto& send : ready.sends) {
    EXPECT_NE(send.sentinel, 1u);
    EXPECT_NE(send.sentinel, 3u);
    EXPECT_EQ(send.commit, 10u);
  }

  // It never goes back, though the sentinels that made it go away.
  r.Disconnected(0, gens[0]);
  r.Disconnected(2, gens[2]);
  EXPECT_EQ(r.CommittedAt(3), 0u);
  EXPECT_EQ(r.commit_id(), 10u);
  ASSERT_TRUE(r.CheckInvariants().ok()) << r.CheckInvariants().message();
}

TEST(Replicator, CommitIdCountsOnlyPositionsThatReachTheMastersEpoch) {
  FakeLog log;
  Replicator r(SmallOptions(), &log);
  r.AddSentinel("s1");
  r.AddSentinel("s2");
  AppendN(r, log, 7);  // Recovered from an earlier epoch.
  r.EpochStarted(8);
  std::vector<uint64_t> gens = ConnectAll(r, {6, 5});
  // A majority holds 1..6, but short of where this epoch begins (no node there has its mark):
  // copies of older epochs, not committed by counting.
  EXPECT_EQ(r.CommittedAt(2), 6u);
  EXPECT_EQ(r.commit_id(), 0u);
  // A sentinel learned from an earlier master that 1..4 are committed.
  r.KnownCommitted(4);
  EXPECT_EQ(r.commit_id(), 4u);
  // A majority reaching the epoch's start (7: its mark) commits everything before it.
  Ready ready = r.TakeReady();
  for (const auto& send : ready.sends) r.WriteDone(send.sentinel, send.generation);
  r.Acked(1, gens[1], ready.sends[1].seq, 6);
  EXPECT_EQ(r.commit_id(), 4u);
  r.Acked(0, gens[0], ready.sends[0].seq, 7);
  EXPECT_EQ(r.commit_id(), 7u);
  r.KnownCommitted(99);  // Never past the log.
  EXPECT_EQ(r.commit_id(), 7u);
  ASSERT_TRUE(r.CheckInvariants().ok()) << r.CheckInvariants().message();
}

TEST(Replicator, ParkedWriteTimesOutAfterItsTicks) {
  FakeLog log;
  Replicator r(SmallOptions(), &log);
  r.AddSentinel("s1");
  AppendN(r, log, 1);
  WriteHandle h = r.ParkWrite(1, 2, 3);
  for (int i = 0; i < 2; ++i) r.OnTick();
  for (const auto& c : r.TakeReady().completions) ADD_FAILURE() << "early completion " << c.handle;
  r.OnTick();
  Ready ready = r.TakeReady();
  ASSERT_EQ(ready.completions.size(), 1u);
  EXPECT_EQ(ready.completions[0].handle, h);
  EXPECT_EQ(ready.completions[0].outcome, WriteOutcome::kTimedOut);
  EXPECT_EQ(r.parked_writes(), 0u);
}

TEST(Replicator, HealthGoesSuspectedThenUnhealthyAndBack) {
  FakeLog log;
  Replicator r(SmallOptions(), &log);  // suspect after 10, unhealthy after 30 ticks.
  SentinelId s = r.AddSentinel("s1");
  uint64_t gen = ConnectOf(r, s);
  r.Connected(s, gen, 0);
  EXPECT_EQ(r.Sentinels()[0].health, Health::kHealthy);
  (void)r.TakeReady();
  std::vector<Health> seen;
  for (int i = 0; i < 40; ++i) {
    r.OnTick();
    for (const auto& c : r.TakeReady().status_changes) seen.push_back(c.to);
  }
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0], Health::kSuspected);
  EXPECT_EQ(seen[1], Health::kUnhealthy);
}

TEST(Replicator, SilentStreamIsCancelledAndRetried) {
  FakeLog log;
  Replicator r(SmallOptions(), &log);
  SentinelId s = r.AddSentinel("s1");
  uint64_t gen = ConnectOf(r, s);
  r.Connected(s, gen, 0);
  bool cancelled = false;
  for (int i = 0; i < 40 && !cancelled; ++i) {
    r.OnTick();
    cancelled = !r.TakeReady().cancels.empty();
  }
  ASSERT_TRUE(cancelled);
  r.Disconnected(s, gen);
  EXPECT_GT(ConnectOf(r, s), gen);
}

TEST(Replicator, ReadOnlyWithoutMajorityAndWritableWhenItReturns) {
  FakeLog log;
  Replicator r(SmallOptions(), &log);
  SentinelId s1 = r.AddSentinel("s1");
  r.AddSentinel("s2");
  EXPECT_TRUE(r.read_only());  // Nobody connected yet: 1 of 3.
  uint64_t gen = ConnectOf(r, s1);
  r.Connected(s1, gen, 0);
  EXPECT_FALSE(r.read_only());
  Ready ready = r.TakeReady();
  ASSERT_TRUE(ready.read_only.has_value());
  EXPECT_FALSE(*ready.read_only);
  // A dropped stream is Suspected first: still counted, so one reconnect does not flap.
  r.Disconnected(s1, gen);
  EXPECT_FALSE(r.read_only());
  bool turned_read_only = false;
  for (int i = 0; i < 40 && !turned_read_only; ++i) {
    r.OnTick();
    turned_read_only = r.TakeReady().read_only == std::optional<bool>(true);
  }
  EXPECT_TRUE(turned_read_only);
  EXPECT_TRUE(r.read_only());
}

// Linger: with no write of w >= 2 waiting, small writes wait for company until a tick passes or
// min_pipelined_batch of them wait; a w >= 2 write sends them at once.
TEST(Replicator, LingerHoldsUnwaitedEntriesUntilTickBatchOrRemoteWaiter) {
  FakeLog log;
  ReplicatorOptions o = SmallOptions();
  o.batch_max_entries = 100;
  o.window_batches = 4;
  o.min_pipelined_batch = 8;
  o.linger = 2;
  Replicator r(o, &log);
  SentinelId s = r.AddSentinel("s1");
  uint64_t gen = ConnectOf(r, s);
  r.Connected(s, gen, 0);
  ASSERT_TRUE(r.TakeReady().sends.empty());

  // w=1 writes: held for up to 2 ticks.
  AppendN(r, log, 3);
  EXPECT_EQ(r.ParkWrite(3, 1, 100), 1u);
  Ready ready = r.TakeReady();
  EXPECT_EQ(ready.completions.size(), 1u);  // w=1 does not wait for the sentinel...
  EXPECT_TRUE(ready.sends.empty());         // ...so neither does replication.
  r.OnTick();
  EXPECT_TRUE(r.TakeReady().sends.empty());
  r.OnTick();
  ready = r.TakeReady();
  ASSERT_EQ(ready.sends.size(), 1u);
  EXPECT_EQ(ready.sends[0].first, 1u);
  EXPECT_EQ(ready.sends[0].last, 3u);
  r.WriteDone(s, gen);
  r.Acked(s, gen, ready.sends[0].seq, 3);
  ExpectCommitHeartbeat(r, s, gen, 3, 3);

  // min_pipelined_batch entries go at once.
  AppendN(r, log, 7);
  EXPECT_TRUE(r.TakeReady().sends.empty());
  AppendN(r, log, 1);
  ready = r.TakeReady();
  ASSERT_EQ(ready.sends.size(), 1u);
  EXPECT_EQ(ready.sends[0].first, 4u);
  EXPECT_EQ(ready.sends[0].last, 11u);
  r.WriteDone(s, gen);
  r.Acked(s, gen, ready.sends[0].seq, 11);
  ExpectCommitHeartbeat(r, s, gen, 11, 11);

  // A w=2 write is waited on: it and the lingering entries before it go at once.
  AppendN(r, log, 2);
  EXPECT_TRUE(r.TakeReady().sends.empty());
  AppendN(r, log, 1);
  r.ParkWrite(14, 2, 100);
  ready = r.TakeReady();
  ASSERT_EQ(ready.sends.size(), 1u);
  EXPECT_EQ(ready.sends[0].first, 12u);
  EXPECT_EQ(ready.sends[0].last, 14u);
  EXPECT_TRUE(ready.completions.empty());
  r.WriteDone(s, gen);
  r.Acked(s, gen, ready.sends[0].seq, 14);
  ready = r.TakeReady();
  ASSERT_EQ(ready.completions.size(), 1u);
  EXPECT_EQ(ready.completions[0].id, 14u);
  ASSERT_EQ(ready.sends.size(), 1u);  // The commit id moved to 14.
  EXPECT_EQ(ready.sends[0].commit, 14u);
  r.WriteDone(s, gen);
  r.Acked(s, gen, ready.sends[0].seq, 14);

  // Once that write is sent, w=1 entries linger again.
  AppendN(r, log, 1);
  EXPECT_TRUE(r.TakeReady().sends.empty());

  // A lingering entry carries the commit id its ack moved: no heartbeat of its own for it.
  r.OnTick();
  r.OnTick();
  ready = r.TakeReady();
  ASSERT_EQ(ready.sends.size(), 1u);
  EXPECT_EQ(ready.sends[0].first, 15u);
  r.WriteDone(s, gen);
  AppendN(r, log, 1);  // 16 waits behind batch 15.
  r.Acked(s, gen, ready.sends[0].seq, 15);
  EXPECT_EQ(r.commit_id(), 15u);
  EXPECT_TRUE(r.TakeReady().sends.empty());
  r.OnTick();
  r.OnTick();
  ready = r.TakeReady();
  ASSERT_EQ(ready.sends.size(), 1u);
  EXPECT_EQ(ready.sends[0].first, 16u);
  EXPECT_EQ(ready.sends[0].commit, 15u);
  ASSERT_TRUE(r.CheckInvariants().ok()) << r.CheckInvariants().message();
}

TEST(Replicator, LingerDoesNotDelayWhatAReconnectingSentinelLacks) {
  FakeLog log;
  ReplicatorOptions o = SmallOptions();
  o.batch_max_entries = 100;
  o.min_pipelined_batch = 8;
  o.linger = 5;
  Replicator r(o, &log);
  SentinelId s = r.AddSentinel("s1");
  AppendN(r, log, 3);  // Written before the sentinel was connected.
  uint64_t gen = ConnectOf(r, s);
  r.Connected(s, gen, 1);
  Ready ready = r.TakeReady();
  ASSERT_EQ(ready.sends.size(), 1u);
  EXPECT_EQ(ready.sends[0].first, 2u);
  EXPECT_EQ(ready.sends[0].last, 3u);
}

TEST(Replicator, HeartbeatsOnIdleStream) {
  FakeLog log;
  Replicator r(SmallOptions(), &log);
  SentinelId s = r.AddSentinel("s1");
  uint64_t gen = ConnectOf(r, s);
  r.Connected(s, gen, 0);
  int heartbeats = 0;
  for (int i = 0; i < 20; ++i) {
    r.OnTick();
    for (const auto& send : r.TakeReady().sends) {
      EXPECT_TRUE(send.heartbeat());
      ++heartbeats;
      r.WriteDone(s, gen);
      r.Acked(s, gen, send.seq, 0);
    }
  }
  EXPECT_GE(heartbeats, 3);
  EXPECT_LE(heartbeats, 5);
}

TEST(Replicator, RemovedSentinelNoLongerCountsTowardConcern) {
  FakeLog log;
  Replicator r(SmallOptions(), &log);
  SentinelId s1 = r.AddSentinel("s1");
  SentinelId s2 = r.AddSentinel("s2");
  uint64_t g1 = ConnectOf(r, s1);
  r.Connected(s1, g1, 0);
  AppendN(r, log, 1);
  r.Acked(s1, g1, 0, 1);
  WriteHandle h = r.ParkWrite(1, 3, 1000);
  EXPECT_TRUE(r.TakeReady().completions.empty());
  r.RemoveSentinel(s2);
  EXPECT_EQ(r.cluster_size(), 2u);
  // w=3 can no longer be met by anyone; it stays parked until its deadline.
  EXPECT_EQ(r.parked_writes(), 1u);
  (void)h;
}

// Two names of one sentinel: the duplicate counts toward neither the cluster size nor the
// majority, so the master and the one real sentinel are a majority, and "all" means those two.
TEST(Replicator, DuplicateSentinelCountsTowardNothingUntilItIsNoLongerOne) {
  FakeLog log;
  Replicator r(SmallOptions(), &log);
  SentinelId s1 = r.AddSentinel("127.0.0.1:9091");
  SentinelId dup = r.AddSentinel("localhost:9091");
  SentinelId s2 = r.AddSentinel("s2");
  EXPECT_EQ(r.cluster_size(), 4u);
  uint64_t g1 = ConnectOf(r, s1);
  r.Connected(s1, g1, 0);
  r.OnTick();
  r.TakeReady();
  EXPECT_TRUE(r.read_only()) << "master and s1: 2 of 4";
  r.SetDuplicate(dup, true);
  EXPECT_EQ(r.cluster_size(), 3u);
  EXPECT_EQ(r.majority(), 2u);
  r.TakeReady();
  EXPECT_FALSE(r.read_only()) << "master and s1: 2 of 3";
  AppendN(r, log, 1);
  r.LocalDurable(1);
  r.Acked(s1, g1, 0, 1);
  WriteHandle h = r.ParkWrite(1, 2, 1000);
  auto done = r.TakeReady().completions;
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].handle, h);
  EXPECT_EQ(done[0].outcome, WriteOutcome::kCommitted);
  r.SetDuplicate(dup, false);  // It reaches a process of its own after all.
  EXPECT_EQ(r.cluster_size(), 4u);
  (void)s2;
}

// A stream of the second name that was connected (and acked) before the sentinel refused it is
// one node's copy already counted under the first name: it must not make a second.
TEST(Replicator, AConnectedDuplicateAcksNothing) {
  FakeLog log;
  Replicator r(SmallOptions(), &log);
  SentinelId s1 = r.AddSentinel("127.0.0.1:9091");
  SentinelId dup = r.AddSentinel("localhost:9091");
  r.AddSentinel("s2");
  uint64_t g1 = 0, gd = 0;
  for (int i = 0; i < 100 && (g1 == 0 || gd == 0); ++i, r.OnTick()) {
    for (const auto& c : r.TakeReady().connects) {
      if (c.sentinel == s1) g1 = c.generation;
      if (c.sentinel == dup) gd = c.generation;
    }
  }
  ASSERT_NE(g1, 0u);
  ASSERT_NE(gd, 0u);
  r.Connected(s1, g1, 0);
  r.Connected(dup, gd, 0);
  AppendN(r, log, 1);
  r.LocalDurable(1);
  r.Acked(s1, g1, 0, 1);
  r.Acked(dup, gd, 0, 1);
  r.SetDuplicate(dup, true);
  EXPECT_EQ(r.cluster_size(), 3u);
  WriteHandle h = r.ParkWrite(1, 3, 1000);
  for (const auto& c : r.TakeReady().completions) EXPECT_NE(c.handle, h) << "w=3 with two nodes";
  EXPECT_TRUE(r.CheckInvariants().ok()) << r.CheckInvariants().message();
}

// ----------------------------------------------------------------------------------------
// Seeded random simulation (replicator_simulation.h): sentinels that process messages in order,
// crash, lose data, drop batches, leave and join, and a master whose fsync lags. After every step
// the core's invariants hold and every committed write is held by w members; in the end every
// member holds exactly the master's log. tests/fuzz/replicator_fuzz.cc runs the same simulation
// with the fuzzer's choices.

ReplicatorOptions SimulationOptions(uint64_t seed) {
  ReplicatorOptions o = SmallOptions();
  o.seed = seed;
  o.window_batches = 1 + seed % 4;
  o.min_pipelined_batch = 1 + static_cast<uint32_t>(seed % 3) * 2;
  o.linger = (seed / 3) % 3;  // 0 (off), 1 or 2 ticks.
  return o;
}

TEST(ReplicatorSimulation, InvariantsHoldAndEverySentinelConvergesOverSeededRuns) {
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937_64 rng(seed);
    simulation::Simulation sim(SimulationOptions(seed), 3, [&](uint64_t n) { return rng() % n; });
    for (int step = 0; step < 400; ++step) {
      Status st = sim.Step();
      ASSERT_TRUE(st.ok()) << "step " << step << ": " << st.message();
    }
    Status st = sim.Heal();
    ASSERT_TRUE(st.ok()) << st.message();
  }
}

}  // namespace
}  // namespace rlog::core
