#include "http/insert_request.h"

#include <gtest/gtest.h>

#include <optional>
#include <random>

#include "http/insert_request_reference.h"

namespace rlog::http {
namespace {

TEST(InsertRequest, OriginalBodyIsAccepted) {
  auto r = ParseInsertRequest(R"({"message": "hello", "writeConcern": 2})");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->message, "hello");
  EXPECT_EQ(r->concern.Resolve(3), 2u);
}

TEST(InsertRequest, MissingConcernMeansOne) {
  auto r = ParseInsertRequest(R"({"message": ""})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->concern.Resolve(3), 1u);
}

TEST(InsertRequest, WIsAnAliasAndMajorityAndAllResolveAgainstClusterSize) {
  auto w = ParseInsertRequest(R"({"message": "m", "w": 3})");
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->concern.Resolve(5), 3u);
  auto maj = ParseInsertRequest(R"({"message": "m", "writeConcern": "majority"})");
  ASSERT_TRUE(maj.ok());
  EXPECT_EQ(maj->concern.Resolve(3), 2u);
  EXPECT_EQ(maj->concern.Resolve(4), 3u);
  EXPECT_EQ(maj->concern.Label(), "majority");
  auto all = ParseInsertRequest(R"({"message": "m", "writeConcern": "all"})");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->concern.Resolve(3), 3u);
}

TEST(InsertRequest, OptionalFields) {
  auto r = ParseInsertRequest(R"({"message": "m", "timeoutMs": 250, "idempotencyKey": "k1"})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->timeout_ms, std::optional<uint64_t>(250));
  EXPECT_EQ(r->idempotency_key, std::optional<std::string>("k1"));
}

TEST(InsertRequest, MalformedBodiesAreRejectedWithAReason) {
  const char* bad[] = {
      "",
      "{",
      "not json",
      "[1,2]",
      "\"just a string\"",
      R"({"writeConcern": 1})",
      R"({"message": 5})",
      R"({"message": null})",
      R"({"message": "m", "writeConcern": 0})",
      R"({"message": "m", "writeConcern": -1})",
      R"({"message": "m", "writeConcern": 1.5})",
      R"({"message": "m", "writeConcern": 1e20})",
      R"({"message": "m", "writeConcern": 99999999999999999999999})",
      R"({"message": "m", "writeConcern": "x"})",
      R"({"message": "m", "writeConcern": true})",
      R"({"message": "m", "writeConcern": 1, "w": 1})",
      R"({"message": "m", "timeoutMs": 0})",
      R"({"message": "m", "timeoutMs": "5"})",
      R"({"message": "m", "idempotencyKey": ""})",
      R"({"message": "m", "idempotencyKey": 7})",
      R"({"message": "m", "writeconcern": 3})",
  };
  for (const char* body : bad) {
    auto r = ParseInsertRequest(body);
    EXPECT_FALSE(r.ok()) << body;
    if (!r.ok()) {
      EXPECT_FALSE(r.status().message().empty());
    }
  }
}

TEST(InsertRequest, NonUtf8IsRejected) {
  std::string body = "{\"message\": \"\xff\xfe\"}";
  EXPECT_FALSE(ParseInsertRequest(body).ok());
}

TEST(InsertRequest, AByteOrderMarkIsIgnored) {
  auto r = ParseInsertRequest("\xEF\xBB\xBF{\"message\": \"bom\", \"w\": 2}");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->message, "bom");
  EXPECT_EQ(r->concern.count, 2u);
  // Only one, and only at the start; a mark alone is an empty body.
  EXPECT_FALSE(ParseInsertRequest("\xEF\xBB\xBF\xEF\xBB\xBF{\"message\": \"m\"}").ok());
  EXPECT_FALSE(ParseInsertRequest("{\"message\": \"m\"}\xEF\xBB\xBF").ok());
  auto empty = ParseInsertRequest("\xEF\xBB\xBF");
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.status().message().find("empty body"), std::string::npos);
}

TEST(InsertRequest, OversizedKeyIsRejected) {
  std::string body = R"({"message": "m", "idempotencyKey": ")" + std::string(300, 'k') + "\"}";
  EXPECT_FALSE(ParseInsertRequest(body).ok());
}

TEST(InsertRequest, AFieldGivenTwiceIsRejected) {
  EXPECT_FALSE(ParseInsertRequest(R"({"message": "a", "message": "b"})").ok());
  EXPECT_FALSE(ParseInsertRequest(R"({"message": "m", "w": 1, "w": 2})").ok());
  auto r = ParseInsertRequest(R"({"message": "m", "timeoutMs": 5, "timeoutMs": 5})");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("twice"), std::string::npos) << r.status().message();
}

TEST(InsertRequest, NestedValuesAreIgnoredOnlyInsideTheirField) {
  EXPECT_FALSE(ParseInsertRequest(R"({"message": {"message": "m"}})").ok());
  EXPECT_FALSE(ParseInsertRequest(R"({"message": ["m"]})").ok());
  EXPECT_FALSE(ParseInsertRequest(R"({"message": "m", "w": [1]})").ok());
  auto r = ParseInsertRequest(R"({"message": "m\u00e9\n", "w": "all"})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->message, "m\xc3\xa9\n");
}

TEST(InsertRequest, DeepNestingIsRefusedWithoutRecursion) {
  // simdjson refuses documents nested deeper than 1024 levels; nothing recurses on the stack.
  std::string deep =
      R"({"message": "m", "other": )" + std::string(100000, '[') + std::string(100000, ']') + "}";
  auto r = ParseInsertRequest(deep);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("not valid JSON"), std::string::npos) << r.status().message();
}

TEST(InsertRequest, AnOutOfRangeNumberIsNamedAsSuch) {
  auto r = ParseInsertRequest(R"({"message": "m", "w": 99999999999999999999999})");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("out of range"), std::string::npos) << r.status().message();
}

TEST(InsertRequest, LargeBodiesAndSmallOnesAfterThemParseAlike) {
  // Bodies over the size the per-thread parser keeps take a parser of their own.
  for (size_t size : {10u, 70000u, 1u << 20, 20u}) {
    std::string message(size, 'x');
    message[size / 2] = '"';
    std::string escaped = message.substr(0, size / 2) + "\\\"" + message.substr(size / 2 + 1);
    auto r = ParseInsertRequest(R"({"w": 2, "message": ")" + escaped + "\"}");
    ASSERT_TRUE(r.ok()) << size << ": " << r.status().message();
    EXPECT_EQ(r->message, message);
    EXPECT_EQ(r->concern.count, 2u);
  }
}

TEST(InsertRequest, ControlCharactersInStringsAreRefused) {
  EXPECT_FALSE(ParseInsertRequest(std::string("{\"message\": \"a") + '\x01' + "b\"}").ok());
  static const char kRawNul[] = "{\"message\": \"a\0b\"}";
  EXPECT_FALSE(ParseInsertRequest(std::string_view(kRawNul, sizeof kRawNul - 1)).ok());
  auto r = ParseInsertRequest(R"({"message": "a\u0000b"})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->message, std::string("a\0b", 3));
}

// Seeded random bodies: valid and invalid fields in any order (no field twice), nested values,
// odd numbers, strings with escapes and raw bytes, and bodies cut short or with a byte changed.
std::string RandomBody(std::mt19937_64& rng) {
  auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };
  const char* values[] = {
      "\"hello\"",
      "\"\"",
      "\"majority\"",
      "\"all\"",
      "\"x\\u00e9\\n\\\"q\"",
      "\"\xff\xfe\"",
      "\"\xc3\xa9\"",
      "0",
      "1",
      "2",
      "3",
      "-1",
      "1.5",
      "1e3",
      "18446744073709551615",
      "18446744073709551616",
      "99999999999999999999999",
      "true",
      "null",
      "[]",
      "[1, \"a\"]",
      "{}",
      "{\"message\": \"m\"}",
      "{\"w\": [1, {\"x\": null}]}",
  };
  const char* keys[] = {"message",        "writeConcern", "w",     "timeoutMs",
                        "idempotencyKey", "writeconcern", "other", ""};
  if (pick(20) == 0) return values[pick(std::size(values))];  // Not an object.
  std::vector<const char*> fields(std::begin(keys), std::end(keys));
  std::shuffle(fields.begin(), fields.end(), rng);
  fields.resize(pick(5));
  if (pick(3) != 0) fields.push_back("message");  // Usually present...
  std::sort(fields.begin(), fields.end());
  fields.erase(std::unique(fields.begin(), fields.end(),
                           [](const char* a, const char* b) { return std::string(a) == b; }),
               fields.end());  // ...and never twice.
  std::shuffle(fields.begin(), fields.end(), rng);
  std::string body = "{";
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i > 0) body += pick(2) ? ", " : ",";
    std::string value = values[pick(std::size(values))];
    if (std::string(fields[i]) == "idempotencyKey" && pick(4) == 0) {
      value = "\"" + std::string(kMaxIdempotencyKeyBytes + pick(3) - 1, 'k') + "\"";
    }
    body += "\"" + std::string(fields[i]) + "\":" + value;
  }
  body += "}";
  if (pick(10) == 0) body.resize(pick(body.size()));                                   // Cut short.
  if (pick(10) == 0 && !body.empty()) body[pick(body.size())] = "{}\",:x\\"[pick(7)];  // Mangled.
  return body;
}

TEST(InsertRequest, AgreesWithTheReferenceOnSeededRandomBodies) {
  std::mt19937_64 rng(20261202);
  int accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    const std::string body = RandomBody(rng);
    std::optional<InsertRequest> want = ReferenceParseInsertRequest(body);
    Result<InsertRequest> got = ParseInsertRequest(body);
    ASSERT_EQ(got.ok(), want.has_value()) << body;
    if (!want) {
      EXPECT_FALSE(got.status().message().empty()) << body;
      continue;
    }
    ++accepted;
    EXPECT_EQ(got->message, want->message) << body;
    EXPECT_EQ(got->concern.kind, want->concern.kind) << body;
    EXPECT_EQ(got->concern.count, want->concern.count) << body;
    EXPECT_EQ(got->timeout_ms, want->timeout_ms) << body;
    EXPECT_EQ(got->idempotency_key, want->idempotency_key) << body;
  }
  // Both sides of the comparison are exercised.
  EXPECT_GT(accepted, 500);
  EXPECT_LT(accepted, 19000);
}

}  // namespace
}  // namespace rlog::http
