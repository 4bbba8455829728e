#include "http/insert_request_reference.h"

#include <cstdint>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

namespace rlog::http {
namespace {

using json = nlohmann::json;

// A non-negative integer: nlohmann types them unsigned; "-0" is a signed zero, which is not
// positive anyway.
std::optional<uint64_t> Unsigned(const json& v) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer() && v.get<int64_t>() >= 0) {
    return static_cast<uint64_t>(v.get<int64_t>());
  }
  return std::nullopt;
}

}  // namespace

std::optional<InsertRequest> ReferenceParseInsertRequest(std::string_view body) {
  // nlohmann's lexer takes a NUL byte for the end of the input and accepts what came before it;
  // JSON allows no raw NUL anywhere, not even in strings.
  if (body.empty() || body.find('\0') != std::string_view::npos) return std::nullopt;
  // nlohmann keeps the last of two equal keys; the rules refuse a field given twice.
  std::set<std::string> keys;
  bool duplicate = false;
  json::parser_callback_t note_keys = [&](int depth, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::key && depth == 1) {
      duplicate = duplicate || !keys.insert(parsed.get<std::string>()).second;
    }
    return true;
  };
  const json doc = json::parse(body.begin(), body.end(), note_keys, /*allow_exceptions=*/false);
  // Every accepted value is a string or an integer at the top level, so a body refused for its
  // depth (simdjson stops at 1024) or for a number out of range is refused here too.
  if (doc.is_discarded() || !doc.is_object() || duplicate || !doc.contains("message")) {
    return std::nullopt;
  }
  if (doc.contains("writeConcern") && doc.contains("w")) return std::nullopt;
  InsertRequest req;
  for (const auto& [key, value] : doc.items()) {
    if (key == "message") {
      if (!value.is_string()) return std::nullopt;
      req.message = value.get<std::string>();
    } else if (key == "writeConcern" || key == "w") {
      const std::optional<uint64_t> n = Unsigned(value);
      if (value == "majority") {
        req.concern.kind = WriteConcern::Kind::kMajority;
      } else if (value == "all") {
        req.concern.kind = WriteConcern::Kind::kAll;
      } else if (n && *n >= 1) {
        req.concern.count = *n;
      } else {
        return std::nullopt;
      }
    } else if (key == "timeoutMs") {
      const std::optional<uint64_t> n = Unsigned(value);
      if (!n || *n == 0) return std::nullopt;
      req.timeout_ms = *n;
    } else if (key == "idempotencyKey") {
      if (!value.is_string()) return std::nullopt;
      std::string k = value.get<std::string>();
      if (k.empty() || k.size() > kMaxIdempotencyKeyBytes) return std::nullopt;
      req.idempotency_key = std::move(k);
    } else {
      return std::nullopt;
    }
  }
  return req;
}

}  // namespace rlog::http
