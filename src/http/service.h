// What the HTTP layer asks of a node. The Pistache shell (http_server.h) parses requests and
// turns replies into responses; nodes (src/app) implement this without seeing Pistache.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "core/types.h"

namespace rlog::http {

struct HttpReply {
  int status = 200;
  std::string body;  // JSON unless content_type says otherwise.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string content_type = "application/json";
};

// Answers one request. Call exactly once, from any thread; it never blocks.
using Responder = std::function<void(HttpReply)>;

// {"error": message} plus any extra fields already serialised as `"key":value` pairs.
HttpReply JsonError(int status, const std::string& message, const std::string& extra_fields = "");

class Service {
 public:
  virtual ~Service() = default;
  // POST /insert. `body` is the raw request body (size already checked).
  virtual void Insert(std::string body, Responder respond) = 0;
  // GET /get-all
  virtual HttpReply GetAll() = 0;
  // GET /messages?from=&limit=&waitMs= (parameters already validated).
  virtual void Messages(core::LogId from, size_t limit, uint64_t wait_ms, Responder respond) = 0;
  virtual HttpReply Health() = 0;
  virtual HttpReply Ready() = 0;
  virtual HttpReply Metrics() = 0;
  // An insert was refused with 413 before reaching Insert (for metrics).
  virtual void InsertTooLarge() {}
};

}  // namespace rlog::http
