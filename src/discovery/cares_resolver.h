// CaresResolver: asynchronous DNS lookups of SENTINELS items with c-ares, driven by Poll().
//
// - dns:///name:port: one getaddrinfo (A and AAAA); every address is one Endpoint "ip:port".
// - srv:///name: an SRV query, then a getaddrinfo per target; one Endpoint per target with
//   identity "target:port" and its addresses (none if that target's lookup failed).
//
// With `dns_server` set, only that server is asked and names are taken as written (no search
// list, no /etc/hosts): tests point it at dnsmasq on a loopback port. Without it, c-ares reads
// /etc/resolv.conf and /etc/hosts like the system resolver.
//
// Not thread-safe: one thread calls Resolve() and Poll(); `done` runs inside Poll() (or inside
// Resolve() when the answer is known at once). The destructor drops unfinished lookups without
// calling their `done`. c-ares types stay out of this header.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "discovery/membership.h"
#include "discovery/sentinel_item.h"

struct ares_channeldata;
struct ares_addrinfo;

namespace rlog::discovery {

struct ResolverOptions {
  std::string dns_server;      // "ip[:port]"; empty: the system's resolver configuration.
  uint64_t timeout_ms = 1000;  // First try; c-ares doubles it on each retry.
  uint32_t tries = 2;
};

class CaresResolver {
 public:
  // An answer, or why there is none: NotFound (NXDOMAIN, no records), Timeout, Unavailable.
  using Done = std::function<void(Result<std::vector<Endpoint>>)>;

  // InvalidArgument names a bad dns_server; Unavailable if c-ares cannot start.
  static Result<std::unique_ptr<CaresResolver>> Create(const ResolverOptions& options);
  ~CaresResolver();
  CaresResolver(const CaresResolver&) = delete;
  CaresResolver& operator=(const CaresResolver&) = delete;

  // Starts resolving a kDns or kSrv item; `done` is called exactly once (unless destroyed first).
  void Resolve(const SentinelItem& item, Done done);

  // Waits up to `max_wait` for DNS traffic, c-ares timeouts, or `wake_fd` (if >= 0) to become
  // readable, then runs the callbacks of finished lookups. Returns whether `wake_fd` is readable.
  bool Poll(std::chrono::milliseconds max_wait, int wake_fd = -1);

  // Lookups started and not yet finished.
  size_t pending() const { return pending_; }

 private:
  struct Lookup;
  struct HostQuery;

  explicit CaresResolver(ares_channeldata* channel) : channel_(channel) {}
  void StartHostQuery(Lookup* lookup, const std::string& name, uint16_t port, size_t target);
  void Release(Lookup* lookup);
  static void OnSrv(void* arg, int status, int timeouts, unsigned char* abuf, int alen);
  static void OnHost(void* arg, int status, int timeouts, ::ares_addrinfo* result);

  ares_channeldata* channel_;
  bool destroying_ = false;
  size_t pending_ = 0;
};

}  // namespace rlog::discovery
