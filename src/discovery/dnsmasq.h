// Dnsmasq: a real DNS server for tests, on 127.0.0.1 and a free port, authoritative for one
// domain (other names under it get NXDOMAIN), answering from files this class writes.
//
// A and AAAA records live in an addn-hosts file that dnsmasq re-reads on SIGHUP (SetHosts); SRV
// records live in its config file, so changing them restarts dnsmasq on the same port
// (Restart). The process dies with the test: it is killed by PID in Stop() and the destructor,
// and PR_SET_PDEATHSIG kills it if the test process dies first. Test-only; not thread-safe.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace rlog::discovery::testing {

struct DnsRecords {
  struct Host {
    std::string name;
    std::string ip;  // IPv4 gives an A record, IPv6 an AAAA record.
  };
  struct Srv {
    std::string service;  // "_grpc._tcp.sentinels.rlog.test"
    std::string target;
    uint16_t port;
  };
  std::vector<Host> hosts;
  std::vector<Srv> srv;
};

class Dnsmasq {
 public:
  static constexpr const char* kDomain = "rlog.test";

  // Whether the dnsmasq binary is installed (tests skip otherwise).
  static bool Available();

  // Files go to `dir`, which must exist and outlive this object.
  explicit Dnsmasq(std::string dir);
  ~Dnsmasq();
  Dnsmasq(const Dnsmasq&) = delete;
  Dnsmasq& operator=(const Dnsmasq&) = delete;

  // Writes the records and starts dnsmasq (on a new free port the first time, then on the same
  // one); returns once it listens, or an error within a few seconds.
  Status Start(const DnsRecords& records);
  // Stops it (SIGTERM, then SIGKILL) and starts it again with `records`.
  Status Restart(const DnsRecords& records);
  // Rewrites the A/AAAA records and sends SIGHUP; dnsmasq picks them up within milliseconds.
  Status SetHosts(const std::vector<DnsRecords::Host>& hosts);
  // Kills the process and waits for it (bounded). Safe to call twice.
  void Stop();

  bool running() const { return pid_ > 0; }
  uint16_t port() const { return port_; }
  // "127.0.0.1:<port>", the form DiscoveryOptions::dns_server takes.
  std::string server() const;
  // What dnsmasq printed (for failure messages).
  std::string Log() const;

 private:
  Status WriteHosts(const std::vector<DnsRecords::Host>& hosts);
  Status WriteConfig(const DnsRecords& records);
  Status StartOnPort(const DnsRecords& records);  // On port_, which is set.
  Status WaitUntilListening(std::chrono::milliseconds timeout);

  const std::string dir_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace rlog::discovery::testing
