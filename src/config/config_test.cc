// LoadConfig as a specification: precedence, the unknown-key check, value checks that name the
// key and the bad value, sentinel lists, --set, checks across settings, --help and --version.
#include "config/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "config/options.h"

namespace rlog {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using Env = std::map<std::string, std::string>;

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "config_test.XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Writes `yaml` to a file in the test's directory and returns its path.
  std::string File(const std::string& yaml, const std::string& name = "rlog.yaml") {
    std::string path = (dir_ / name).string();
    std::ofstream(path) << yaml;
    return path;
  }

  // LoadConfig with argv = {"rlog", args...}.
  static Result<Config> Load(std::vector<std::string> args, const Env& env = {}) {
    std::vector<const char*> argv = {"rlog"};
    for (const std::string& a : args) argv.push_back(a.c_str());
    return LoadConfig(static_cast<int>(argv.size()), argv.data(), env);
  }

  // The message of a load that must fail with InvalidArgument.
  static std::string Error(std::vector<std::string> args, const Env& env = {}) {
    Result<Config> r = Load(std::move(args), env);
    EXPECT_FALSE(r.ok());
    if (r.ok()) return "";
    EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument) << r.status().message();
    return r.status().message();
  }

  std::string FileError(const std::string& yaml) { return Error({"--config", File(yaml)}); }

  static Config MustLoad(std::vector<std::string> args, const Env& env = {}) {
    Result<Config> r = Load(std::move(args), env);
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() ? r.value() : Config{};
  }

  std::filesystem::path dir_;
};

// ---- defaults --------------------------------------------------------------------------------

TEST_F(ConfigTest, DefaultsWorkForLocalCluster) {
  Config master = MustLoad({"--sentinels", "127.0.0.1:9091,127.0.0.1:9092"});
  EXPECT_EQ(master.role, Role::kMaster);
  EXPECT_EQ(master.http_port, 8080);
  EXPECT_EQ(master.node_id, "master-8080");
  EXPECT_EQ(master.advertise_http, "127.0.0.1:8080");
  EXPECT_THAT(master.sentinels, ElementsAre("127.0.0.1:9091", "127.0.0.1:9092"));

  Config s1 = MustLoad({"--role", "sentinel", "--port", "8081", "--grpc-port", "9091"});
  Config s2 = MustLoad({"--role=sentinel", "--port=8082", "--grpc-port=9092"});
  EXPECT_EQ(s1.role, Role::kSentinel);
  EXPECT_EQ(s1.node_id, "sentinel-8081");
  EXPECT_EQ(s2.node_id, "sentinel-8082");
  EXPECT_EQ(s2.advertise_http, "127.0.0.1:8082");
  EXPECT_EQ(s2.grpc_port, 9092);
}

TEST_F(ConfigTest, NothingGivenMeansStructDefaults) {
  Config loaded = MustLoad({});
  const Config defaults;
  for (const auto& spec : config_internal::Options()) {
    if (spec.key == "node_id" || spec.key == "http.advertise") continue;  // derived
    EXPECT_EQ(spec.show(loaded), spec.show(defaults)) << spec.key << spec.flag;
  }
  EXPECT_TRUE(loaded.sentinels.empty());
  EXPECT_EQ(loaded.fsync, FsyncPolicy::kAlways);
  EXPECT_EQ(loaded.log_level, "info");
}

TEST_F(ConfigTest, EveryDefaultIsAcceptedByItsOwnParser) {
  for (const auto& spec : config_internal::Options()) {
    if (spec.key.empty()) continue;
    Result<Config> r = Load({"--set", spec.key + "=" + spec.show(Config{})});
    EXPECT_TRUE(r.ok()) << spec.key << ": " << r.status().message();
  }
}

TEST_F(ConfigTest, EmptyFileSetsNothing) {
  Config c = MustLoad({"--config", File("")});
  EXPECT_EQ(c.http_port, 8080);
}

// ---- precedence ------------------------------------------------------------------------------

TEST_F(ConfigTest, FileOverridesDefaults) {
  Config c = MustLoad({"--config", File(R"(
role: sentinel
node_id: s-a
http:
  address: 127.0.0.1
  port: 18081
  threads: 4
  max_body_bytes: 4096
  advertise: s-a.example:18081
grpc:
  port: 19091
replication:
  batch_max_entries: 100
  window_batches: 4
  heartbeat_ms: 50
health:
  suspect_after_ms: 300
  unhealthy_after_ms: 900
insert:
  idempotency_keys: 0
shutdown:
  drain_timeout_ms: 0
data_dir: /var/lib/rlog
fsync: interval
fsync_interval_ms: 5
log:
  level: debug
  format: json
)")});
  EXPECT_EQ(c.role, Role::kSentinel);
  EXPECT_EQ(c.node_id, "s-a");
  EXPECT_EQ(c.http_address, "127.0.0.1");
  EXPECT_EQ(c.http_port, 18081);
  EXPECT_EQ(c.http_threads, 4);
  EXPECT_EQ(c.max_body_bytes, 4096u);
  EXPECT_EQ(c.advertise_http, "s-a.example:18081");
  EXPECT_EQ(c.grpc_port, 19091);
  EXPECT_EQ(c.batch_max_entries, 100u);
  EXPECT_EQ(c.window_batches, 4u);
  EXPECT_EQ(c.heartbeat_ms, 50u);
  EXPECT_EQ(c.suspect_after_ms, 300u);
  EXPECT_EQ(c.unhealthy_after_ms, 900u);
  EXPECT_EQ(c.idempotency_keys, 0u);
  EXPECT_EQ(c.drain_timeout_ms, 0u);
  EXPECT_EQ(c.data_dir, "/var/lib/rlog");
  EXPECT_EQ(c.fsync, FsyncPolicy::kInterval);
  EXPECT_EQ(c.fsync_interval_ms, 5u);
  EXPECT_EQ(c.log_level, "debug");
  EXPECT_EQ(c.log_format, LogFormat::kJson);
}

TEST_F(ConfigTest, ConfigFileCanBeNamedByEnvironment) {
  Config c = MustLoad({}, {{"CONFIG", File("http: {port: 7000}")}});
  EXPECT_EQ(c.http_port, 7000);
}

TEST_F(ConfigTest, ConfigFlagBeatsConfigEnvironment) {
  std::string from_flag = File("http: {port: 7001}", "a.yaml");
  std::string from_env = File("http: {port: 7002}", "b.yaml");
  EXPECT_EQ(MustLoad({"--config", from_flag}, {{"CONFIG", from_env}}).http_port, 7001);
}

TEST_F(ConfigTest, EnvOverridesFile) {
  std::string path = File("http: {port: 7000}\nfsync: never\n");
  Config c = MustLoad({"--config", path}, {{"PORT", "7100"}});
  EXPECT_EQ(c.http_port, 7100);
  EXPECT_EQ(c.fsync, FsyncPolicy::kNever);  // what env leaves alone, the file keeps
}

TEST_F(ConfigTest, FlagOverridesEnv) {
  std::string path = File("http: {port: 7000}");
  Config c = MustLoad({"--config", path, "--port", "7200"}, {{"PORT", "7100"}, {"FSYNC", "never"}});
  EXPECT_EQ(c.http_port, 7200);
  EXPECT_EQ(c.fsync, FsyncPolicy::kNever);
}

TEST_F(ConfigTest, RecoveryUncleanComesFromFileEnvironmentOrFlag) {
  EXPECT_FALSE(MustLoad({}).recovery_unclean);
  EXPECT_TRUE(MustLoad({"--config", File("recovery: {unclean: true}")}).recovery_unclean);
  EXPECT_TRUE(MustLoad({}, {{"RECOVERY_UNCLEAN", "true"}}).recovery_unclean);
  EXPECT_TRUE(MustLoad({"--recovery-unclean"}).recovery_unclean);
  EXPECT_FALSE(MustLoad({"--set", "recovery.unclean=false"}, {{"RECOVERY_UNCLEAN", "true"}})
                   .recovery_unclean);
  EXPECT_THAT(Error({}, {{"RECOVERY_UNCLEAN", "yes"}}), HasSubstr("RECOVERY_UNCLEAN"));
  EXPECT_THAT(FileError("recovery: {unclean: 1}"), HasSubstr("recovery.unclean"));
}

TEST_F(ConfigTest, SyncOnTheReplicationThreadIsOffUnlessSetForEitherRole) {
  EXPECT_FALSE(MustLoad({}).wal_sync_on_replication_thread);
  EXPECT_TRUE(MustLoad({"--config", File("wal: {sync_on_replication_thread: true}")})
                  .wal_sync_on_replication_thread);
  EXPECT_TRUE(MustLoad({"--role", "sentinel", "--set", "wal.sync_on_replication_thread=true"})
                  .wal_sync_on_replication_thread);
  // A master takes it too (and ignores it), so one config file serves every pod.
  EXPECT_TRUE(MustLoad({"--role", "master", "--set", "wal.sync_on_replication_thread=true"})
                  .wal_sync_on_replication_thread);
  EXPECT_THAT(FileError("wal: {sync_on_replication_thread: yes please}"),
              HasSubstr("wal.sync_on_replication_thread"));
}

TEST_F(ConfigTest, SetFlagOverridesNamedFlag) {
  EXPECT_EQ(MustLoad({"--set", "http.port=7300", "--port", "7200"}).http_port, 7300);
}

TEST_F(ConfigTest, LastOccurrenceOfAFlagWins) {
  EXPECT_EQ(MustLoad({"--port", "1", "--port", "2"}).http_port, 2);
  EXPECT_EQ(MustLoad({"--set", "http.port=1", "--set", "http.port=2"}).http_port, 2);
}

TEST_F(ConfigTest, EmptyEnvironmentValueIsStillAValue) {
  EXPECT_EQ(MustLoad({}, {{"DATA_DIR", ""}}).data_dir, "");
  EXPECT_EQ(Error({}, {{"PORT", ""}}),
            "environment variable PORT: expected an integer in 0..65535, got ''");
}

TEST_F(ConfigTest, AnEmptyFlagValueIsEmptyAndDoesNotTakeTheNextArgument) {
  // CLI11 alone read "--tls-key-file=" as a bare flag and took the next argument as its value.
  EXPECT_EQ(MustLoad({"--data-dir=/tmp/x", "--data-dir=", "--port=7200"}).data_dir, "");
  EXPECT_EQ(MustLoad({"--tls-key-file=", "--port=7200"}).http_port, 7200);
  EXPECT_EQ(MustLoad({"--tls-key-file=", "--port=7200"}).tls_key_file, "");
  EXPECT_EQ(Error({"--port=", "--role=sentinel"}),
            "flag --port: expected an integer in 0..65535, got ''");
  // As from a variable or a file.
  EXPECT_EQ(Error({}, {{"PORT", ""}}),
            "environment variable PORT: expected an integer in 0..65535, got ''");
}

// ---- unknown keys ----------------------------------------------------------------------------

TEST_F(ConfigTest, UnknownTopLevelKeyNamesKey) {
  std::string e = FileError("role: master\nrolle: sentinel\n");
  EXPECT_THAT(e, StartsWith("unknown config key 'rolle'"));
  EXPECT_THAT(e, HasSubstr("rlog.yaml:2"));
  EXPECT_THAT(e, HasSubstr("did you mean 'role'?"));
}

TEST_F(ConfigTest, UnknownNestedKeyNamesDottedPath) {
  std::string e = FileError("http:\n  port: 1\n  prot: 2\n");
  EXPECT_THAT(e, StartsWith("unknown config key 'http.prot'"));
  EXPECT_THAT(e, HasSubstr("did you mean 'http.port'?"));
  EXPECT_THAT(FileError("replication:\n  window:\n    deep: 1\n"),
              StartsWith("unknown config key 'replication.window'"));
  EXPECT_THAT(FileError("metrics:\n  port: 1\n"), StartsWith("unknown config key 'metrics'"));
}

TEST_F(ConfigTest, KeyInTheWrongSectionSuggestsTheRightOne) {
  EXPECT_THAT(FileError("heartbeat_ms: 100\n"),
              HasSubstr("did you mean 'replication.heartbeat_ms'?"));
}

TEST_F(ConfigTest, SectionGivenAValueIsRejected) {
  EXPECT_THAT(FileError("http: 8080\n"),
              StartsWith("config key 'http': expected a mapping of http.* keys, got '8080'"));
}

TEST_F(ConfigTest, SettingGivenAMappingOrListIsRejected) {
  EXPECT_THAT(FileError("http:\n  port: {a: 1}\n"),
              StartsWith("config key 'http.port': expected an integer in 0..65535, got a mapping"));
  EXPECT_THAT(FileError("http:\n  port: [1, 2]\n"),
              StartsWith("config key 'http.port': expected an integer in 0..65535, got a list"));
}

TEST_F(ConfigTest, FlatDottedKeysAreTheSameKeys) {
  EXPECT_EQ(MustLoad({"--config", File("http.port: 7000\n")}).http_port, 7000);
}

// ---- bad values ------------------------------------------------------------------------------

TEST_F(ConfigTest, BadIntegerNamesKeyAndValue) {
  std::string e = FileError("http:\n  port: abc\n");
  EXPECT_THAT(e, StartsWith("config key 'http.port': expected an integer in 0..65535, got 'abc'"));
  EXPECT_THAT(e, HasSubstr("rlog.yaml:2"));
  EXPECT_EQ(Error({}, {{"PORT", "abc"}}),
            "environment variable PORT: expected an integer in 0..65535, got 'abc'");
  EXPECT_EQ(Error({"--port", "abc"}), "flag --port: expected an integer in 0..65535, got 'abc'");
  EXPECT_EQ(Error({"--set", "http.port=abc"}),
            "flag --set http.port: expected an integer in 0..65535, got 'abc'");
}

TEST_F(ConfigTest, NegativePortRejected) {
  EXPECT_THAT(FileError("http: {port: -1}\n"), HasSubstr("got '-1'"));
  EXPECT_THAT(Error({}, {{"GRPC_PORT", "-1"}}), HasSubstr("GRPC_PORT: expected an integer"));
  EXPECT_THAT(Error({"--port=-1"}), HasSubstr("got '-1'"));
  EXPECT_THAT(Error({"--port", "-1"}), HasSubstr("got '-1'"));
  EXPECT_THAT(Error({"--set", "grpc.port=-0"}), HasSubstr("got '-0'"));
}

TEST_F(ConfigTest, IntegersRejectGarbageSignsAndOverflow) {
  for (std::string bad : {"80x", "8 0", " 80", "80 ", "+80", "0x50", "1e3", "8.0", "", "65536",
                          "18446744073709551616", "99999999999999999999999"}) {
    EXPECT_THAT(Error({}, {{"PORT", bad}}), HasSubstr("got '" + bad + "'")) << bad;
  }
  EXPECT_THAT(Error({"--set", "insert.idempotency_keys=18446744073709551616"}),
              HasSubstr("expected an integer in 0..18446744073709551615"));
  EXPECT_EQ(MustLoad({"--set", "insert.idempotency_keys=18446744073709551615"}).idempotency_keys,
            18446744073709551615u);
}

TEST_F(ConfigTest, IntegerRangesAreEnforced) {
  EXPECT_THAT(Error({"--http-threads", "0"}), HasSubstr("expected an integer in 1..64, got '0'"));
  EXPECT_THAT(Error({"--http-threads", "65"}), HasSubstr("got '65'"));
  EXPECT_THAT(Error({"--tick-ms", "1001"}), HasSubstr("in 1..1000"));
  EXPECT_THAT(Error({"--set", "replication.batch_max_bytes=1023"}), HasSubstr("got '1023'"));
  EXPECT_THAT(Error({"--set", "replication.window_batches=1025"}), HasSubstr("1..1024"));
  EXPECT_THAT(Error({"--heartbeat-ms", "4294967296"}), HasSubstr("1..4294967295"));
  // Twice the body limit must not wrap (the HTTP server's request limit).
  EXPECT_THAT(Error({"--max-body-bytes", "18446744073709551615"}), HasSubstr("1..1073741824"));
  EXPECT_EQ(MustLoad({"--max-body-bytes", "1073741824"}).max_body_bytes, uint64_t{1} << 30);
  EXPECT_EQ(MustLoad({}).max_waiting_reads, 10000u);
  EXPECT_EQ(MustLoad({}, {{"MAX_WAITING_READS", "5"}}).max_waiting_reads, 5u);
  EXPECT_THAT(Error({"--max-waiting-reads", "0"}), HasSubstr("1..10000000"));
  EXPECT_THAT(Error({"--default-timeout-ms", "0"}), HasSubstr("got '0'"));
  EXPECT_EQ(MustLoad({"--port", "0", "--grpc-port", "0"}).http_port, 0);  // ephemeral
  EXPECT_THAT(Error({}, {{"EXPECTED_SENTINELS", "1025"}}),
              HasSubstr("EXPECTED_SENTINELS: expected an integer in 0..1024, got '1025'"));
}

TEST_F(ConfigTest, ExpectedSentinelsFromFileEnvAndFlag) {
  EXPECT_EQ(MustLoad({}).expected_sentinels, 0u);
  EXPECT_EQ(MustLoad({"--config", File("discovery: {expected_sentinels: 4}")}).expected_sentinels,
            4u);
  EXPECT_EQ(MustLoad({}, {{"EXPECTED_SENTINELS", "2"}}).expected_sentinels, 2u);
  EXPECT_EQ(
      MustLoad({"--expected-sentinels", "3"}, {{"EXPECTED_SENTINELS", "2"}}).expected_sentinels,
      3u);
}

TEST_F(ConfigTest, GroupCommitWindowFromFileAndSet) {
  EXPECT_EQ(MustLoad({}).wal_group_commit_us, 1000u);
  EXPECT_EQ(MustLoad({"--config", File("wal: {group_commit_us: 0}")}).wal_group_commit_us, 0u);
  EXPECT_EQ(MustLoad({"--set", "wal.group_commit_us=250"}).wal_group_commit_us, 250u);
  EXPECT_THAT(Error({"--set", "wal.group_commit_us=1000001"}),
              HasSubstr("wal.group_commit_us: expected an integer in 0..1000000"));
}

TEST_F(ConfigTest, EnumsAcceptOnlyTheirNames) {
  EXPECT_EQ(Error({"--role", "Master"}),
            "flag --role: expected one of master|sentinel, got 'Master'");
  EXPECT_EQ(Error({}, {{"FSYNC", "sometimes"}}),
            "environment variable FSYNC: expected one of always|interval|never, got 'sometimes'");
  EXPECT_THAT(FileError("log: {format: xml}"),
              StartsWith("config key 'log.format': expected one of text|json, got 'xml'"));
  EXPECT_THAT(Error({"--log-level", "verbose"}),
              HasSubstr("expected one of trace|debug|info|warn|error|off"));
  for (std::string level : {"trace", "debug", "info", "warn", "error", "off"}) {
    EXPECT_EQ(MustLoad({"--log-level", level}).log_level, level);
  }
}

TEST_F(ConfigTest, NamesSpellWhatTheParserAccepts) {
  for (Role r : {Role::kMaster, Role::kSentinel}) {
    EXPECT_EQ(MustLoad({"--role", RoleName(r)}).role, r);
  }
  for (FsyncPolicy p : {FsyncPolicy::kAlways, FsyncPolicy::kInterval, FsyncPolicy::kNever}) {
    EXPECT_EQ(MustLoad({"--fsync", FsyncPolicyName(p)}).fsync, p);
  }
  for (LogFormat f : {LogFormat::kText, LogFormat::kJson}) {
    EXPECT_EQ(MustLoad({"--log-format", LogFormatName(f)}).log_format, f);
  }
}

TEST_F(ConfigTest, AddressesMustNotBeEmpty) {
  EXPECT_EQ(Error({"--http-address", ""}),
            "flag --http-address: expected a non-empty string, got ''");
}

// ---- sentinels -------------------------------------------------------------------------------

TEST_F(ConfigTest, SentinelsAsYamlListOrCommaString) {
  Config list = MustLoad({"--config", File(R"(
sentinels:
  - 10.0.0.1:9091
  - dns:///rlog-sentinel.rlog.svc:9091
  - srv:///_grpc._tcp.rlog-sentinel.rlog.svc
)")});
  EXPECT_THAT(list.sentinels, ElementsAre("10.0.0.1:9091", "dns:///rlog-sentinel.rlog.svc:9091",
                                          "srv:///_grpc._tcp.rlog-sentinel.rlog.svc"));
  Config text = MustLoad({"--config", File("sentinels: 'a:1, b:2'\n")});
  EXPECT_THAT(text.sentinels, ElementsAre("a:1", "b:2"));
}

TEST_F(ConfigTest, SentinelItemsAreTrimmedAndEmptyItemsDropped) {
  EXPECT_THAT(MustLoad({}, {{"SENTINELS", " a:1 , ,b:2,"}}).sentinels, ElementsAre("a:1", "b:2"));
  EXPECT_THAT(MustLoad({"--sentinels", "[::1]:9091"}).sentinels, ElementsAre("[::1]:9091"));
  EXPECT_THAT(MustLoad({"--config", File("sentinels: ['  a:1 ', '']\n")}).sentinels,
              ElementsAre("a:1"));
  EXPECT_TRUE(MustLoad({"--sentinels", "a:1"}, {}).sentinels.size() == 1);
  EXPECT_TRUE(MustLoad({"--sentinels", ""}, {{"SENTINELS", "a:1"}}).sentinels.empty());
}

TEST_F(ConfigTest, BadSentinelItemRejected) {
  for (std::string bad : {"host", "host:", "host:0", "host:65536", "host:abc", ":9091", "dns:///x",
                          "dns:///", "srv:///", "srv:///x:1", "http://x:1", "a b:1", "[zz]:1"}) {
    EXPECT_EQ(
        Error({"--sentinels", "ok:1," + bad}),
        "flag --sentinels: expected host:port, dns:///name:port or srv:///name, got '" + bad + "'")
        << bad;
  }
  EXPECT_THAT(FileError("sentinels: [a:1, host]\n"),
              StartsWith("config key 'sentinels': expected host:port, dns:///name:port or "
                         "srv:///name, got 'host'"));
  EXPECT_THAT(FileError("sentinels: [[a:1]]\n"), StartsWith("config key 'sentinels': expected"));
  EXPECT_THAT(Error({}, {{"SENTINELS", "a"}}), StartsWith("environment variable SENTINELS:"));
}

// ---- the file itself -------------------------------------------------------------------------

TEST_F(ConfigTest, UnreadableFileIsError) {
  std::string missing = (dir_ / "missing.yaml").string();
  std::string e = Error({"--config", missing});
  EXPECT_THAT(e, HasSubstr(missing));
  EXPECT_THAT(e, HasSubstr("No such file or directory"));
  EXPECT_THAT(Error({"--config", dir_.string()}), HasSubstr("cannot read"));
}

TEST_F(ConfigTest, MalformedYamlIsError) {
  std::string e = FileError("http: [port: 1\n");
  EXPECT_THAT(e, HasSubstr("rlog.yaml': malformed YAML"));
  EXPECT_THAT(FileError("a: b: c\n"), HasSubstr("malformed YAML"));
}

TEST_F(ConfigTest, AKeySetTwiceInTheFileIsError) {
  EXPECT_THAT(FileError("role: master\nfsync: never\nrole: sentinel\n"),
              HasSubstr("rlog.yaml': role is set twice (lines 1 and 3)"));
  EXPECT_THAT(FileError("http:\n  port: 1\n  address: a\n  port: 2\n"),
              HasSubstr("http.port is set twice (lines 2 and 4)"));
  EXPECT_THAT(FileError("http.port: 1\nhttp:\n  port: 2\n"),
              HasSubstr("http.port is set twice (lines 1 and 3)"));
  // YAML keys are unique in a mapping: a section given twice is refused too, even for other keys.
  EXPECT_THAT(FileError("http:\n  port: 1\nfsync: never\nhttp:\n  address: a\n"),
              HasSubstr("http is set twice (lines 1 and 4)"));
}

TEST_F(ConfigTest, TopLevelMustBeAMapping) {
  EXPECT_THAT(FileError("- port\n- 8080\n"),
              HasSubstr("expected a mapping of keys at the top level, got a list"));
  EXPECT_THAT(FileError("8080\n"), HasSubstr("got '8080'"));
}

TEST_F(ConfigTest, EmptySectionAndNullValue) {
  Config c = MustLoad({"--config", File("http:\ndata_dir:\n")}, {{"DATA_DIR", "/x"}});
  EXPECT_EQ(c.data_dir, "/x");
  EXPECT_EQ(MustLoad({"--config", File("data_dir: ~\n")}).data_dir, "");
}

// ---- --set -----------------------------------------------------------------------------------

TEST_F(ConfigTest, SetFlagReachesAnyKey) {
  Config c = MustLoad({"--set", "replication.window_batches=16", "--set",
                       "insert.max_timeout_ms=7200000", "--set", "http.advertise=n1:80", "--set",
                       "sentinels=a:1,b:2", "--set=log.format=json"});
  EXPECT_EQ(c.window_batches, 16u);
  EXPECT_EQ(c.max_timeout_ms, 7200000u);
  EXPECT_EQ(c.advertise_http, "n1:80");
  EXPECT_THAT(c.sentinels, ElementsAre("a:1", "b:2"));
  EXPECT_EQ(c.log_format, LogFormat::kJson);
}

TEST_F(ConfigTest, SetFlagValidatesLikeTheFile) {
  EXPECT_EQ(Error({"--set", "http.prot=1"}),
            "unknown config key 'http.prot' (in --set); did you mean 'http.port'?");
  EXPECT_EQ(Error({"--set", "http.port"}), "flag --set: expected KEY=VALUE, got 'http.port'");
  EXPECT_EQ(Error({"--set", "=1"}), "flag --set: expected KEY=VALUE, got '=1'");
  EXPECT_THAT(Error({"--set", "http=1"}), StartsWith("unknown config key 'http'"));
  EXPECT_THAT(Error({"--set", "ports_file=/tmp/p"}), StartsWith("unknown config key 'ports_file'"));
}

// ---- across settings -------------------------------------------------------------------------

TEST_F(ConfigTest, CrossFieldChecks) {
  EXPECT_EQ(Error({"--suspect-after-ms", "1000", "--unhealthy-after-ms", "1000"}),
            "config key 'health.unhealthy_after_ms': expected more than "
            "health.suspect_after_ms (1000), got '1000'");
  EXPECT_TRUE(Load({"--suspect-after-ms", "1000", "--unhealthy-after-ms", "1001"}).ok());
  // The check sees the final values, whichever source they came from.
  EXPECT_THAT(Error({"--config", File("health: {suspect_after_ms: 5000}")}),
              HasSubstr("more than health.suspect_after_ms (5000), got '3000'"));

  EXPECT_EQ(Error({"--set", "replication.backoff_max_ms=10"}),
            "config key 'replication.backoff_max_ms': expected at least "
            "replication.backoff_initial_ms (50), got '10'");
  EXPECT_TRUE(Load({"--set", "replication.backoff_max_ms=50"}).ok());

  EXPECT_THAT(Error({"--default-timeout-ms", "3600001"}),
              StartsWith("config key 'insert.max_timeout_ms': expected at least "
                         "insert.default_timeout_ms (3600001)"));
  EXPECT_TRUE(Load({"--default-timeout-ms", "3600000"}).ok());

  EXPECT_EQ(Error({"--role", "sentinel", "--port", "9000", "--grpc-port", "9000"}),
            "config key 'grpc.port': is http.port (9000) too; a sentinel serves each on its own "
            "port");
  EXPECT_TRUE(Load({"--port", "9091", "--grpc-port", "9091"}).ok()) << "a master serves no gRPC";
  EXPECT_TRUE(Load({"--role", "sentinel", "--port", "0", "--grpc-port", "0"}).ok());

  EXPECT_THAT(Error({"--wal-on-corruption", "refetch"}),
              StartsWith("config key 'wal.on_corruption': 'refetch' is for sentinels only"));
  Result<Config> sentinel = Load({"--role", "sentinel", "--wal-on-corruption", "refetch"});
  ASSERT_TRUE(sentinel.ok()) << sentinel.status().message();
  EXPECT_EQ(sentinel->wal_on_corruption, OnCorruption::kRefetch);
}

TEST_F(ConfigTest, TlsFilesComeAllThreeOrNone) {
  EXPECT_FALSE(MustLoad({}).tls_enabled());
  Config c = MustLoad({"--tls-ca-file", "ca.pem", "--tls-cert-file", "node.pem"},
                      {{"TLS_KEY_FILE", "node.key"}});
  EXPECT_TRUE(c.tls_enabled());
  EXPECT_EQ(c.tls_ca_file, "ca.pem");
  EXPECT_EQ(c.tls_cert_file, "node.pem");
  EXPECT_EQ(c.tls_key_file, "node.key");
  Config f = MustLoad({"--config", File("tls:\n  ca_file: a\n  cert_file: b\n  key_file: c\n"
                                        "  server_name: rlog-sentinel\n")});
  EXPECT_EQ(f.tls_server_name, "rlog-sentinel");
  EXPECT_THAT(Error({"--tls-cert-file", "node.pem", "--tls-key-file", "node.key"}),
              StartsWith("config key 'tls.ca_file': must be set too, since tls.key_file is"));
  EXPECT_THAT(Error({"--tls-ca-file", "ca.pem", "--tls-key-file", "node.key"}),
              StartsWith("config key 'tls.cert_file': must be set too"));
  EXPECT_THAT(Error({"--tls-ca-file", "ca.pem"}),
              StartsWith("config key 'tls.cert_file': must be set too, since tls.ca_file is"));
  EXPECT_THAT(Error({"--tls-server-name", "rlog-sentinel"}),
              StartsWith("config key 'tls.server_name': only means something with"));
  EXPECT_THAT(FileError("tls:\n  cafile: x\n"), HasSubstr("tls.cafile"));
  const std::vector<std::string> files = {"--tls-ca-file",  "a", "--tls-cert-file", "b",
                                          "--tls-key-file", "c"};
  std::vector<std::string> sentinel = files;
  sentinel.insert(sentinel.end(), {"--role", "sentinel", "--tls-master-name", "rlog-master"});
  EXPECT_EQ(MustLoad(sentinel).tls_master_name, "rlog-master");
  std::vector<std::string> master = files;
  master.insert(master.end(), {"--tls-master-name", "rlog-master"});
  EXPECT_THAT(Error(master), StartsWith("config key 'tls.master_name': is for sentinels"));
  EXPECT_THAT(Error({"--role", "sentinel"}, {{"TLS_MASTER_NAME", "m"}}),
              StartsWith("config key 'tls.master_name': only means something with"));
  EXPECT_EQ(MustLoad({}).tls_reload_interval_s, 60u);
  EXPECT_EQ(MustLoad({"--set", "tls.reload_interval_s=1"}).tls_reload_interval_s, 1u);
  EXPECT_THAT(Error({"--set", "tls.reload_interval_s=0"}), HasSubstr("tls.reload_interval_s"));
}

TEST_F(ConfigTest, ExplicitNodeIdAndAdvertiseAreKept) {
  Config c = MustLoad({"--node-id", "m1"}, {{"ADVERTISE_HTTP", "master.rlog:8080"}});
  EXPECT_EQ(c.node_id, "m1");
  EXPECT_EQ(c.advertise_http, "master.rlog:8080");
}

// ---- command line ----------------------------------------------------------------------------

TEST_F(ConfigTest, FlagOnlySettings) {
  Config c = MustLoad({"--ports-file", "/tmp/ports.json", "--test-faults", "drop_stream=0.1",
                       "--enable-test-faults"});
  EXPECT_EQ(c.ports_file, "/tmp/ports.json");
  EXPECT_EQ(c.test_faults, "drop_stream=0.1");
  EXPECT_TRUE(c.enable_test_faults);
  EXPECT_FALSE(MustLoad({}).enable_test_faults);
}

TEST_F(ConfigTest, TestOnlyDurabilityFlagsNeedTestFaultsAndADataDirectory) {
  Config c = MustLoad({"--test-sync-journal", "/tmp/j", "--test-ack-before-fsync",
                       "--enable-test-faults", "--data-dir", "/tmp/d"});
  EXPECT_EQ(c.test_sync_journal, "/tmp/j");
  EXPECT_TRUE(c.test_ack_before_fsync);
  EXPECT_FALSE(MustLoad({}).test_ack_before_fsync);
  for (const char* flag : {"--test-sync-journal", "--test-ack-before-fsync"}) {
    std::vector<std::string> args = {flag};
    if (std::string_view(flag) == "--test-sync-journal") args.push_back("/tmp/j");
    std::vector<std::string> without_faults = args;
    without_faults.insert(without_faults.end(), {"--data-dir", "/tmp/d"});
    EXPECT_EQ(Error(without_faults), std::string("flag ") + flag + ": needs --enable-test-faults");
    std::vector<std::string> in_memory = args;
    in_memory.push_back("--enable-test-faults");
    EXPECT_EQ(Error(in_memory),
              std::string("flag ") + flag + ": only means something with data_dir set");
  }
}

TEST_F(ConfigTest, UnknownFlagOrStrayArgumentIsError) {
  EXPECT_THAT(Error({"--prot", "1"}), HasSubstr("--prot"));
  EXPECT_THAT(Error({"extra"}), HasSubstr("extra"));
  EXPECT_THAT(Error({"--port"}), StartsWith("command line:"));
}

TEST_F(ConfigTest, HelpReturnsNotFoundWithText) {
  Result<Config> r = Load({"--help"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kNotFound);
  const std::string& help = r.status().message();
  for (const auto& spec : config_internal::Options()) {
    EXPECT_THAT(help, HasSubstr(spec.flag.empty() ? spec.key : spec.flag));
    if (!spec.env.empty()) {
      EXPECT_THAT(help, HasSubstr(spec.env));
    }
  }
  EXPECT_THAT(help, HasSubstr("--set"));
  EXPECT_THAT(help, HasSubstr("--config"));
  EXPECT_THAT(help, HasSubstr("Precedence"));
}

TEST_F(ConfigTest, VersionReturnsNotFoundWithVersion) {
  Result<Config> r = Load({"--version"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kNotFound);
  EXPECT_THAT(r.status().message(), StartsWith("rlog "));
}

TEST_F(ConfigTest, NoArgvAtAllIsFine) {
  Result<Config> r = LoadConfig(0, nullptr, {});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->http_port, 8080);
}

TEST_F(ConfigTest, ProcessEnvironmentSeesTheRealEnvironment) {
  ASSERT_EQ(setenv("RLOG_CONFIG_TEST_VAR", "a=b", 1), 0);
  Env env = ProcessEnvironment();
  unsetenv("RLOG_CONFIG_TEST_VAR");
  EXPECT_EQ(env["RLOG_CONFIG_TEST_VAR"], "a=b");
}

// ---- the table and the docs ------------------------------------------------------------------

TEST_F(ConfigTest, EveryOptionHasAWayInAndNoNameIsUsedTwice) {
  std::set<std::string> seen;
  for (const auto& spec : config_internal::Options()) {
    EXPECT_FALSE(spec.key.empty() && spec.flag.empty()) << spec.env;
    for (const std::string& name : {spec.key, spec.env, spec.flag}) {
      if (!name.empty()) {
        EXPECT_TRUE(seen.insert(name).second) << name;
      }
    }
    EXPECT_NE(spec.key, "CONFIG");
  }
}

TEST_F(ConfigTest, DocsNameEveryKeyVariableAndFlag) {
  std::ifstream in(std::string(RLOG_SOURCE_DIR) + "/docs/CONFIGURATION.md");
  ASSERT_TRUE(in) << "docs/CONFIGURATION.md is missing";
  std::stringstream docs;
  docs << in.rdbuf();
  for (const auto& spec : config_internal::Options()) {
    for (const std::string& name : {spec.key, spec.env, spec.flag}) {
      if (!name.empty()) {
        EXPECT_THAT(docs.str(), HasSubstr("`" + name + "`"));
      }
    }
  }
}

}  // namespace
}  // namespace rlog
