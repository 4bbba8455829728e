// Fuzz target: the master's replication core (core/replicator.h) in the simulated cluster of
// core/replicator_simulation.h, every choice taken from the fuzzer's input instead of a seeded
// generator: the options (window, batch limits, ack clocking, linger, health thresholds), then
// each event (appends and parked writes of every concern, the master's fsync lagging, sentinels
// that crash with or without their data, drop batches, leave and rejoin). The oracle is the
// simulation's: the core's invariants after every step, every committed write held by w members
// (the master by its durable position), consecutive batches on a lossless stream, every write
// answered exactly once, and after healing every member holding the master's whole log.
#include <cstdint>
#include <string>

#include "core/replicator_simulation.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  rlog::fuzz::Input in(data, size);
  rlog::core::ReplicatorOptions o;
  o.batch_max_entries = 1 + static_cast<uint32_t>(in.Int(15));
  o.batch_max_bytes = 1 + in.Int(2000);
  o.window_batches = 1 + static_cast<uint32_t>(in.Int(7));
  o.min_pipelined_batch = 1 + static_cast<uint32_t>(in.Int(15));
  o.linger = in.Int(3);
  o.heartbeat_every = 1 + in.Int(9);
  o.health.suspect_after = 1 + in.Int(20);
  o.health.unhealthy_after = o.health.suspect_after + in.Int(40);
  o.backoff_initial = 1 + in.Int(4);
  o.backoff_max = o.backoff_initial + in.Int(30);
  o.seed = in.Int(255);
  const int sentinels = static_cast<int>(in.Int(4));
  rlog::core::simulation::Simulation sim(o, sentinels, [&](uint64_t n) { return in.Int(n - 1); });
  for (int step = 0; step < 600 && !in.empty(); ++step) {
    const rlog::Status s = sim.Step();
    FUZZ_CHECK(s.ok(), "step " + std::to_string(step) + ": " + s.message());
  }
  const rlog::Status s = sim.Heal();
  FUZZ_CHECK(s.ok(), "heal: " + s.message());
  return 0;
}
