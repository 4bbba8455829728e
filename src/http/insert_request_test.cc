#include "http/insert_request.h"

#include <gtest/gtest.h>

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

TEST(InsertRequest, OversizedKeyIsRejected) {
  std::string body = R"({"message": "m", "idempotencyKey": ")" + std::string(300, 'k') + "\"}";
  EXPECT_FALSE(ParseInsertRequest(body).ok());
}

}  // namespace
}  // namespace rlog::http
