// Test support: a second reading of POST /insert bodies, by another JSON parser (nlohmann's DOM,
// what rlog parsed them with before simdjson) and the rules of insert_request.h written as
// plainly as they can be. insert_request_test.cc (seeded random bodies) and
// tests/fuzz/insert_request_fuzz.cc check ParseInsertRequest against it.
#pragma once

#include <optional>
#include <string_view>

#include "http/insert_request.h"

namespace rlog::http {

// The request, or nullopt where ParseInsertRequest must refuse the body.
std::optional<InsertRequest> ReferenceParseInsertRequest(std::string_view body);

}  // namespace rlog::http
