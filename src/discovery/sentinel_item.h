// One item of the master's SENTINELS list, parsed (DESIGN.md, "Discovery"):
//
//   host:port               one static sentinel; gRPC dials "host:port" itself
//   [v6]:port               the same with an IPv6 literal
//   dns:///name:port        every A/AAAA record of name is a sentinel; identity "ip:port"
//   srv:///_grpc._tcp.name  every SRV target is a sentinel; identity "target:port" (the stable
//                           host name, which survives pod IP changes), address its A/AAAA
//
// Pure: no I/O (inet_pton only). Host names are lower-cased and IP literals canonicalised, so one
// sentinel has one spelling whether it came from the config or from DNS.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace rlog::discovery {

struct SentinelItem {
  enum class Kind { kStatic, kDns, kSrv };

  Kind kind = Kind::kStatic;
  std::string text;   // As written, for messages.
  std::string host;   // Name or IP literal (no brackets), or the SRV query name.
  uint16_t port = 0;  // 0 for kSrv (the records carry the ports).

  // kStatic only: the sentinel's identity, which is also the address to dial.
  std::string StaticIdentity() const;
};

// Parses one item. The error is InvalidArgument and names the item and what is wrong with it.
Result<SentinelItem> ParseSentinelItem(std::string_view text);
// Parses every item; the first bad one is the error.
Result<std::vector<SentinelItem>> ParseSentinelItems(const std::vector<std::string>& texts);

// "host:port", with brackets around an IPv6 literal: the form gRPC targets and identities use.
std::string JoinHostPort(std::string_view host, uint16_t port);

// An IP literal with an optional port ("127.0.0.1", "127.0.0.1:53", "[::1]:5353"), the form a DNS
// server address takes. `default_port` applies when none is given.
Result<std::pair<std::string, uint16_t>> ParseIpPort(std::string_view text, uint16_t default_port);

}  // namespace rlog::discovery
