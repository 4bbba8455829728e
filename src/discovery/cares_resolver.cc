#include "discovery/cares_resolver.h"

#include <ares.h>
#include <ares_nameser.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <mutex>

namespace rlog::discovery {
namespace {

// The caller knows the item; the message says which name failed and how.
Status FromAres(const std::string& name, int status) {
  std::string message = name + ": " + ares_strerror(status);
  switch (status) {
    case ARES_ENOTFOUND:  // NXDOMAIN
    case ARES_ENODATA:    // The name exists without records of this type.
      return Status::NotFound(std::move(message));
    case ARES_ETIMEOUT:
      return Status::Timeout(std::move(message));
    default:
      return Status::Unavailable(std::move(message));
  }
}

// Target names from SRV records: lower case, no trailing dot (as SentinelItem spells names).
std::string CanonicalName(const char* name) {
  std::string out(name);
  if (!out.empty() && out.back() == '.') out.pop_back();
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::vector<std::string> Addresses(const ares_addrinfo* result, uint16_t port) {
  std::vector<std::string> out;
  for (const ares_addrinfo_node* node = result ? result->nodes : nullptr; node != nullptr;
       node = node->ai_next) {
    char text[INET6_ADDRSTRLEN] = {};
    const void* raw = nullptr;
    if (node->ai_family == AF_INET) {
      raw = &reinterpret_cast<const sockaddr_in*>(node->ai_addr)->sin_addr;
    } else if (node->ai_family == AF_INET6) {
      raw = &reinterpret_cast<const sockaddr_in6*>(node->ai_addr)->sin6_addr;
    } else {
      continue;
    }
    if (inet_ntop(node->ai_family, raw, text, sizeof(text)) == nullptr) continue;
    std::string address = JoinHostPort(text, port);
    if (std::find(out.begin(), out.end(), address) == out.end()) out.push_back(address);
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

// One Resolve() call. `outstanding` counts c-ares queries whose callback has not run, plus one
// while a callback is still issuing follow-up queries; the lookup finishes when it drops to 0.
struct CaresResolver::Lookup {
  CaresResolver* resolver;
  SentinelItem item;
  Done done;
  std::vector<Endpoint> endpoints;
  Status error;
  int outstanding = 1;
};

// One getaddrinfo: for the item itself (kDns) or for SRV target `target` (index in endpoints).
struct CaresResolver::HostQuery {
  static constexpr size_t kItem = static_cast<size_t>(-1);
  Lookup* lookup;
  std::string name;
  uint16_t port;
  size_t target;
};

Result<std::unique_ptr<CaresResolver>> CaresResolver::Create(const ResolverOptions& options) {
  static std::once_flag once;
  static int init_status = ARES_SUCCESS;
  std::call_once(once, [] { init_status = ares_library_init(ARES_LIB_INIT_ALL); });
  if (init_status != ARES_SUCCESS) {
    return Status::Unavailable(std::string("c-ares: ") + ares_strerror(init_status));
  }

  std::string servers;
  if (!options.dns_server.empty()) {
    Result<std::pair<std::string, uint16_t>> server = ParseIpPort(options.dns_server, 53);
    if (!server.ok()) return server.status();
    servers = JoinHostPort(server->first, server->second);
  }

  ares_options opts{};
  int mask = 0;
  opts.timeout = static_cast<int>(std::max<uint64_t>(options.timeout_ms, 1));
  mask |= ARES_OPT_TIMEOUTMS;
  opts.tries = static_cast<int>(std::max<uint32_t>(options.tries, 1));
  mask |= ARES_OPT_TRIES;
  char dns_only[] = "b";
  if (!servers.empty()) {
    // Names as written: no search domains from this machine's resolv.conf, no /etc/hosts.
    opts.ndomains = 0;
    opts.domains = nullptr;
    mask |= ARES_OPT_DOMAINS;
    opts.lookups = dns_only;
    mask |= ARES_OPT_LOOKUPS;
  }
  ares_channel channel = nullptr;
  int rc = ares_init_options(&channel, &opts, mask);
  if (rc != ARES_SUCCESS) return Status::Unavailable(std::string("c-ares: ") + ares_strerror(rc));
  if (!servers.empty()) {
    rc = ares_set_servers_ports_csv(channel, servers.c_str());
    if (rc != ARES_SUCCESS) {
      ares_destroy(channel);
      return Status::InvalidArgument("DNS server \"" + options.dns_server +
                                     "\": " + ares_strerror(rc));
    }
  }
  return std::unique_ptr<CaresResolver>(new CaresResolver(channel));
}

CaresResolver::~CaresResolver() {
  destroying_ = true;
  ares_destroy(channel_);  // Runs every pending callback with ARES_EDESTRUCTION.
}

void CaresResolver::Resolve(const SentinelItem& item, Done done) {
  auto* lookup = new Lookup{this, item, std::move(done), {}, Status::Ok()};
  ++pending_;
  if (item.kind == SentinelItem::Kind::kSrv) {
    ares_search(channel_, item.host.c_str(), C_IN, T_SRV, &CaresResolver::OnSrv, lookup);
    return;
  }
  if (item.kind == SentinelItem::Kind::kStatic) {  // Nothing to ask: the item is its own answer.
    lookup->endpoints.push_back({item.StaticIdentity(), {item.StaticIdentity()}});
    Release(lookup);
    return;
  }
  StartHostQuery(lookup, item.host, item.port, HostQuery::kItem);
  Release(lookup);
}

void CaresResolver::StartHostQuery(Lookup* lookup, const std::string& name, uint16_t port,
                                   size_t target) {
  ares_addrinfo_hints hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_flags = ARES_AI_NOSORT;  // We sort; RFC 6724 sorting would connect() to each address.
  ++lookup->outstanding;
  auto* query = new HostQuery{lookup, name, port, target};
  ares_getaddrinfo(channel_, query->name.c_str(), nullptr, &hints, &CaresResolver::OnHost, query);
}

void CaresResolver::OnSrv(void* arg, int status, int /*timeouts*/, unsigned char* abuf, int alen) {
  auto* lookup = static_cast<Lookup*>(arg);
  CaresResolver* self = lookup->resolver;
  if (status == ARES_SUCCESS && !self->destroying_) {
    ares_srv_reply* reply = nullptr;
    status = ares_parse_srv_reply(abuf, alen, &reply);
    if (status == ARES_SUCCESS) {
      std::vector<std::pair<std::string, uint16_t>> targets;
      for (ares_srv_reply* r = reply; r != nullptr; r = r->next) {
        std::string target = CanonicalName(r->host);
        if (target.empty() || r->port == 0) continue;  // "." means "no service here".
        targets.emplace_back(target, r->port);
        lookup->endpoints.push_back({JoinHostPort(target, r->port), {}});
      }
      ares_free_data(reply);
      for (size_t i = 0; i < targets.size(); ++i) {
        self->StartHostQuery(lookup, targets[i].first, targets[i].second, i);
      }
    }
  }
  if (status != ARES_SUCCESS) lookup->error = FromAres(lookup->item.host, status);
  self->Release(lookup);
}

void CaresResolver::OnHost(void* arg, int status, int /*timeouts*/, ares_addrinfo* result) {
  std::unique_ptr<HostQuery> query(static_cast<HostQuery*>(arg));
  Lookup* lookup = query->lookup;
  if (status == ARES_SUCCESS) {
    std::vector<std::string> addresses = Addresses(result, query->port);
    if (query->target != HostQuery::kItem) {
      lookup->endpoints[query->target].addresses = std::move(addresses);
    } else {
      for (std::string& address : addresses) lookup->endpoints.push_back({address, {address}});
    }
  } else if (query->target == HostQuery::kItem) {
    lookup->error = FromAres(query->name, status);
  }
  // A failed SRV target keeps no addresses: Membership treats it as present, address unknown.
  if (result != nullptr) ares_freeaddrinfo(result);
  lookup->resolver->Release(lookup);
}

void CaresResolver::Release(Lookup* lookup) {
  if (--lookup->outstanding > 0) return;
  std::unique_ptr<Lookup> owned(lookup);
  --pending_;
  if (destroying_) return;
  if (!owned->error.ok()) {
    owned->done(owned->error);
  } else {
    owned->done(std::move(owned->endpoints));
  }
}

bool CaresResolver::Poll(std::chrono::milliseconds max_wait, int wake_fd) {
  ares_socket_t socks[ARES_GETSOCK_MAXNUM];
  int bits = ares_getsock(channel_, socks, ARES_GETSOCK_MAXNUM);
  std::vector<pollfd> fds;
  for (int i = 0; i < ARES_GETSOCK_MAXNUM; ++i) {
    short events = 0;
    if (ARES_GETSOCK_READABLE(bits, i)) events |= POLLIN;
    if (ARES_GETSOCK_WRITABLE(bits, i)) events |= POLLOUT;
    if (events == 0) break;
    fds.push_back(pollfd{socks[i], events, 0});
  }
  size_t dns_fds = fds.size();
  if (wake_fd >= 0) fds.push_back(pollfd{wake_fd, POLLIN, 0});

  timeval max_tv{};
  max_tv.tv_sec = static_cast<time_t>(max_wait.count() / 1000);
  max_tv.tv_usec = static_cast<suseconds_t>((max_wait.count() % 1000) * 1000);
  timeval tv{};
  timeval* wait = ares_timeout(channel_, &max_tv, &tv);
  int timeout_ms = static_cast<int>(wait->tv_sec * 1000 + (wait->tv_usec + 999) / 1000);

  int ready = poll(fds.data(), fds.size(), timeout_ms);
  bool woken = false;
  if (ready > 0) {
    for (size_t i = 0; i < dns_fds; ++i) {
      short ev = fds[i].revents;
      ares_socket_t r = (ev & (POLLIN | POLLERR | POLLHUP)) ? fds[i].fd : ARES_SOCKET_BAD;
      ares_socket_t w = (ev & POLLOUT) ? fds[i].fd : ARES_SOCKET_BAD;
      if (r != ARES_SOCKET_BAD || w != ARES_SOCKET_BAD) ares_process_fd(channel_, r, w);
    }
    woken = wake_fd >= 0 && (fds.back().revents & POLLIN) != 0;
  }
  ares_process_fd(channel_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);  // Expire timed-out queries.
  return woken;
}

}  // namespace rlog::discovery
