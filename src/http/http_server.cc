#include "http/http_server.h"

#include <fcntl.h>
#include <pistache/endpoint.h>
#include <pistache/http.h>
#include <pistache/peer.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <charconv>
#include <nlohmann/json.hpp>

#include "http/answer_writer.h"

namespace rlog::http {

using namespace Pistache;

HttpReply JsonError(int status, const std::string& message, const std::string& extra_fields) {
  nlohmann::json j = {{"error", message}};
  // A message may quote what a client sent (a path cut at 200 bytes): never throw on bad UTF-8.
  std::string body = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (!extra_fields.empty()) body = body.substr(0, body.size() - 1) + "," + extra_fields + "}";
  return HttpReply{status, std::move(body), {}};
}

namespace {

// The longest long poll (GET /messages?waitMs=).
constexpr uint64_t kMaxLongPollMs = 300000;

// Answers of at least this many bytes, given while their request's onRequest runs, go out
// through the AnswerWriter (answer_writer.h); smaller ones fit a socket's send buffer.
constexpr size_t kLargeAnswerBytes = 64 * 1024;

// The exchange whose onRequest runs on this thread. Only its answer may be written on a duplicate
// of its connection's descriptor: Pistache closes a connection on the thread that serves it, so
// here it cannot be closed (and its number reused by another client) under us. An answer given
// from elsewhere (a parked request's, or one an insert on another connection completes) goes
// through Pistache.
thread_local const void* t_serving = nullptr;

// Pistache 0.0.5 writes only typed headers and silently drops Raw ones: this typed header carries
// any name and value (Retry-After, Allow, ...).
class NamedHeader final : public Http::Header::Header {
 public:
  NamedHeader(std::string name, std::string value)
      : name_(std::move(name)), value_(std::move(value)) {}
  const char* name() const override { return name_.c_str(); }
  void parse(const std::string& data) override { value_ = data; }
  void write(std::ostream& os) const override { os << value_; }
#ifdef SAFE_HEADER_CAST
  uint64_t hash() const override { return 0; }
#endif

 private:
  std::string name_;
  std::string value_;
};

// `text` with %XX escapes decoded (Pistache hands query values over as sent); nullopt if an escape
// is malformed.
std::optional<std::string> PercentDecoded(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out.push_back(text[i]);
      continue;
    }
    unsigned byte = 0;
    if (i + 2 >= text.size()) return std::nullopt;
    auto [ptr, ec] = std::from_chars(text.data() + i + 1, text.data() + i + 3, byte, 16);
    if (ec != std::errc() || ptr != text.data() + i + 3) return std::nullopt;
    out.push_back(static_cast<char>(byte));
    i += 2;
  }
  return out;
}

// A parsed unsigned integer query parameter, or an error naming it.
Result<std::optional<uint64_t>> QueryNumber(const Http::Request& req, const char* name) {
  auto raw = req.query().get(name);
  if (!raw) return std::optional<uint64_t>();
  const std::optional<std::string> value = PercentDecoded(*raw);
  uint64_t n = 0;
  const char* end = value ? value->data() + value->size() : nullptr;
  auto [ptr, ec] = value ? std::from_chars(value->data(), end, n)
                         : std::from_chars_result{nullptr, std::errc::invalid_argument};
  if (!value || value->empty() || ec != std::errc() || ptr != end) {
    return Status::InvalidArgument(std::string("query parameter '") + name +
                                   "' must be a non-negative integer");
  }
  return std::optional<uint64_t>(n);
}

// A path as errors quote it: at most 200 bytes (a 1 MB path is not echoed back whole).
std::string Bounded(const std::string& path) {
  constexpr size_t kMax = 200;
  return path.size() <= kMax ? path : path.substr(0, kMax) + "...";
}

class Handler final : public Http::Handler {
 public:
  HTTP_PROTOTYPE(Handler)

  Handler(Service* service, uint64_t max_body_bytes, AnswerWriter* answers,
          uint64_t slow_answers_max_bytes)
      : service_(service),
        max_body_bytes_(max_body_bytes),
        answers_(answers),
        slow_answers_max_bytes_(slow_answers_max_bytes) {}

  void onRequest(const Http::Request& req, Http::ResponseWriter writer) override {
    // Exactly one answer: the first of the Responder (now or once parked) and the catch below.
    struct Exchange {
      explicit Exchange(Http::ResponseWriter w) : writer(std::move(w)) {}
      Http::ResponseWriter writer;
      std::atomic<bool> answered{false};
    };
    auto exchange = std::make_shared<Exchange>(std::move(writer));
    // HEAD: the answer GET would get, without its body (a client reads none after a HEAD, so a
    // body would be taken for the start of the next answer on a keep-alive connection).
    const bool head = req.method() == Http::Method::Head;
    Responder respond = [exchange, head, answers = answers_,
                         budget = slow_answers_max_bytes_](HttpReply reply) {
      if (exchange->answered.exchange(true)) return;
      // Written here if ready while this request is handled (t_serving): a large answer, and a
      // HEAD's, whose Content-Length is then the GET's (Pistache would say 0).
      if (t_serving == exchange.get() && (head || reply.body.size() >= kLargeAnswerBytes)) {
        // Slow clients must not take the node's memory: past the budget, a large answer is
        // refused rather than held too.
        if (!head && answers->pending_bytes() >= budget) {
          reply = JsonError(503, "large answers to slow clients hold " +
                                     std::to_string(answers->pending_bytes()) +
                                     " bytes (http.slow_answers_max_bytes): retry later");
          reply.headers.emplace_back("Retry-After", "1");
        } else if (SendAside(exchange->writer, reply, head, *answers)) {
          return;
        }
      }
      if (head) reply.body.clear();
      Send(exchange->writer, std::move(reply));
    };
    // Reset however Route leaves (it may throw).
    struct Serving {
      explicit Serving(const void* exchange) { t_serving = exchange; }
      ~Serving() { t_serving = nullptr; }
    } serving(exchange.get());
    try {
      Route(req, std::move(respond));
    } catch (const std::exception& e) {
      // Nothing below should throw; if it does, answer rather than take the server down (unless
      // an answer went out already).
      spdlog::error("request {} {} failed: {}", Http::methodString(req.method()), req.resource(),
                    e.what());
      if (!exchange->answered.exchange(true))
        Send(exchange->writer, JsonError(500, "internal error"));
    }
  }

  void onTimeout(const Http::Request&, Http::ResponseWriter writer) override {
    Send(writer, JsonError(408, "request timed out"));
  }

 private:
  static void Send(Http::ResponseWriter& writer, HttpReply reply) {
    // Nearly every answer is JSON: parse that media type once, not per answer.
    static const Http::Mime::MediaType kJson =
        Http::Mime::MediaType::fromString("application/json");
    writer.setMime(reply.content_type == "application/json"
                       ? kJson
                       : Http::Mime::MediaType::fromString(reply.content_type));
    for (auto& [name, value] : reply.headers) {
      writer.headers().add(std::make_shared<NamedHeader>(name, value));
    }
    // Fire and forget: never chain .then() from a non-reactor thread (STACK-NOTES).
    writer.send(static_cast<Http::Code>(reply.status), reply.body);
  }

  // Hands the whole answer, as Pistache would write it (without the body for a HEAD), to the
  // AnswerWriter on a duplicate of the connection's descriptor. False (nothing sent) when there is
  // no connection to duplicate: the caller sends it through Pistache.
  static bool SendAside(Http::ResponseWriter& writer, HttpReply& reply, bool head,
                        AnswerWriter& answers) {
    const std::shared_ptr<Tcp::Peer> peer = writer.getPeer();
    if (!peer) return false;
    std::string bytes = "HTTP/1.1 " + std::to_string(reply.status) + " " +
                        Http::codeString(static_cast<Http::Code>(reply.status)) +
                        "\r\nContent-Type: " + reply.content_type + "\r\n";
    for (const auto& [name, value] : reply.headers) bytes += name + ": " + value + "\r\n";
    bytes += "Content-Length: " + std::to_string(reply.body.size()) + "\r\n\r\n";
    const int fd = ::fcntl(peer->fd(), F_DUPFD_CLOEXEC, 0);
    if (fd < 0) return false;
    if (head) reply.body.clear();
    // What Pistache does once it has sent an answer: the connection waits for its next request,
    // and its keep-alive timeout (not the request timeouts) applies.
    peer->setIdle(true);
    answers.Write(fd, std::move(bytes), std::move(reply.body));
    return true;
  }

  void Route(const Http::Request& req, Responder respond) {
    const std::string& path = req.resource();
    Http::Method method = req.method();
    auto only = [&](Http::Method allowed) {
      const bool get = allowed == Http::Method::Get;
      if (method == allowed || (get && method == Http::Method::Head)) return true;
      HttpReply r = JsonError(405, "method not allowed on " + Bounded(path));
      r.headers.emplace_back("Allow", get ? "GET, HEAD" : Http::methodString(allowed));
      respond(std::move(r));
      return false;
    };

    if (path == "/insert") {
      if (!only(Http::Method::Post)) return;
      if (req.body().size() > max_body_bytes_) {
        service_->InsertTooLarge();
        respond(JsonError(413, "body of " + std::to_string(req.body().size()) +
                                   " bytes is over the limit of " +
                                   std::to_string(max_body_bytes_)));
        return;
      }
      service_->Insert(req.body(), std::move(respond));
    } else if (path == "/get-all") {
      if (only(Http::Method::Get)) respond(service_->GetAll());
    } else if (path == "/messages") {
      if (!only(Http::Method::Get)) return;
      auto from = QueryNumber(req, "from");
      auto limit = QueryNumber(req, "limit");
      auto wait = QueryNumber(req, "waitMs");
      for (const auto* r : {&from, &limit, &wait}) {
        if (!r->ok()) {
          respond(JsonError(400, r->status().message()));
          return;
        }
      }
      uint64_t limit_value = limit.value().value_or(100);
      if (limit_value == 0 || limit_value > 10000) {
        respond(JsonError(400, "query parameter 'limit' must be in 1..10000"));
        return;
      }
      uint64_t wait_value = wait.value().value_or(0);
      if (wait_value > kMaxLongPollMs) {
        respond(JsonError(
            400, "query parameter 'waitMs' must be at most " + std::to_string(kMaxLongPollMs)));
        return;
      }
      service_->Messages(std::max<uint64_t>(from.value().value_or(1), 1), limit_value, wait_value,
                         std::move(respond));
    } else if (path == "/health") {
      if (only(Http::Method::Get)) respond(service_->Health());
    } else if (path == "/healthz") {
      if (only(Http::Method::Get)) respond(HttpReply{200, R"({"status":"ok"})", {}});
    } else if (path == "/readyz") {
      if (only(Http::Method::Get)) respond(service_->Ready());
    } else if (path == "/metrics") {
      if (!only(Http::Method::Get)) return;
      respond(service_->Metrics());
    } else {
      respond(JsonError(404, "no such path: " + Bounded(path)));
    }
  }

  Service* const service_;
  const uint64_t max_body_bytes_;
  AnswerWriter* const answers_;
  const uint64_t slow_answers_max_bytes_;
};

}  // namespace

HttpServer::HttpServer(HttpOptions options, Service* service)
    : options_(std::move(options)), service_(service) {}

HttpServer::~HttpServer() { Shutdown(); }

Result<uint16_t> HttpServer::Start() {
  try {
    Address addr(options_.address, Port(options_.port));
    endpoint_ = std::make_unique<Http::Endpoint>(addr);
    // Requests parked for their write concern, and long polls, must outlive Pistache's own
    // timers, whichever is longer.
    auto wait = std::chrono::milliseconds(std::max(options_.max_wait_ms, kMaxLongPollMs) + 60000);
    auto opts = Http::Endpoint::options()
                    .threads(options_.threads)
                    .flags(Tcp::Options::ReuseAddr)
                    // Headroom above the body limit so we answer oversize bodies ourselves (JSON
                    // 413) and Pistache's own plain 413 only hits absurdly large requests.
                    .maxRequestSize(options_.max_body_bytes * 2 + 64 * 1024)
                    .maxResponseSize(1ull << 31)
                    .headerTimeout(wait)
                    .bodyTimeout(wait);
    endpoint_->init(opts);
    answers_ =
        std::make_unique<AnswerWriter>(std::chrono::milliseconds(options_.answer_stall_timeout_ms));
    endpoint_->setHandler(Http::make_handler<Handler>(
        service_, options_.max_body_bytes, answers_.get(), options_.slow_answers_max_bytes));
    endpoint_->serveThreaded();
    return static_cast<uint16_t>(endpoint_->getPort());
  } catch (const std::exception& e) {
    endpoint_.reset();
    return Status::Unavailable("cannot serve HTTP on " + options_.address + ":" +
                               std::to_string(options_.port) + ": " + e.what());
  }
}

void HttpServer::Shutdown() {
  if (endpoint_) {
    endpoint_->shutdown();
    endpoint_.reset();
  }
  answers_.reset();  // After the endpoint: its handlers hand answers to it.
}

}  // namespace rlog::http
