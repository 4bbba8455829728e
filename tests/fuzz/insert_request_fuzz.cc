// Fuzz target: ParseInsertRequest (POST /insert bodies) against the reference of
// http/insert_request_reference.h, which applies the rules of insert_request.h to another JSON
// parser's DOM: the two must agree on every body, accepted or refused, and when accepted on
// every field (the reference keeps them in their ranges). Checked besides: no crash or undefined
// behaviour (sanitizers), and every refusal has a message.
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string_view>

#include "fuzz_support.h"
#include "http/insert_request.h"
#include "http/insert_request_reference.h"

using rlog::http::InsertRequest;
using rlog::http::WriteConcern;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  auto got = rlog::http::ParseInsertRequest(body);
  const std::optional<InsertRequest> want = rlog::http::ReferenceParseInsertRequest(body);
  if (got.ok() != want.has_value()) {
    std::fprintf(stderr, "ours: %s\nreference: %s\n",
                 got.ok() ? "accepted" : got.status().message().c_str(),
                 want ? "accepted" : "refused");
  }
  FUZZ_CHECK(got.ok() == want.has_value(), body);
  if (!got.ok()) {
    FUZZ_CHECK(!got.status().message().empty(), body);
    return 0;
  }
  const InsertRequest& a = got.value();
  const InsertRequest& b = *want;
  FUZZ_CHECK(a.message == b.message, body);
  FUZZ_CHECK(a.concern.kind == b.concern.kind, body);
  FUZZ_CHECK(a.concern.kind != WriteConcern::Kind::kCount || a.concern.count >= 1, body);
  FUZZ_CHECK(a.concern.kind != WriteConcern::Kind::kCount || a.concern.count == b.concern.count,
             body);
  FUZZ_CHECK(a.timeout_ms == b.timeout_ms, body);
  FUZZ_CHECK(a.idempotency_key == b.idempotency_key, body);
  return 0;
}
