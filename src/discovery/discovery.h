// Discovery: the master's view of its sentinels, kept current from the SENTINELS items.
//
// The shell around Membership (the pure rules, see membership.h): one thread of its own resolves
// every dns:/// and srv:/// item with c-ares (CaresResolver), on Membership's schedule, and hands
// each batch of changes to `on_change`. It never blocks a gRPC or HTTP thread: DNS waits happen
// only on the discovery thread.
//
// What the master does with a change (keyed by identity, which never changes for a sentinel):
//   Added{identity, address}          add a sentinel, with its own channel to `address`
//   AddressChanged{identity, address} rebuild that sentinel's channel to the new address
//   Removed{identity}                 the sentinel leaves quorum and write-concern counting
// `address` is "ip:port" ("[v6]:port") for DNS items and "host:port" as written for static ones.
//
// Threads: on_change runs on the thread that calls Start() (the static items, and whatever the
// first round of lookups found within start_wait_ms), then only on the discovery thread; never
// two at once. It must not call Stop(), and Start()'s caller must not hold a lock that on_change
// takes. Start() and Stop() come from one controlling thread (Start at most once);
// RequestRefresh, Members and Items are safe from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "common/thread_annotations.h"
#include "discovery/cares_resolver.h"
#include "discovery/membership.h"

namespace rlog::discovery {

struct DiscoveryOptions {
  // "ip[:port]" of the one DNS server to ask (e.g. "127.0.0.1:5353"); names are then taken as
  // written. Empty: the system's resolver configuration (/etc/resolv.conf search list included).
  std::string dns_server;
  uint64_t refresh_ms = 5000;         // Re-resolve each name this often while it answers.
  uint64_t grace_ms = 30000;          // A sentinel missing from DNS this long leaves.
  uint64_t backoff_initial_ms = 250;  // Retry pacing after a failed lookup (doubles, capped,
  uint64_t backoff_max_ms = 10000;    // with jitter).
  uint64_t min_interval_ms = 500;     // RequestRefresh() never resolves a name more often.
  uint64_t query_timeout_ms = 1000;   // c-ares: first try (doubled on each retry)...
  uint32_t query_tries = 2;           // ...and how many tries.
  uint64_t start_wait_ms = 3000;      // Start() waits this long at most for the first round.
  uint64_t seed = 0;                  // Jitter seed; 0 picks a random one.
};

class Discovery {
 public:
  using OnChange = std::function<void(const std::vector<Change>&)>;

  Discovery(std::vector<std::string> items, DiscoveryOptions options, OnChange on_change);
  ~Discovery();  // Stops.
  Discovery(const Discovery&) = delete;
  Discovery& operator=(const Discovery&) = delete;

  // Parses the items (InvalidArgument names the first bad one), reports the static ones as
  // Added, starts the discovery thread, and waits up to start_wait_ms for every name's first
  // answer or failure, delivering what it found before returning. A name that does not resolve
  // is not an error (DNS failures are temporary); it is retried with backoff.
  Status Start();
  // Stops the thread and abandons lookups in flight; no on_change call after it returns.
  void Stop();
  // Asks for every name to be re-resolved soon, e.g. after a channel reported UNAVAILABLE.
  void RequestRefresh();

  // The current members (identity -> address), as delivered so far.
  std::map<std::string, std::string> Members() const;
  // Per item: attempts, consecutive failures and the last error (for /health and logs).
  std::vector<Membership::ItemStatus> Items() const;

 private:
  void Run();
  void Deliver();
  void Wake();
  Tick Now() const;
  void OnResolved(size_t index, Result<std::vector<Endpoint>> result);

  // Constant after construction.
  const std::vector<std::string> texts_;
  const DiscoveryOptions options_;
  const OnChange on_change_;
  const std::chrono::steady_clock::time_point epoch_;

  // Owned by the discovery thread while it runs (set up by Start, torn down by Stop).
  std::unique_ptr<Membership> membership_;
  std::unique_ptr<CaresResolver> resolver_;
  int wake_fd_ = -1;  // eventfd: Stop() and RequestRefresh() interrupt the poll.
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> refresh_requested_{false};

  mutable Mutex mu_;
  std::condition_variable_any first_round_cv_;
  bool started_ GUARDED_BY(mu_) = false;
  bool first_round_delivered_ GUARDED_BY(mu_) = false;
  std::map<std::string, std::string> members_ GUARDED_BY(mu_);
  std::vector<Membership::ItemStatus> items_ GUARDED_BY(mu_);
};

}  // namespace rlog::discovery
