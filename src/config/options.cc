// The settings table and the value parsers behind it. See options.h.
#include "config/options.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <limits>
#include <utility>

#include "config/names.h"

namespace rlog::config_internal {
namespace {

// A deadline of this many milliseconds still fits in std::chrono::nanoseconds (int64): ~100 years.
constexpr uint64_t kMaxMillis = 100ULL * 365 * 24 * 60 * 60 * 1000;

std::string Expected(std::string_view expect, std::string_view got) {
  return "expected " + std::string(expect) + ", got '" + std::string(got) + "'";
}

// The whole text must be decimal digits that fit in uint64_t: no sign, spaces or suffix.
bool ParseUnsigned(std::string_view text, uint64_t* out) {
  if (text.empty() || !std::isdigit(static_cast<unsigned char>(text.front()))) return false;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, *out);
  return ec == std::errc() && ptr == end;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool IsHostChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
}

// "name" or "[v6]" followed by ":port" with port in 1..65535.
bool IsHostPort(std::string_view s) {
  size_t colon = s.rfind(':');
  if (colon == std::string_view::npos) return false;
  std::string_view host = s.substr(0, colon);
  uint64_t port = 0;
  if (!ParseUnsigned(s.substr(colon + 1), &port) || port < 1 || port > 65535) return false;
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
    return std::all_of(host.begin(), host.end(), [](char c) {
      return std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.';
    });
  }
  return !host.empty() && std::all_of(host.begin(), host.end(), IsHostChar);
}

// One sentinel address: "host:port", "dns:///name:port" or "srv:///name".
bool IsSentinelAddress(std::string_view s) {
  constexpr std::string_view kDns = "dns:///";
  constexpr std::string_view kSrv = "srv:///";
  if (s.starts_with(kSrv)) {
    s.remove_prefix(kSrv.size());
    return !s.empty() && std::all_of(s.begin(), s.end(), IsHostChar);
  }
  if (s.starts_with(kDns)) s.remove_prefix(kDns.size());
  return IsHostPort(s);
}

std::vector<std::string> SplitCommaList(std::string_view text) {
  std::vector<std::string> items;
  while (true) {
    size_t comma = text.find(',');
    items.emplace_back(Trim(text.substr(0, comma)));
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return items;
}

// What every table row names; the builders below add how the value is parsed and stored.
struct Names {
  std::string key, env, flag, help;
};

OptionSpec Spec(Names n, std::string metavar, std::string expect) {
  OptionSpec spec;
  spec.key = std::move(n.key);
  spec.env = std::move(n.env);
  spec.flag = std::move(n.flag);
  spec.help = std::move(n.help);
  spec.metavar = std::move(metavar);
  spec.expect = std::move(expect);
  return spec;
}

template <typename T>
OptionSpec Integer(Names n, T Config::*field, uint64_t min, uint64_t max) {
  OptionSpec spec =
      Spec(std::move(n), "N", "an integer in " + std::to_string(min) + ".." + std::to_string(max));
  spec.set = [field, min, max, expect = spec.expect](std::string_view text, Config& c) {
    uint64_t v = 0;
    if (!ParseUnsigned(text, &v) || v < min || v > max) return Expected(expect, text);
    c.*field = static_cast<T>(v);
    return std::string();
  };
  spec.show = [field](const Config& c) { return std::to_string(c.*field); };
  return spec;
}

// A whole number of milliseconds; the upper bound keeps deadlines from overflowing.
template <typename T>
OptionSpec Millis(Names n, T Config::*field, uint64_t min) {
  return Integer(std::move(n), field, min,
                 std::min<uint64_t>(std::numeric_limits<T>::max(), kMaxMillis));
}

OptionSpec Text(Names n, std::string Config::*field, bool allow_empty) {
  OptionSpec spec = Spec(std::move(n), "TEXT", allow_empty ? "a string" : "a non-empty string");
  spec.set = [field, allow_empty, expect = spec.expect](std::string_view text, Config& c) {
    if (!allow_empty && text.empty()) return Expected(expect, text);
    c.*field = std::string(text);
    return std::string();
  };
  spec.show = [field](const Config& c) { return c.*field; };
  return spec;
}

// One of a fixed set of names (names.h), stored as the matching value.
template <typename T, typename V, size_t N>
OptionSpec Choice(Names n, T Config::*field, const NamedValue<V> (&names)[N]) {
  std::string alternatives;
  for (const auto& entry : names) {
    alternatives += (alternatives.empty() ? "" : "|") + std::string(entry.name);
  }
  OptionSpec spec = Spec(std::move(n), alternatives, "one of " + alternatives);
  spec.set = [field, &names, expect = spec.expect](std::string_view text, Config& c) {
    for (const auto& entry : names) {
      if (text == entry.name) {
        c.*field = entry.value;
        return std::string();
      }
    }
    return Expected(expect, text);
  };
  spec.show = [field, &names](const Config& c) {
    for (const auto& entry : names) {
      if (c.*field == entry.value) return std::string(entry.name);
    }
    return std::string("?");
  };
  return spec;
}

OptionSpec SentinelList(Names n) {
  OptionSpec spec = Spec(std::move(n), "LIST",
                         "a comma-separated list of host:port, dns:///name:port or srv:///name");
  spec.set_list = [](const std::vector<std::string>& items, Config& c) {
    std::vector<std::string> sentinels;
    for (const std::string& raw : items) {
      std::string_view item = Trim(raw);
      if (item.empty()) continue;
      if (!IsSentinelAddress(item)) {
        return Expected("host:port, dns:///name:port or srv:///name", item);
      }
      sentinels.emplace_back(item);
    }
    c.sentinels = std::move(sentinels);
    return std::string();
  };
  spec.set = [set_list = spec.set_list](std::string_view text, Config& c) {
    return set_list(SplitCommaList(text), c);
  };
  spec.show = [](const Config& c) {
    std::string joined;
    for (const std::string& s : c.sentinels) joined += (joined.empty() ? "" : ",") + s;
    return joined;
  };
  return spec;
}

OptionSpec Switch(Names n, bool Config::*field) {
  OptionSpec spec = Spec(std::move(n), "", "true or false");
  spec.is_switch = true;
  spec.set = [field, expect = spec.expect](std::string_view text, Config& c) {
    if (text != "true" && text != "false") return Expected(expect, text);
    c.*field = text == "true";
    return std::string();
  };
  spec.show = [field](const Config& c) { return std::string(c.*field ? "true" : "false"); };
  return spec;
}

std::vector<OptionSpec> BuildOptions() {
  using C = Config;
  return {
      Choice({"role", "ROLE", "--role", "what this node is"}, &C::role, kRoleNames),
      Text({"node_id", "NODE_ID", "--node-id",
            "name in logs, metrics and /health "
            "(empty: <role>-<http.port>)"},
           &C::node_id, true),

      Text({"http.address", "HTTP_ADDRESS", "--http-address", "HTTP listen address"},
           &C::http_address, false),
      Integer({"http.port", "PORT", "--port", "HTTP port (0: ephemeral)"}, &C::http_port, 0, 65535),
      Integer({"http.threads", "HTTP_THREADS", "--http-threads", "HTTP server threads"},
              &C::http_threads, 1, 64),
      Integer({"http.max_body_bytes", "MAX_BODY_BYTES", "--max-body-bytes",
               "largest request accepted (larger: 413)"},
              // At most 1 GiB: the HTTP layer lets twice this through before it reads a body, and
              // no message over the WAL's record limit (64 MiB) can be stored anyway.
              &C::max_body_bytes, 1, uint64_t{1} << 30),
      Integer({"http.get_all_max_bytes", "GET_ALL_MAX_BYTES", "--get-all-max-bytes",
               "largest GET /get-all answer (larger: 400, page with /messages)"},
              &C::get_all_max_bytes, 1, std::numeric_limits<uint64_t>::max()),
      Integer({"http.max_waiting_reads", "MAX_WAITING_READS", "--max-waiting-reads",
               "most long polls (GET /messages?waitMs=) parked at once (one more: 503)"},
              &C::max_waiting_reads, 1, 10000000),
      Integer({"http.slow_answers_max_bytes", "SLOW_ANSWERS_MAX_BYTES", "",
               "bytes of large answers held for clients that read slowly (more: 503)"},
              &C::slow_answers_max_bytes, 1, std::numeric_limits<uint64_t>::max()),
      Text({"http.advertise", "ADVERTISE_HTTP", "",
            "host:port clients are told to use for this node (empty: 127.0.0.1:<http.port>)"},
           &C::advertise_http, true),

      Text({"grpc.address", "GRPC_ADDRESS", "--grpc-address", "gRPC listen address (sentinel)"},
           &C::grpc_address, false),
      Integer({"grpc.port", "GRPC_PORT", "--grpc-port", "gRPC port (sentinel; 0: ephemeral)"},
              &C::grpc_port, 0, 65535),
      SentinelList({"sentinels", "SENTINELS", "--sentinels",
                    "the master's sentinels: host:port, dns:///name:port or srv:///name"}),

      Text({"discovery.dns_server", "DNS_SERVER", "--dns-server",
            "ip[:port] of the DNS server for dns:/// and srv:/// sentinels (empty: system "
            "resolver)"},
           &C::dns_server, true),
      Millis({"discovery.refresh_ms", "", "", "how often sentinel names are re-resolved"},
             &C::discovery_refresh_ms, 1),
      Millis({"discovery.grace_ms", "", "",
              "how long a sentinel may be missing from DNS before it leaves the cluster"},
             &C::discovery_grace_ms, 0),
      Integer({"discovery.expected_sentinels", "EXPECTED_SENTINELS", "--expected-sentinels",
               "sentinels the cluster is meant to have; a recovering master waits for answers "
               "from enough of them (0: as many as discovery finds)"},
              &C::expected_sentinels, 0, 1024),

      Integer({"replication.batch_max_entries", "", "", "most entries in one batch"},
              &C::batch_max_entries, 1, 65536),
      Integer({"replication.batch_max_bytes", "", "", "most message bytes in one batch"},
              &C::batch_max_bytes, 1024, std::numeric_limits<uint64_t>::max()),
      Integer({"replication.window_batches", "", "", "batches in flight per sentinel"},
              &C::window_batches, 1, 1024),
      Integer({"replication.min_pipelined_batch", "", "",
               "entries that must wait before a second batch is sent while one is unacknowledged"},
              &C::min_pipelined_batch, 1, 65536),
      Millis({"replication.linger_ms", "", "",
              "how long entries no write waits on (w=1) may wait to share a batch (0: off)"},
             &C::linger_ms, 0),
      Millis({"replication.heartbeat_ms", "HEARTBEAT_MS", "--heartbeat-ms",
              "heartbeat period of an idle stream"},
             &C::heartbeat_ms, 1),
      Millis({"replication.backoff_initial_ms", "", "", "first reconnect delay"},
             &C::backoff_initial_ms, 1),
      Millis({"replication.backoff_max_ms", "", "", "longest reconnect delay"}, &C::backoff_max_ms,
             1),

      Millis({"health.suspect_after_ms", "SUSPECT_AFTER_MS", "--suspect-after-ms",
              "silence before a sentinel is Suspected"},
             &C::suspect_after_ms, 1),
      Millis({"health.unhealthy_after_ms", "UNHEALTHY_AFTER_MS", "--unhealthy-after-ms",
              "silence before a sentinel is Unhealthy"},
             &C::unhealthy_after_ms, 1),

      Millis({"insert.default_timeout_ms", "DEFAULT_TIMEOUT_MS", "--default-timeout-ms",
              "insert timeout when the request has no timeoutMs"},
             &C::default_timeout_ms, 1),
      Millis({"insert.max_timeout_ms", "", "", "largest timeoutMs accepted"}, &C::max_timeout_ms,
             1),
      Integer({"insert.idempotency_keys", "", "", "idempotency keys remembered (0: disabled)"},
              &C::idempotency_keys, 0, std::numeric_limits<uint64_t>::max()),

      Integer({"max_log_bytes", "MAX_LOG_BYTES", "--max-log-bytes",
               "memory the master's log may take; inserts beyond it get 507 (0: no limit)"},
              &C::max_log_bytes, 0, std::numeric_limits<uint64_t>::max()),

      Integer({"tick_ms", "TICK_MS", "--tick-ms", "core clock resolution"}, &C::tick_ms, 1, 1000),
      Millis({"shutdown.drain_timeout_ms", "DRAIN_TIMEOUT_MS", "--drain-timeout-ms",
              "how long shutdown waits for parked requests"},
             &C::drain_timeout_ms, 0),

      Text({"tls.ca_file", "TLS_CA_FILE", "--tls-ca-file",
            "mutual TLS for replication: CA bundle the peers' certificates must chain to"},
           &C::tls_ca_file, true),
      Text({"tls.cert_file", "TLS_CERT_FILE", "--tls-cert-file",
            "mutual TLS: this node's certificate chain (PEM)"},
           &C::tls_cert_file, true),
      Text({"tls.key_file", "TLS_KEY_FILE", "--tls-key-file",
            "mutual TLS: this node's private key (PEM)"},
           &C::tls_key_file, true),
      Text({"tls.server_name", "TLS_SERVER_NAME", "--tls-server-name",
            "master: the name the sentinels' certificates must carry (empty: each sentinel's "
            "host)"},
           &C::tls_server_name, true),
      Text({"tls.master_name", "TLS_MASTER_NAME", "--tls-master-name",
            "sentinel: the name the master's certificate must carry (empty: any certificate of "
            "the CA)"},
           &C::tls_master_name, true),
      Integer({"tls.reload_interval_s", "", "",
               "how often the TLS files are read again (a renewed certificate is used by the next "
               "connection)"},
              &C::tls_reload_interval_s, 1, 86400),

      Text({"data_dir", "DATA_DIR", "--data-dir", "write-ahead log directory (empty: in memory)"},
           &C::data_dir, true),
      Choice({"fsync", "FSYNC", "--fsync", "when the write-ahead log is fsynced"}, &C::fsync,
             kFsyncNames),
      Millis({"fsync_interval_ms", "FSYNC_INTERVAL_MS", "", "fsync period with fsync: interval"},
             &C::fsync_interval_ms, 1),
      Integer({"wal.segment_bytes", "", "", "size at which a new WAL segment file starts"},
              &C::wal_segment_bytes, 4096, 1ull << 40),
      Integer({"wal.preallocate_bytes", "", "",
               "zeros written ahead of the appends to the last segment (0: off)"},
              &C::wal_preallocate_bytes, 0, 1ull << 30),
      Integer({"wal.group_commit_us", "", "",
               "with fsync: always, least time from one fsync's start to the next's (0: none)"},
              &C::wal_group_commit_us, 0, 1000000),
      Switch({"wal.sync_on_replication_thread", "", "",
              "sentinel: write and fsync each batch on the replication thread, not the "
              "committer thread (a master ignores it)"},
             &C::wal_sync_on_replication_thread),
      Choice({"wal.on_corruption", "WAL_ON_CORRUPTION", "--wal-on-corruption",
              "corrupt WAL at start: fail, or (sentinels) refetch from the master"},
             &C::wal_on_corruption, kOnCorruptionNames),
      Switch({"recovery.unclean", "RECOVERY_UNCLEAN", "--recovery-unclean",
              "master: take a log over without committed ids no answering sentinel holds "
              "(they are lost) instead of waiting for one that does"},
             &C::recovery_unclean),

      Choice({"log.level", "LOG_LEVEL", "--log-level", "least severe level logged"}, &C::log_level,
             kLogLevelNames),
      Choice({"log.format", "LOG_FORMAT", "--log-format", "log line format"}, &C::log_format,
             kLogFormatNames),

      Text({"", "", "--ports-file", "testing: write the bound ports as JSON here"}, &C::ports_file,
           true),
      Text({"", "", "--test-faults", "testing: sentinel fault spec (needs --enable-test-faults)"},
           &C::test_faults, true),
      Switch({"", "", "--enable-test-faults", "testing: honour --test-faults"},
             &C::enable_test_faults),
      Integer({"", "", "--test-recovery-pause-ms",
               "testing: a recovering master pauses this long once the sentinels have promised "
               "(needs --enable-test-faults)"},
              &C::test_recovery_pause_ms, 0, 600000),
      Text({"", "", "--test-sync-journal",
            "testing: journal every sync of the data directory to this file, for power-loss tests "
            "(needs --enable-test-faults and data_dir)"},
           &C::test_sync_journal, true),
      Switch({"", "", "--test-ack-before-fsync",
              "testing: acknowledge before the fsync, as a broken node would (needs "
              "--enable-test-faults and data_dir)"},
             &C::test_ack_before_fsync),
  };
}

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

std::string_view LastSegment(std::string_view key) {
  size_t dot = key.rfind('.');
  return dot == std::string_view::npos ? key : key.substr(dot + 1);
}

}  // namespace

const std::vector<OptionSpec>& Options() {
  static const std::vector<OptionSpec>* const options = new std::vector<OptionSpec>(BuildOptions());
  return *options;
}

const OptionSpec* FindByKey(std::string_view key) {
  if (key.empty()) return nullptr;
  for (const OptionSpec& spec : Options()) {
    if (spec.key == key) return &spec;
  }
  return nullptr;
}

bool IsSection(std::string_view path) {
  return std::any_of(Options().begin(), Options().end(), [path](const OptionSpec& spec) {
    return spec.key.size() > path.size() && spec.key.starts_with(path) &&
           spec.key[path.size()] == '.';
  });
}

std::string ClosestKey(std::string_view unknown) {
  std::string best;
  size_t best_distance = 4;  // 4 or more edits is a different word, not a typo
  for (const OptionSpec& spec : Options()) {
    if (spec.key.empty()) continue;
    size_t d = EditDistance(unknown, spec.key);
    if (d < best_distance) {
      best = spec.key;
      best_distance = d;
    }
  }
  if (!best.empty()) return best;
  // A key put in the wrong section ("port" at the top level) keeps its last segment.
  for (const OptionSpec& spec : Options()) {
    if (!spec.key.empty() && LastSegment(spec.key) == LastSegment(unknown)) return spec.key;
  }
  return "";
}

}  // namespace rlog::config_internal
