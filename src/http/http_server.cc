#include "http/http_server.h"

#include <pistache/endpoint.h>
#include <pistache/http.h>
#include <spdlog/spdlog.h>

#include <charconv>
#include <nlohmann/json.hpp>

namespace rlog::http {

using namespace Pistache;

HttpReply JsonError(int status, const std::string& message, const std::string& extra_fields) {
  nlohmann::json j = {{"error", message}};
  std::string body = j.dump();
  if (!extra_fields.empty()) body = body.substr(0, body.size() - 1) + "," + extra_fields + "}";
  return HttpReply{status, std::move(body), {}};
}

namespace {

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

// A parsed unsigned integer query parameter, or an error naming it.
Result<std::optional<uint64_t>> QueryNumber(const Http::Request& req, const char* name) {
  auto value = req.query().get(name);
  if (!value) return std::optional<uint64_t>();
  uint64_t n = 0;
  const char* end = value->data() + value->size();
  auto [ptr, ec] = std::from_chars(value->data(), end, n);
  if (value->empty() || ec != std::errc() || ptr != end) {
    return Status::InvalidArgument(std::string("query parameter '") + name +
                                   "' must be a non-negative integer");
  }
  return std::optional<uint64_t>(n);
}

class Handler final : public Http::Handler {
 public:
  HTTP_PROTOTYPE(Handler)

  Handler(Service* service, uint64_t max_body_bytes)
      : service_(service), max_body_bytes_(max_body_bytes) {}

  void onRequest(const Http::Request& req, Http::ResponseWriter writer) override {
    auto shared = std::make_shared<Http::ResponseWriter>(std::move(writer));
    Responder respond = [shared](HttpReply reply) { Send(*shared, std::move(reply)); };
    try {
      Route(req, std::move(respond));
    } catch (const std::exception& e) {
      // Nothing below should throw; if it does, answer rather than take the server down.
      spdlog::error("request {} {} failed: {}", Http::methodString(req.method()), req.resource(),
                    e.what());
      Send(*shared, JsonError(500, "internal error"));
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

  void Route(const Http::Request& req, Responder respond) {
    const std::string& path = req.resource();
    Http::Method method = req.method();
    auto only = [&](Http::Method allowed) {
      if (method == allowed) return true;
      HttpReply r = JsonError(405, "method not allowed on " + path);
      r.headers.emplace_back("Allow", Http::methodString(allowed));
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
      if (wait_value > 300000) {
        respond(JsonError(400, "query parameter 'waitMs' must be at most 300000"));
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
      respond(JsonError(404, "no such path: " + path));
    }
  }

  Service* const service_;
  const uint64_t max_body_bytes_;
};

}  // namespace

HttpServer::HttpServer(HttpOptions options, Service* service)
    : options_(std::move(options)), service_(service) {}

HttpServer::~HttpServer() { Shutdown(); }

Result<uint16_t> HttpServer::Start() {
  try {
    Address addr(options_.address, Port(options_.port));
    endpoint_ = std::make_unique<Http::Endpoint>(addr);
    // Requests parked for their write concern must outlive Pistache's own timers.
    auto wait = std::chrono::milliseconds(options_.max_wait_ms + 60000);
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
    endpoint_->setHandler(Http::make_handler<Handler>(service_, options_.max_body_bytes));
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
}

}  // namespace rlog::http
