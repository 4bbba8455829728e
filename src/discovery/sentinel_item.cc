#include "discovery/sentinel_item.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cctype>
#include <optional>

namespace rlog::discovery {
namespace {

constexpr std::string_view kDnsScheme = "dns://";
constexpr std::string_view kSrvScheme = "srv://";

Status Bad(std::string_view item, std::string_view why) {
  return Status::InvalidArgument("sentinel item \"" + std::string(item) +
                                 "\": " + std::string(why));
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::optional<uint16_t> ParsePort(std::string_view s) {
  if (s.empty() || s.size() > 5) return std::nullopt;
  uint32_t port = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    port = port * 10 + static_cast<uint32_t>(c - '0');
  }
  if (port < 1 || port > 65535) return std::nullopt;
  return static_cast<uint16_t>(port);
}

// The canonical text of an IP literal, or nullopt if `s` is not one.
std::optional<std::string> CanonicalIp(std::string_view s, int family) {
  std::string text(s);
  unsigned char buf[sizeof(in6_addr)];
  if (inet_pton(family, text.c_str(), buf) != 1) return std::nullopt;
  char out[INET6_ADDRSTRLEN];
  if (inet_ntop(family, buf, out, sizeof(out)) == nullptr) return std::nullopt;
  return std::string(out);
}

// A DNS name: dot-separated labels of letters, digits, '-' and '_' (SRV names start with
// "_grpc._tcp"), 1..63 characters each, at most 253 in all; one trailing dot allowed.
bool IsDnsName(std::string_view s) {
  if (!s.empty() && s.back() == '.') s.remove_suffix(1);
  if (s.empty() || s.size() > 253) return false;
  while (true) {
    size_t dot = s.find('.');
    std::string_view label = s.substr(0, dot);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
      return false;
    }
    for (char c : label) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') return false;
    }
    if (dot == std::string_view::npos) return true;
    s.remove_prefix(dot + 1);
  }
}

// Splits "host:port" / "[v6]:port"; `host` comes back without brackets, canonical and lower-case.
Status SplitHostPort(std::string_view item, std::string_view s, std::string* host, uint16_t* port) {
  size_t colon = s.rfind(':');
  if (colon == std::string_view::npos) return Bad(item, "missing \":port\"");
  std::string_view h = s.substr(0, colon);
  std::optional<uint16_t> p = ParsePort(s.substr(colon + 1));
  if (!p) return Bad(item, "the port must be a number in 1..65535");
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') {
    std::optional<std::string> ip = CanonicalIp(h.substr(1, h.size() - 2), AF_INET6);
    if (!ip) return Bad(item, "not an IPv6 address inside [ ]");
    *host = *ip;
  } else if (h.find(':') != std::string_view::npos) {
    return Bad(item, "an IPv6 address needs brackets, as in [::1]:9091");
  } else if (std::optional<std::string> ip = CanonicalIp(h, AF_INET)) {
    *host = *ip;
  } else if (IsDnsName(h)) {
    *host = Lower(h);  // A trailing dot (an absolute name: no search list) is kept.
  } else {
    return Bad(item, "not a host name or IP address before \":port\"");
  }
  *port = *p;
  return Status::Ok();
}

// After "dns://" or "srv://": the rest must start with "/" (an empty authority). A DNS server
// given in the URI would be per item; rlog sets one for all items in the discovery options.
Status StripEmptyAuthority(std::string_view item, std::string_view* rest) {
  if (rest->empty() || rest->front() != '/') {
    return Bad(item,
               "a DNS server in the URI (scheme://server/name) is not supported; write three "
               "slashes and set the DNS server in the configuration");
  }
  rest->remove_prefix(1);
  return Status::Ok();
}

}  // namespace

std::string SentinelItem::StaticIdentity() const { return JoinHostPort(host, port); }

std::string JoinHostPort(std::string_view host, uint16_t port) {
  std::string out;
  if (host.find(':') != std::string_view::npos) {
    out.append("[").append(host).append("]");
  } else {
    out.append(host);
  }
  return out + ":" + std::to_string(port);
}

Result<SentinelItem> ParseSentinelItem(std::string_view text) {
  std::string_view s = Trim(text);
  if (s.empty()) return Bad(text, "empty item");
  SentinelItem item;
  item.text = std::string(s);
  if (s.starts_with(kDnsScheme)) {
    s.remove_prefix(kDnsScheme.size());
    if (Status st = StripEmptyAuthority(item.text, &s); !st.ok()) return st;
    item.kind = SentinelItem::Kind::kDns;
    if (Status st = SplitHostPort(item.text, s, &item.host, &item.port); !st.ok()) return st;
    return item;
  }
  if (s.starts_with(kSrvScheme)) {
    s.remove_prefix(kSrvScheme.size());
    if (Status st = StripEmptyAuthority(item.text, &s); !st.ok()) return st;
    if (s.find(':') != std::string_view::npos) {
      return Bad(item.text, "an srv:/// item takes no port (its SRV records carry the ports)");
    }
    if (!IsDnsName(s)) return Bad(item.text, "not a DNS name after srv:///");
    item.kind = SentinelItem::Kind::kSrv;
    item.host = Lower(s);
    return item;
  }
  if (s.find("://") != std::string_view::npos) {
    return Bad(item.text, "unknown scheme (use host:port, dns:///name:port or srv:///name)");
  }
  item.kind = SentinelItem::Kind::kStatic;
  if (Status st = SplitHostPort(item.text, s, &item.host, &item.port); !st.ok()) return st;
  if (item.host.back() == '.') item.host.pop_back();  // One spelling per static identity.
  return item;
}

Result<std::vector<SentinelItem>> ParseSentinelItems(const std::vector<std::string>& texts) {
  std::vector<SentinelItem> items;
  items.reserve(texts.size());
  for (const std::string& text : texts) {
    Result<SentinelItem> item = ParseSentinelItem(text);
    if (!item.ok()) return item.status();
    items.push_back(std::move(item).value());
  }
  return items;
}

Result<std::pair<std::string, uint16_t>> ParseIpPort(std::string_view text, uint16_t default_port) {
  std::string_view s = Trim(text);
  auto bad = [&] {
    return Status::InvalidArgument("DNS server \"" + std::string(text) +
                                   "\": expected an IP address with an optional port, as in "
                                   "127.0.0.1:5353 or [::1]:53");
  };
  if (std::optional<std::string> ip = CanonicalIp(s, AF_INET)) {
    return std::make_pair(*ip, default_port);
  }
  if (std::optional<std::string> ip = CanonicalIp(s, AF_INET6)) {
    return std::make_pair(*ip, default_port);
  }
  std::string host;
  uint16_t port = 0;
  if (!SplitHostPort(text, s, &host, &port).ok()) return bad();
  if (!CanonicalIp(host, AF_INET) && !CanonicalIp(host, AF_INET6)) return bad();
  return std::make_pair(host, port);
}

}  // namespace rlog::discovery
