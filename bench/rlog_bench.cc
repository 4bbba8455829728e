// rlog-bench: a closed-loop HTTP/1.1 load generator for rlog.
//
// K persistent keep-alive connections, split across T threads (each an epoll loop, see
// load_worker.h), each with exactly one request outstanding. After a warm-up that is not
// counted it measures for a fixed time, then prints counts per status class, the throughput and
// latency percentiles (send -> full response) of the ok answers (2xx, or --ok-status). Exits 1 if
// no request succeeded.
#include <netdb.h>
#include <sys/socket.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "load_worker.h"

namespace rlog::bench {
namespace {

struct Options {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;
  int connections = 64;
  int threads = 1;
  double duration_s = 10;
  double warmup_s = 1;
  size_t size = 100;
  std::string w = "1";
  std::string mode = "insert";
  std::string path;  // default: /insert or /healthz, by mode
  bool json = false;
  std::optional<int64_t> max_requests;
  int ok_status = 0;  // 0: any 2xx
};

// writeConcern as it goes on the wire: a JSON number, or "majority" / "all".
nlohmann::json write_concern_json(const std::string& w) {
  int64_t n = 0;
  auto [end, ec] = std::from_chars(w.data(), w.data() + w.size(), n);
  if (ec == std::errc() && end == w.data() + w.size()) return n;
  return w;
}

std::string host_port(const Options& o) {
  const bool ipv6 = o.host.find(':') != std::string::npos;
  return (ipv6 ? "[" + o.host + "]" : o.host) + ":" + std::to_string(o.port);
}

std::string build_request(const Options& o) {
  std::string head = (o.mode == "insert" ? "POST " : "GET ") + o.path + " HTTP/1.1\r\n" +
                     "Host: " + host_port(o) + "\r\n" + "Connection: keep-alive\r\n";
  std::string body;
  if (o.mode == "insert") {
    std::string message(o.size, 'x');
    for (size_t i = 0; i < message.size(); ++i) message[i] = static_cast<char>('a' + i % 26);
    body = nlohmann::json{{"message", message}, {"writeConcern", write_concern_json(o.w)}}.dump();
    head += "Content-Type: application/json\r\n";
  }
  return head + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

bool resolve(const Options& o, LoadPlan& plan) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* result = nullptr;
  const std::string port = std::to_string(o.port);
  if (const int rc = getaddrinfo(o.host.c_str(), port.c_str(), &hints, &result); rc != 0) {
    std::fprintf(stderr, "rlog-bench: cannot resolve %s: %s\n", o.host.c_str(), gai_strerror(rc));
    return false;
  }
  std::memcpy(&plan.address, result->ai_addr, result->ai_addrlen);
  plan.address_len = result->ai_addrlen;
  freeaddrinfo(result);
  return true;
}

double ms(uint64_t ns) { return static_cast<double>(ns) / 1e6; }

void report(const Options& o, const LoadStats& s, double measured_s, const std::string& error) {
  const double rps = measured_s > 0 ? static_cast<double>(s.ok) / measured_s : 0;
  const LatencyHistogram& h = s.latency_ns;
  if (o.json) {
    nlohmann::json j = {{"mode", o.mode},
                        {"path", o.path},
                        {"connections", o.connections},
                        {"threads", o.threads},
                        {"size", o.size},
                        {"w", write_concern_json(o.w)},
                        {"duration_s", measured_s},
                        {"requests", s.requests()},
                        {"ok", s.ok},
                        {"errors_4xx", s.errors_4xx},
                        {"errors_5xx", s.errors_5xx},
                        {"errors_other", s.errors_other},
                        {"errors_io", s.errors_io},
                        {"reconnects", s.reconnects},
                        {"throughput_rps", rps},
                        {"p50_ms", ms(h.percentile(0.5))},
                        {"p90_ms", ms(h.percentile(0.9))},
                        {"p99_ms", ms(h.percentile(0.99))},
                        {"p999_ms", ms(h.percentile(0.999))},
                        {"max_ms", ms(h.max())}};
    if (!error.empty()) j["first_error"] = error;
    std::printf("%s\n", j.dump().c_str());
    return;
  }
  std::printf("rlog-bench %s %s%s  connections=%d threads=%d", o.mode.c_str(), host_port(o).c_str(),
              o.path.c_str(), o.connections, o.threads);
  if (o.mode == "insert") std::printf(" size=%zu w=%s", o.size, o.w.c_str());
  std::printf("  measured %.2f s\n", measured_s);
  std::printf("  requests     %llu\n", static_cast<unsigned long long>(s.requests()));
  const std::string ok = o.ok_status != 0 ? std::to_string(o.ok_status) : "2xx";
  std::printf("  ok (%s)     %llu\n", ok.c_str(), static_cast<unsigned long long>(s.ok));
  std::printf(
      "  errors       4xx %llu  5xx %llu  other %llu  io %llu  (reconnects %llu)\n",
      static_cast<unsigned long long>(s.errors_4xx), static_cast<unsigned long long>(s.errors_5xx),
      static_cast<unsigned long long>(s.errors_other), static_cast<unsigned long long>(s.errors_io),
      static_cast<unsigned long long>(s.reconnects));
  std::printf("  throughput   %.1f req/s (%s)\n", rps, ok.c_str());
  std::printf("  latency ms   p50 %.3f  p90 %.3f  p99 %.3f  p999 %.3f  max %.3f\n",
              ms(h.percentile(0.5)), ms(h.percentile(0.9)), ms(h.percentile(0.99)),
              ms(h.percentile(0.999)), ms(h.max()));
  if (!error.empty()) std::printf("  first error  %s\n", error.c_str());
}

int run(const Options& o) {
  LoadPlan plan;
  if (!resolve(o, plan)) return 2;
  plan.request = build_request(o);
  plan.ok_status = o.ok_status;
  std::atomic<int64_t> budget(o.max_requests.value_or(0));
  if (o.max_requests) plan.budget = &budget;

  const int threads = o.threads;
  std::vector<LoadStats> stats(threads);
  std::vector<std::string> errors(threads);
  const Clock::time_point start = Clock::now();
  plan.warmup_end = start + std::chrono::duration_cast<Clock::duration>(
                                std::chrono::duration<double>(o.warmup_s));
  plan.deadline = plan.warmup_end + std::chrono::duration_cast<Clock::duration>(
                                        std::chrono::duration<double>(o.duration_s));
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    const int share = o.connections / threads + (t < o.connections % threads ? 1 : 0);
    workers.emplace_back([&, t, share] { stats[t] = run_load(plan, share, &errors[t]); });
  }
  for (auto& w : workers) w.join();
  const Clock::time_point end = std::min(Clock::now(), plan.deadline);

  LoadStats total;
  std::string first_error;
  for (int t = 0; t < threads; ++t) {
    total.merge(stats[t]);
    if (first_error.empty()) first_error = errors[t];
  }
  const double measured_s =
      std::max(0.0, std::chrono::duration<double>(end - plan.warmup_end).count());
  report(o, total, measured_s, first_error);
  return total.ok > 0 ? 0 : 1;
}

}  // namespace
}  // namespace rlog::bench

int main(int argc, char** argv) {
  rlog::bench::Options o;
  CLI::App app{"rlog-bench: closed-loop keep-alive HTTP/1.1 load generator for rlog"};
  app.add_option("--host", o.host, "server address")->capture_default_str();
  app.add_option("--port", o.port, "server HTTP port")->capture_default_str();
  app.add_option("--connections", o.connections, "persistent connections, one request each")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  app.add_option("--threads", o.threads, "client threads (epoll loops)")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  app.add_option("--duration", o.duration_s, "measured seconds")
      ->capture_default_str()
      ->check(CLI::Range(0.001, 86400.0));
  app.add_option("--warmup", o.warmup_s, "seconds before measuring (not counted)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 3600.0));
  app.add_option("--size", o.size, "message bytes (insert)")
      ->capture_default_str()
      ->check(CLI::Range(size_t{0}, size_t{64} << 20));
  app.add_option("--w", o.w, "writeConcern: a number, majority or all (insert)")
      ->capture_default_str()
      ->check([](const std::string& w) -> std::string {
        if (w == "majority" || w == "all") return {};
        int n = 0;
        auto [end, ec] = std::from_chars(w.data(), w.data() + w.size(), n);
        return ec == std::errc() && end == w.data() + w.size() && n >= 1
                   ? std::string()
                   : "must be an integer >= 1, majority or all";
      });
  app.add_option("--mode", o.mode, "insert (POST /insert) or get (GET --path)")
      ->capture_default_str()
      ->check(CLI::IsMember({"insert", "get"}));
  app.add_option("--path", o.path, "request path (default /insert or /healthz)");
  app.add_flag("--json", o.json, "print one JSON object");
  app.add_option("--ok-status", o.ok_status,
                 "count answers with this status as ok (default: any 2xx); e.g. 404 to measure "
                 "the server's cost of a request it routes nowhere")
      ->check(CLI::Range(100, 599));
  app.add_option("--max-requests", o.max_requests,
                 "stop after sending N requests in all (warm-up included)")
      ->check(CLI::Range(int64_t{1}, std::numeric_limits<int64_t>::max()));
  CLI11_PARSE(app, argc, argv);
  if (o.path.empty()) o.path = o.mode == "insert" ? "/insert" : "/healthz";
  o.threads = std::min(o.threads, o.connections);
  if (o.path.front() != '/') {
    std::fprintf(stderr, "rlog-bench: --path must start with '/'\n");
    return 2;
  }
  return rlog::bench::run(o);
}
