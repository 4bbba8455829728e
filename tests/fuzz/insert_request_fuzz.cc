// Fuzz target: ParseInsertRequest (POST /insert bodies) against a reference built on another JSON
// parser. The reference applies the rules of insert_request.h to nlohmann::json's DOM, so the
// two must agree on every body: accepted or refused, and when accepted, on every field. Checked
// besides: no crash or undefined behaviour (sanitizers), every refusal has a message, and an
// accepted request satisfies the documented ranges.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "fuzz_support.h"
#include "http/insert_request.h"

namespace {

using rlog::http::InsertRequest;
using rlog::http::WriteConcern;
using json = nlohmann::json;

// simdjson refuses documents nested deeper than this (its default max depth).
constexpr int kMaxDepth = 1024;

struct Reference {
  bool decided = true;  // False where the two parsers legitimately differ (see below).
  bool ok = false;
  bool has_float = false;
  InsertRequest req;
};

// A non-negative integer as insert_request.h counts one: nlohmann types them unsigned; "-0" is
// a signed zero, which is not positive anyway.
std::optional<uint64_t> Unsigned(const json& v) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer() && v.get<int64_t>() >= 0)
    return static_cast<uint64_t>(v.get<int64_t>());
  return std::nullopt;
}

// True if `v` holds a number nlohmann keeps as a float: a fraction or exponent, or an integer
// literal beyond 64 bits. simdjson refuses some of those that nlohmann keeps (out of range).
bool HasFloat(const json& v) {
  if (v.is_number_float()) return true;
  if (v.is_structured()) {
    for (const json& child : v) {
      if (HasFloat(child)) return true;
    }
  }
  return false;
}

Reference ParseReference(std::string_view body) {
  Reference r;
  // nlohmann's lexer takes a NUL byte for the end of the input and accepts what came before it;
  // JSON allows no raw NUL anywhere (not even in strings), and simdjson refuses it.
  if (body.empty() || body.find('\0') != std::string_view::npos) return r;
  int max_depth = 0;
  std::set<std::string> top_keys;
  bool duplicate = false;
  json::parser_callback_t callback = [&](int depth, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::object_start || event == json::parse_event_t::array_start) {
      max_depth = std::max(max_depth, depth + 1);
    }
    if (event == json::parse_event_t::key && depth == 1) {
      if (!top_keys.insert(parsed.get<std::string>()).second) duplicate = true;
    }
    return true;
  };
  json doc = json::parse(body.begin(), body.end(), callback, /*allow_exceptions=*/false);
  // Where exactly each parser counts the limit is not worth modelling: bodies near it are left
  // out, deeper ones must be refused.
  if (max_depth > kMaxDepth - 2 && max_depth <= kMaxDepth + 2) r.decided = false;
  if (doc.is_discarded() || max_depth > kMaxDepth) return r;
  r.has_float = HasFloat(doc);
  if (!doc.is_object() || duplicate) return r;
  if (doc.contains("writeConcern") && doc.contains("w")) return r;
  for (const auto& [key, value] : doc.items()) {
    if (key == "message") {
      if (!value.is_string()) return r;
      r.req.message = value.get<std::string>();
    } else if (key == "writeConcern" || key == "w") {
      auto n = Unsigned(value);
      if (value.is_string() && value.get<std::string>() == "majority") {
        r.req.concern.kind = WriteConcern::Kind::kMajority;
      } else if (value.is_string() && value.get<std::string>() == "all") {
        r.req.concern.kind = WriteConcern::Kind::kAll;
      } else if (n && *n >= 1) {
        r.req.concern.count = *n;
      } else {
        return r;
      }
    } else if (key == "timeoutMs") {
      auto n = Unsigned(value);
      if (!n || *n == 0) return r;
      r.req.timeout_ms = *n;
    } else if (key == "idempotencyKey") {
      if (!value.is_string()) return r;
      std::string k = value.get<std::string>();
      if (k.empty() || k.size() > rlog::http::kMaxIdempotencyKeyBytes) return r;
      r.req.idempotency_key = k;
    } else {
      return r;
    }
  }
  if (!doc.contains("message")) return r;
  r.ok = true;
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  auto got = rlog::http::ParseInsertRequest(body);
  if (!got.ok()) {
    FUZZ_CHECK(!got.status().message().empty(), body);
  } else {
    const InsertRequest& req = got.value();
    FUZZ_CHECK(req.concern.kind != WriteConcern::Kind::kCount || req.concern.count >= 1, body);
    FUZZ_CHECK(!req.timeout_ms || *req.timeout_ms >= 1, body);
    FUZZ_CHECK(!req.idempotency_key ||
                   (!req.idempotency_key->empty() &&
                    req.idempotency_key->size() <= rlog::http::kMaxIdempotencyKeyBytes),
               body);
  }

  Reference want = ParseReference(body);
  if (!want.decided) return 0;
  // simdjson refuses numbers out of its range that nlohmann keeps as floats (or infinity); such a
  // refusal must say so.
  if (!got.ok() && want.has_float && got.status().message().find("number") != std::string::npos) {
    return 0;
  }
  if (got.ok() != want.ok) {
    std::fprintf(stderr, "ours: %s\nreference: %s\n",
                 got.ok() ? "accepted" : got.status().message().c_str(),
                 want.ok ? "accepted" : "refused");
  }
  FUZZ_CHECK(got.ok() == want.ok, body);
  if (!got.ok()) return 0;
  const InsertRequest& a = got.value();
  const InsertRequest& b = want.req;
  FUZZ_CHECK(a.message == b.message, body);
  FUZZ_CHECK(a.concern.kind == b.concern.kind, body);
  FUZZ_CHECK(a.concern.kind != WriteConcern::Kind::kCount || a.concern.count == b.concern.count,
             body);
  FUZZ_CHECK(a.timeout_ms == b.timeout_ms, body);
  FUZZ_CHECK(a.idempotency_key == b.idempotency_key, body);
  return 0;
}
