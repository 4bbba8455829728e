#include "discovery/sentinel_item.h"

#include <gtest/gtest.h>

namespace rlog::discovery {
namespace {

using Kind = SentinelItem::Kind;

SentinelItem Parse(std::string_view text) {
  Result<SentinelItem> item = ParseSentinelItem(text);
  EXPECT_TRUE(item.ok()) << text << ": " << item.status().message();
  return item.ok() ? item.value() : SentinelItem{};
}

std::string ErrorOf(std::string_view text) {
  Result<SentinelItem> item = ParseSentinelItem(text);
  EXPECT_FALSE(item.ok()) << text << " was accepted";
  EXPECT_EQ(item.status().code(), Status::Code::kInvalidArgument);
  return item.status().message();
}

TEST(SentinelItem, HostPortIsStatic) {
  SentinelItem item = Parse("sentinel-0.rlog:9091");
  EXPECT_EQ(item.kind, Kind::kStatic);
  EXPECT_EQ(item.host, "sentinel-0.rlog");
  EXPECT_EQ(item.port, 9091);
  EXPECT_EQ(item.StaticIdentity(), "sentinel-0.rlog:9091");
}

TEST(SentinelItem, Ipv4AndBracketedIpv6AreStatic) {
  EXPECT_EQ(Parse("127.0.0.1:9091").StaticIdentity(), "127.0.0.1:9091");
  SentinelItem v6 = Parse("[::1]:9091");
  EXPECT_EQ(v6.kind, Kind::kStatic);
  EXPECT_EQ(v6.host, "::1");
  EXPECT_EQ(v6.StaticIdentity(), "[::1]:9091");
}

TEST(SentinelItem, SpellingsOfOneSentinelGiveOneIdentity) {
  EXPECT_EQ(Parse("[0:0:0:0:0:0:0:1]:9091").StaticIdentity(), "[::1]:9091");
  EXPECT_EQ(Parse("Sentinel-0.RLOG.:9091").StaticIdentity(), "sentinel-0.rlog:9091");
  EXPECT_EQ(Parse("  127.0.0.1:9091 ").StaticIdentity(), "127.0.0.1:9091");
}

TEST(SentinelItem, DnsItemNamesHostAndPort) {
  SentinelItem item = Parse("dns:///rlog-sentinel.default.svc.cluster.local:9091");
  EXPECT_EQ(item.kind, Kind::kDns);
  EXPECT_EQ(item.host, "rlog-sentinel.default.svc.cluster.local");
  EXPECT_EQ(item.port, 9091);
  EXPECT_EQ(item.text, "dns:///rlog-sentinel.default.svc.cluster.local:9091");
}

TEST(SentinelItem, AbsoluteNamesKeepTheirTrailingDotForTheQuery) {
  EXPECT_EQ(Parse("dns:///rlog.default.svc.cluster.local.:9091").host,
            "rlog.default.svc.cluster.local.");
  EXPECT_EQ(Parse("srv:///_grpc._tcp.rlog.default.svc.cluster.local.").host,
            "_grpc._tcp.rlog.default.svc.cluster.local.");
}

TEST(SentinelItem, SrvItemNamesTheQuery) {
  SentinelItem item = Parse("srv:///_grpc._tcp.rlog-sentinel.default.svc.cluster.local");
  EXPECT_EQ(item.kind, Kind::kSrv);
  EXPECT_EQ(item.host, "_grpc._tcp.rlog-sentinel.default.svc.cluster.local");
  EXPECT_EQ(item.port, 0);
}

TEST(SentinelItem, ErrorsNameTheItemAndTheProblem) {
  std::string e = ErrorOf("sentinel-0");
  EXPECT_NE(e.find("\"sentinel-0\""), std::string::npos) << e;
  EXPECT_NE(e.find("port"), std::string::npos) << e;

  EXPECT_NE(ErrorOf("host:0").find("1..65535"), std::string::npos);
  EXPECT_NE(ErrorOf("host:65536").find("1..65535"), std::string::npos);
  EXPECT_NE(ErrorOf("host:http").find("\"host:http\""), std::string::npos);
  EXPECT_NE(ErrorOf("::1:9091").find("brackets"), std::string::npos);
  EXPECT_NE(ErrorOf("[nope]:9091").find("IPv6"), std::string::npos);
  EXPECT_NE(ErrorOf("bad_host!:9091").find("host name"), std::string::npos);
  EXPECT_NE(ErrorOf("").find("empty"), std::string::npos);
}

TEST(SentinelItem, DnsAndSrvItemsAreChecked) {
  EXPECT_NE(ErrorOf("dns:///name").find("port"), std::string::npos);
  EXPECT_NE(ErrorOf("dns://8.8.8.8/name:9091").find("DNS server"), std::string::npos);
  EXPECT_NE(ErrorOf("srv:///_grpc._tcp.name:9091").find("no port"), std::string::npos);
  EXPECT_NE(ErrorOf("srv:///").find("srv:///"), std::string::npos);
  EXPECT_NE(ErrorOf("srv:///a..b").find("DNS name"), std::string::npos);
  EXPECT_NE(ErrorOf("http://x:1").find("scheme"), std::string::npos);
}

TEST(SentinelItem, ListStopsAtTheFirstBadItem) {
  Result<std::vector<SentinelItem>> items =
      ParseSentinelItems({"a:1", "dns:///b:2", "srv:///_grpc._tcp.c"});
  ASSERT_TRUE(items.ok());
  EXPECT_EQ(items->size(), 3u);
  Result<std::vector<SentinelItem>> bad = ParseSentinelItems({"a:1", "b", "c:3"});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("\"b\""), std::string::npos);
}

TEST(SentinelItem, JoinHostPortBracketsIpv6) {
  EXPECT_EQ(JoinHostPort("10.0.0.1", 9091), "10.0.0.1:9091");
  EXPECT_EQ(JoinHostPort("fd00::1", 9091), "[fd00::1]:9091");
}

TEST(ParseIpPort, TakesIpWithOptionalPort) {
  auto v4 = ParseIpPort("127.0.0.1:5353", 53);
  ASSERT_TRUE(v4.ok());
  EXPECT_EQ(v4->first, "127.0.0.1");
  EXPECT_EQ(v4->second, 5353);
  auto bare = ParseIpPort("10.96.0.10", 53);
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->second, 53);
  auto v6 = ParseIpPort("[::1]:5353", 53);
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->first, "::1");
  auto bare6 = ParseIpPort("::1", 53);
  ASSERT_TRUE(bare6.ok());
  EXPECT_EQ(bare6->second, 53);
  EXPECT_FALSE(ParseIpPort("dns.example:53", 53).ok());
  EXPECT_FALSE(ParseIpPort("127.0.0.1:x", 53).ok());
}

}  // namespace
}  // namespace rlog::discovery
