#include "http/insert_request.h"

#include <simdjson.h>

#include <iterator>
#include <optional>

namespace rlog::http {

uint64_t WriteConcern::Resolve(uint32_t cluster_size) const {
  switch (kind) {
    case Kind::kMajority:
      return cluster_size / 2 + 1;
    case Kind::kAll:
      return cluster_size;
    case Kind::kCount:
      break;
  }
  return count;
}

std::string WriteConcern::Label() const {
  switch (kind) {
    case Kind::kMajority:
      return "majority";
    case Kind::kAll:
      return "all";
    case Kind::kCount:
      break;
  }
  return std::to_string(count);
}

namespace {

constexpr const char* kFields[] = {"message", "writeConcern", "w", "timeoutMs", "idempotencyKey"};

// A top-level value as the rules below see it: a string, a non-negative integer, or anything else.
struct Value {
  enum class Kind { kString, kUnsigned, kOther } kind = Kind::kOther;
  std::string_view string;
  uint64_t number = 0;
};

Value Classify(simdjson::dom::element element) {
  Value v;
  switch (element.type()) {
    case simdjson::dom::element_type::STRING:
      v.kind = Value::Kind::kString;
      v.string = element.get_string().value_unsafe();
      break;
    case simdjson::dom::element_type::UINT64:
      v.kind = Value::Kind::kUnsigned;
      v.number = element.get_uint64().value_unsafe();
      break;
    case simdjson::dom::element_type::INT64: {
      // simdjson types integers up to INT64_MAX as int64, negative or not; "-0" is 0 and refused
      // like every other non-positive number below.
      int64_t n = element.get_int64().value_unsafe();
      if (n >= 0) {
        v.kind = Value::Kind::kUnsigned;
        v.number = static_cast<uint64_t>(n);
      }
      break;
    }
    default:  // Double (fraction or exponent), bool, null, array, object.
      break;
  }
  return v;
}

// Checks one top-level field and stores it in *req; an error message fit for the client if not.
std::string TakeField(std::string_view key, const Value& v, unsigned* seen, InsertRequest* req) {
  for (unsigned i = 0; i < std::size(kFields); ++i) {
    if (key != kFields[i]) continue;
    if (*seen & (1u << i)) return "field \"" + std::string(key) + "\" is given twice";
    *seen |= 1u << i;
  }
  using Kind = Value::Kind;
  if (key == "message") {
    if (v.kind != Kind::kString) return "\"message\" must be a string";
    req->message.assign(v.string);
  } else if (key == "writeConcern" || key == "w") {
    if ((*seen & 0b110) == 0b110) return "give \"writeConcern\" or \"w\", not both";
    if (v.kind == Kind::kString && v.string == "majority") {
      req->concern.kind = WriteConcern::Kind::kMajority;
    } else if (v.kind == Kind::kString && v.string == "all") {
      req->concern.kind = WriteConcern::Kind::kAll;
    } else if (v.kind == Kind::kUnsigned && v.number >= 1) {
      req->concern.kind = WriteConcern::Kind::kCount;
      req->concern.count = v.number;
    } else {
      return "\"" + std::string(key) + "\" must be a positive integer, \"majority\" or \"all\"";
    }
  } else if (key == "timeoutMs") {
    if (v.kind != Kind::kUnsigned || v.number == 0)
      return "\"timeoutMs\" must be a positive integer";
    req->timeout_ms = v.number;
  } else if (key == "idempotencyKey") {
    if (v.kind != Kind::kString || v.string.empty() || v.string.size() > kMaxIdempotencyKeyBytes) {
      return "\"idempotencyKey\" must be a non-empty string of at most " +
             std::to_string(kMaxIdempotencyKeyBytes) + " bytes";
    }
    req->idempotency_key.emplace(v.string);
  } else {
    return "unknown field \"" + std::string(key) +
           "\" (expected message, writeConcern or w, timeoutMs, idempotencyKey)";
  }
  return {};
}

// Bodies up to this size are parsed by a parser kept per thread (its buffers grow to the largest
// body it has seen: simdjson 3.0.1 allocates about 14 bytes per byte of capacity, 8 of tape, 4 of
// structural indexes and 5/3 of string buffer); larger ones, rare, by one made for them.
constexpr size_t kKeptParserBytes = 64 * 1024;

}  // namespace

Result<InsertRequest> ParseInsertRequest(std::string_view body) {
  // RFC 8259, 8.1: a parser may ignore a UTF-8 byte order mark, and clients on Windows send one.
  // nlohmann's parser, used before simdjson, ignored it (found by tests/fuzz/insert_request_fuzz).
  constexpr std::string_view kByteOrderMark = "\xEF\xBB\xBF";
  if (body.starts_with(kByteOrderMark)) body.remove_prefix(kByteOrderMark.size());
  if (body.empty()) return Status::InvalidArgument("empty body: expected a JSON object");
  // simdjson reads SIMDJSON_PADDING bytes past the end: parse a padded copy (no allocation once
  // the thread's buffer is large enough).
  thread_local std::string kept_buffer;
  thread_local simdjson::dom::parser kept_parser;
  std::string own_buffer;
  std::optional<simdjson::dom::parser> own_parser;
  std::string* padded = &kept_buffer;
  simdjson::dom::parser* parser = &kept_parser;
  if (body.size() > kKeptParserBytes) {
    padded = &own_buffer;
    parser = &own_parser.emplace();
  }
  padded->assign(body);
  padded->append(simdjson::SIMDJSON_PADDING, '\0');

  // The whole body is validated (syntax, UTF-8 in every string, depth up to 1024) before any
  // field is looked at, so a syntax error anywhere wins over a field's error, as with a DOM parse.
  simdjson::dom::element doc;
  simdjson::error_code error =
      parser->parse(padded->data(), body.size(), /*realloc_if_needed=*/false).get(doc);
  if (error == simdjson::NUMBER_ERROR) {
    return Status::InvalidArgument("body has a number that is malformed or out of range");
  }
  if (error) return Status::InvalidArgument("body is not valid JSON (or not UTF-8)");
  simdjson::dom::object object;
  if (doc.get_object().get(object)) return Status::InvalidArgument("body must be a JSON object");

  InsertRequest req;
  unsigned seen = 0;  // Bit i: kFields[i] was given.
  for (simdjson::dom::key_value_pair field : object) {
    std::string problem = TakeField(field.key, Classify(field.value), &seen, &req);
    if (!problem.empty()) return Status::InvalidArgument(problem);
  }
  if ((seen & 1u) == 0) return Status::InvalidArgument("missing \"message\"");
  return req;
}

}  // namespace rlog::http
