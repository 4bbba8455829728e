// The Pistache shell: one HTTP endpoint per node, routing requests to a Service.
//
// Handlers run on Pistache's reactor threads and never block: a request that must wait (a write
// for its concern, a long poll) hands its ResponseWriter to the Service's Responder, which may
// answer later from any thread with exactly one send(). Pistache's header/body timeouts are set
// above the longest wait a request may be parked for, so Pistache does not cut it off with a 408.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/status.h"
#include "http/service.h"

namespace Pistache::Http {
class Endpoint;
}

namespace rlog::http {

class AnswerWriter;

struct HttpOptions {
  std::string address = "0.0.0.0";
  uint16_t port = 8080;
  int threads = 2;
  uint64_t max_body_bytes = 1 << 20;
  uint64_t max_wait_ms = 3600000;  // Longest a request may be parked.
  // A client that takes no byte of a large answer for this long loses its connection
  // (answer_writer.h).
  uint64_t answer_stall_timeout_ms = 30000;
  // While the answer writer holds this many bytes for clients that read slowly, one more large
  // answer is refused with 503 (http.slow_answers_max_bytes).
  uint64_t slow_answers_max_bytes = uint64_t{256} << 20;
};

class HttpServer {
 public:
  HttpServer(HttpOptions options, Service* service);
  ~HttpServer();

  // Binds and starts serving on background threads. Returns the bound port.
  Result<uint16_t> Start();
  void Shutdown();

 private:
  const HttpOptions options_;
  Service* const service_;
  std::unique_ptr<AnswerWriter> answers_;  // Outlives the endpoint_ whose handlers use it.
  std::unique_ptr<Pistache::Http::Endpoint> endpoint_;
};

}  // namespace rlog::http
