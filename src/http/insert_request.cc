#include "http/insert_request.h"

#include <nlohmann/json.hpp>

namespace rlog::http {

using nlohmann::json;

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

Result<WriteConcern> ParseConcern(const json& v, const char* field) {
  WriteConcern wc;
  if (v.is_string()) {
    const auto& s = v.get_ref<const std::string&>();
    if (s == "majority") {
      wc.kind = WriteConcern::Kind::kMajority;
      return wc;
    }
    if (s == "all") {
      wc.kind = WriteConcern::Kind::kAll;
      return wc;
    }
  } else if (v.is_number_unsigned()) {
    wc.count = v.get<uint64_t>();
    if (wc.count >= 1) return wc;
  }
  return Status::InvalidArgument(std::string("\"") + field +
                                 "\" must be a positive integer, \"majority\" or \"all\"");
}

}  // namespace

Result<InsertRequest> ParseInsertRequest(std::string_view body) {
  if (body.empty()) return Status::InvalidArgument("empty body: expected a JSON object");
  json doc = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return Status::InvalidArgument("body is not valid JSON (or not UTF-8)");
  if (!doc.is_object()) return Status::InvalidArgument("body must be a JSON object");

  InsertRequest req;
  bool have_message = false, have_concern = false;
  for (const auto& [key, value] : doc.items()) {
    if (key == "message") {
      if (!value.is_string()) return Status::InvalidArgument("\"message\" must be a string");
      req.message = value.get<std::string>();
      have_message = true;
    } else if (key == "writeConcern" || key == "w") {
      if (have_concern) return Status::InvalidArgument("give \"writeConcern\" or \"w\", not both");
      Result<WriteConcern> wc = ParseConcern(value, key.c_str());
      if (!wc.ok()) return wc.status();
      req.concern = wc.value();
      have_concern = true;
    } else if (key == "timeoutMs") {
      if (!value.is_number_unsigned() || value.get<uint64_t>() == 0) {
        return Status::InvalidArgument("\"timeoutMs\" must be a positive integer");
      }
      req.timeout_ms = value.get<uint64_t>();
    } else if (key == "idempotencyKey") {
      if (!value.is_string() || value.get_ref<const std::string&>().empty() ||
          value.get_ref<const std::string&>().size() > kMaxIdempotencyKeyBytes) {
        return Status::InvalidArgument("\"idempotencyKey\" must be a non-empty string of at most " +
                                       std::to_string(kMaxIdempotencyKeyBytes) + " bytes");
      }
      req.idempotency_key = value.get<std::string>();
    } else {
      return Status::InvalidArgument("unknown field \"" + key +
                                     "\" (expected message, writeConcern or w, timeoutMs, "
                                     "idempotencyKey)");
    }
  }
  if (!have_message) return Status::InvalidArgument("missing \"message\"");
  return req;
}

}  // namespace rlog::http
