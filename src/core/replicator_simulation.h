// Test support: a simulated cluster around the master's replication core. Sentinels process the
// core's messages in order, crash (losing their data or not), drop batches, leave and join; the
// master's own fsync lags behind its appends; writes of every concern are parked. After every
// step the core's invariants must hold, every committed write must be held by w members (the
// master counting with its DURABLE position), and the commit id must not pass what a majority
// ever held; Heal() then brings everything back and every member must end with the master's
// whole log, told that all of it is committed, and every write answered.
//
// Where the randomness comes from is the caller's: replicator_test.cc draws from a seeded
// generator, tests/fuzz/replicator_fuzz.cc from the fuzzer's input.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <vector>

#include "common/status.h"
#include "core/replicator.h"

namespace rlog::core::simulation {

// Entry sizes of a fake master log; BatchEnd cuts by them.
class FakeLog : public LogView {
 public:
  void Append(uint64_t bytes) { sizes_.push_back(bytes); }
  LogId last() const { return sizes_.size(); }
  LogId BatchEnd(LogId first, LogId last, uint64_t max_bytes) const override;

 private:
  std::vector<uint64_t> sizes_;
};

class Simulation {
 public:
  // Returns a number in [0, n). n >= 1.
  using Choose = std::function<uint64_t(uint64_t n)>;

  Simulation(ReplicatorOptions options, int sentinels, Choose choose);

  // One random event, then everything the core asks for is carried out; the checks above.
  Status Step();
  // Every sentinel up and reachable, the master's log durable, until every member holds the
  // whole log and no write is parked (bounded); a non-ok Status if that does not happen.
  Status Heal();

 private:
  struct Sim {
    bool member = true;
    bool up = true;
    LogId hwm = 0;
    LogId commit = 0;         // The highest commit id its streams carried (lost with its data).
    uint64_t generation = 0;  // Stream the sentinel is attached to (0: none).
    std::deque<Ready::Send> inbox;
    LogId expect_next_first = 0;  // For the consecutive-batches check on a lossless stream.
    bool lossy_stream = false;
  };
  struct Parked {
    LogId id;
    uint32_t w;
  };

  bool Chance(int percent) { return static_cast<int>(choose_(100)) < percent; }
  Status RandomEvent();
  void Crash(SentinelId s, bool lose_data);
  Status Deliver(SentinelId s);
  Status Drain();
  // The highest id a majority of the members holds now (master durable), as the ever-highest.
  void NoteMajorityHeld();
  Status CheckCommit();

  Choose choose_;
  FakeLog log_;
  Replicator r_;
  LogId master_durable_ = 0;
  LogId majority_held_ever_ = 0;
  std::vector<Sim> sims_;  // Indexed by SentinelId.
  std::map<WriteHandle, Parked> parked_;
};

}  // namespace rlog::core::simulation
