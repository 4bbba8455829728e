// LoadConfig: defaults, then the YAML file, then the environment, then flags, then --set, then
// derived defaults and checks across settings. Every setting is parsed by its row in the options
// table (options.h); this file only decides where text comes from and how errors are worded.
// yaml-cpp and CLI11 throw; every exception is caught here and turned into a Status.
#include "config/config.h"

#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <map>
#include <optional>
#include <utility>

#include "config/names.h"
#include "config/options.h"

extern char** environ;  // NOLINT(readability-redundant-declaration): POSIX, not in every header

#ifndef RLOG_VERSION
#define RLOG_VERSION "unknown"
#endif

namespace rlog {
namespace {

using config_internal::FindByKey;
using config_internal::Options;
using config_internal::OptionSpec;

constexpr const char* kSetFlag = "--set";

std::string KeyOrigin(std::string_view key) { return "config key '" + std::string(key) + "'"; }

// Stores `text` through the row's parser; on error names `origin` (key, variable or flag).
Status Apply(const OptionSpec& spec, std::string_view text, const std::string& origin, Config& c,
             const std::string& location = "") {
  std::string problem = spec.set(text, c);
  if (problem.empty()) return Status::Ok();
  return Status::InvalidArgument(origin + ": " + problem + location);
}

Status UnknownKey(std::string_view key, const std::string& location) {
  std::string message = "unknown config key '" + std::string(key) + "'" + location;
  std::string guess = config_internal::ClosestKey(key);
  if (!guess.empty()) message += "; did you mean '" + guess + "'?";
  return Status::InvalidArgument(message);
}

// ---- YAML file ---------------------------------------------------------------------------------

Status ReadWholeFile(const std::string& path, std::string* out) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    return Status::InvalidArgument("config file '" + path +
                                   "': cannot open: " + std::strerror(errno));
  }
  char buffer[8192];
  size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, f)) > 0) out->append(buffer, n);
  int error = std::ferror(f) ? errno : 0;
  std::fclose(f);
  if (error != 0) {
    return Status::InvalidArgument("config file '" + path +
                                   "': cannot read: " + std::strerror(error));
  }
  return Status::Ok();
}

std::string Describe(const YAML::Node& node) {
  if (node.IsSequence()) return "a list";
  if (node.IsMap()) return "a mapping";
  if (node.IsNull()) return "nothing";
  return "'" + node.Scalar() + "'";
}

Status ApplyYamlValue(const OptionSpec& spec, const YAML::Node& value, const std::string& location,
                      Config& c) {
  const std::string origin = KeyOrigin(spec.key);
  auto wrong_shape = [&](const YAML::Node& got) {
    return Status::InvalidArgument(origin + ": expected " + spec.expect + ", got " + Describe(got) +
                                   location);
  };
  if (value.IsMap()) return wrong_shape(value);
  if (!value.IsSequence())
    return Apply(spec, value.IsNull() ? "" : value.Scalar(), origin, c, location);
  if (!spec.set_list) return wrong_shape(value);
  std::vector<std::string> items;
  for (const YAML::Node& item : value) {
    if (!item.IsScalar()) return wrong_shape(item);
    items.push_back(item.Scalar());
  }
  std::string problem = spec.set_list(items, c);
  if (problem.empty()) return Status::Ok();
  return Status::InvalidArgument(origin + ": " + problem + location);
}

// Walks one mapping; `prefix` is the dotted path of the mapping itself ("" at the top). `seen`:
// the line of every key set so far in the file, so that one set twice (yaml-cpp keeps both, and
// the last would win silently), also once flat ("http.port") and once nested, is refused.
Status ApplyYamlMap(const YAML::Node& map, const std::string& prefix, const std::string& path,
                    std::map<std::string, int>& seen, Config& c) {
  for (const auto& entry : map) {
    const YAML::Node& key = entry.first;
    const int line = key.Mark().line + 1;
    const std::string location = " (in " + path + ":" + std::to_string(line) + ")";
    if (!key.IsScalar()) {
      return Status::InvalidArgument("config file '" + path + "': keys must be plain names, got " +
                                     Describe(key) + location);
    }
    const std::string dotted = prefix.empty() ? key.Scalar() : prefix + "." + key.Scalar();
    if (const auto [it, fresh] = seen.emplace(dotted, line); !fresh) {
      return Status::InvalidArgument("config file '" + path + "': " + dotted +
                                     " is set twice (lines " + std::to_string(it->second) +
                                     " and " + std::to_string(line) + ")");
    }
    if (const OptionSpec* spec = FindByKey(dotted)) {
      Status s = ApplyYamlValue(*spec, entry.second, location, c);
      if (!s.ok()) return s;
    } else if (config_internal::IsSection(dotted)) {
      if (entry.second.IsNull()) continue;  // "http:" with nothing under it
      if (!entry.second.IsMap()) {
        return Status::InvalidArgument(KeyOrigin(dotted) + ": expected a mapping of " + dotted +
                                       ".* keys, got " + Describe(entry.second) + location);
      }
      Status s = ApplyYamlMap(entry.second, dotted, path, seen, c);
      if (!s.ok()) return s;
    } else {
      return UnknownKey(dotted, location);
    }
  }
  return Status::Ok();
}

Status ApplyFile(const std::string& path, Config& c) {
  std::string text;
  Status read = ReadWholeFile(path, &text);
  if (!read.ok()) return read;
  try {
    YAML::Node root = YAML::Load(text);
    if (root.IsNull()) return Status::Ok();  // an empty file sets nothing
    if (!root.IsMap()) {
      return Status::InvalidArgument("config file '" + path +
                                     "': expected a mapping of keys at the top level, got " +
                                     Describe(root));
    }
    std::map<std::string, int> seen;
    return ApplyYamlMap(root, "", path, seen, c);
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument("config file '" + path + "': malformed YAML: " + e.what());
  }
}

// ---- environment -------------------------------------------------------------------------------

Status ApplyEnvironment(const std::map<std::string, std::string>& env, Config& c) {
  for (const OptionSpec& spec : Options()) {
    if (spec.env.empty()) continue;
    auto it = env.find(spec.env);
    if (it == env.end()) continue;
    Status s = Apply(spec, it->second, "environment variable " + spec.env, c);
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

// ---- command line ------------------------------------------------------------------------------

struct CommandLine {
  std::optional<std::string> config_path;
  std::vector<std::pair<const OptionSpec*, std::string>> flags;  // the last value of each flag
  std::vector<std::string> sets;                                 // --set KEY=VALUE, in order
};

// "env PORT, key http.port, default 8080": where else a setting can come from, for --help.
std::string Sources(const OptionSpec& spec, bool with_key) {
  std::vector<std::string> parts;
  if (!spec.env.empty()) parts.push_back("env " + spec.env);
  if (with_key && !spec.key.empty()) parts.push_back("key " + spec.key);
  std::string default_value = spec.show(Config{});
  if (!spec.is_switch && !default_value.empty()) parts.push_back("default " + default_value);
  std::string joined;
  for (const std::string& part : parts) joined += (joined.empty() ? "" : ", ") + part;
  return joined.empty() ? "" : " [" + joined + "]";
}

std::string Footer() {
  std::string keys;
  for (const OptionSpec& spec : Options()) {
    if (spec.key.empty() || !spec.flag.empty()) continue;
    keys += "\n  " + spec.key + ": " + spec.help + Sources(spec, false);
  }
  return "Precedence: flags (--set last) > environment > config file > defaults.\n"
         "Settings without a flag of their own, reachable with --set KEY=VALUE:" +
         keys + "\nSee docs/CONFIGURATION.md.";
}

// Returns NotFound carrying the text for --help and --version.
Result<CommandLine> ParseCommandLine(int argc, const char* const* argv) {
  CLI::App app{"rlog: a replicated message log", argc > 0 ? argv[0] : "rlog"};
  app.set_version_flag("--version", std::string("rlog ") + RLOG_VERSION);
  app.footer(Footer());
  CLI::Option* config_flag = app.add_option("--config")
                                 ->description("YAML config file [env CONFIG]")
                                 ->type_name("PATH")
                                 ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  std::vector<std::pair<const OptionSpec*, CLI::Option*>> named;
  for (const OptionSpec& spec : Options()) {
    if (spec.flag.empty()) continue;
    CLI::Option* option = spec.is_switch ? app.add_flag(spec.flag)
                                         : app.add_option(spec.flag)->type_name(spec.metavar);
    option->description(spec.help + Sources(spec, true))
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    named.emplace_back(&spec, option);
  }
  CLI::Option* set_flag = app.add_option(kSetFlag)
                              ->description("set any config key by its dotted path (repeatable)")
                              ->type_name("KEY=VALUE")
                              ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);

  // CLI11 wants the arguments after the program name, last first. It reads "--name=" (an empty
  // value) as a bare "--name" and takes the NEXT argument as the value ("--tls-key-file=
  // --port=9000" set the key file to "--port=9000"; found by tests/fuzz/config_fuzz), so such an
  // empty value goes in as an argument of its own, which CLI11 takes as given: empty, as from an
  // empty variable or YAML value.
  std::vector<std::string> args;
  for (int i = argc - 1; i > 0; --i) {
    std::string_view arg = argv[i];
    if (arg.starts_with("--") && arg.size() > 3 && arg.ends_with('=') &&
        arg.find('=') == arg.size() - 1) {
      args.emplace_back("");
      args.emplace_back(arg.substr(0, arg.size() - 1));
    } else {
      args.emplace_back(arg);
    }
  }
  try {
    app.parse(args);
  } catch (const CLI::CallForHelp&) {
    return Status::NotFound(app.help());
  } catch (const CLI::CallForVersion& e) {
    return Status::NotFound(e.what());
  } catch (const CLI::Error& e) {
    return Status::InvalidArgument(std::string("command line: ") + e.what());
  }

  CommandLine line;
  if (config_flag->count() > 0) line.config_path = config_flag->results().back();
  for (const auto& [spec, option] : named) {
    if (option->count() == 0) continue;
    line.flags.emplace_back(spec, spec->is_switch ? "true" : option->results().back());
  }
  line.sets = set_flag->results();
  return line;
}

Status ApplySets(const std::vector<std::string>& sets, Config& c) {
  for (const std::string& assignment : sets) {
    size_t eq = assignment.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Status::InvalidArgument(std::string("flag ") + kSetFlag +
                                     ": expected KEY=VALUE, got '" + assignment + "'");
    }
    std::string key = assignment.substr(0, eq);
    const OptionSpec* spec = FindByKey(key);
    if (spec == nullptr) return UnknownKey(key, std::string(" (in ") + kSetFlag + ")");
    Status s = Apply(*spec, std::string_view(assignment).substr(eq + 1),
                     std::string("flag ") + kSetFlag + " " + key, c);
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

// ---- after all sources -------------------------------------------------------------------------

void FillDerivedDefaults(Config& c) {
  const std::string port = std::to_string(c.http_port);
  if (c.node_id.empty()) c.node_id = std::string(RoleName(c.role)) + "-" + port;
  if (c.advertise_http.empty()) c.advertise_http = "127.0.0.1:" + port;
}

// Settings that bound each other: `key` must be above (strict) or at least `floor_key`.
Status CheckOrderings(const Config& c) {
  struct Ordering {
    const char* key;
    uint64_t value;
    const char* floor_key;
    uint64_t floor;
    bool strict;
  };
  const Ordering orderings[] = {
      {"health.unhealthy_after_ms", c.unhealthy_after_ms, "health.suspect_after_ms",
       c.suspect_after_ms, true},
      {"replication.backoff_max_ms", c.backoff_max_ms, "replication.backoff_initial_ms",
       c.backoff_initial_ms, false},
      {"insert.max_timeout_ms", c.max_timeout_ms, "insert.default_timeout_ms", c.default_timeout_ms,
       false},
  };
  for (const Ordering& o : orderings) {
    if (o.strict ? o.value > o.floor : o.value >= o.floor) continue;
    return Status::InvalidArgument(
        KeyOrigin(o.key) + ": expected " + (o.strict ? "more than " : "at least ") + o.floor_key +
        " (" + std::to_string(o.floor) + "), got '" + std::to_string(o.value) + "'");
  }
  // A sentinel serves both; a master dials out over gRPC and serves only HTTP.
  if (c.role == Role::kSentinel && c.grpc_port != 0 && c.grpc_port == c.http_port) {
    return Status::InvalidArgument(KeyOrigin("grpc.port") + ": is http.port (" +
                                   std::to_string(c.http_port) +
                                   ") too; a sentinel serves each on its own port");
  }
  // TLS: all three files or none; the files themselves are read when the node starts.
  const std::pair<const char*, const std::string*> tls_files[] = {
      {"tls.ca_file", &c.tls_ca_file},
      {"tls.cert_file", &c.tls_cert_file},
      {"tls.key_file", &c.tls_key_file}};
  const char* tls_set = nullptr;
  for (const auto& [key, value] : tls_files) {
    if (!value->empty()) tls_set = key;
  }
  for (const auto& [key, value] : tls_files) {
    if (tls_set != nullptr && value->empty()) {
      return Status::InvalidArgument(KeyOrigin(key) + ": must be set too, since " + tls_set +
                                     " is (mutual TLS needs the CA, the certificate and its key)");
    }
  }
  const std::pair<const char*, const std::string*> tls_names[] = {
      {"tls.server_name", &c.tls_server_name}, {"tls.master_name", &c.tls_master_name}};
  for (const auto& [key, value] : tls_names) {
    if (tls_set == nullptr && !value->empty()) {
      return Status::InvalidArgument(KeyOrigin(key) +
                                     ": only means something with tls.ca_file, tls.cert_file and "
                                     "tls.key_file set");
    }
  }
  if (!c.tls_master_name.empty() && c.role == Role::kMaster) {
    return Status::InvalidArgument(KeyOrigin("tls.master_name") +
                                   ": is for sentinels (the name they require of the master's "
                                   "certificate); a master sets tls.server_name");
  }
  // The test-only flags of the data directory: never by accident, never without one.
  const std::pair<const char*, bool> test_flags[] = {
      {"--test-sync-journal", !c.test_sync_journal.empty()},
      {"--test-ack-before-fsync", c.test_ack_before_fsync}};
  for (const auto& [flag, set] : test_flags) {
    if (set && !c.enable_test_faults) {
      return Status::InvalidArgument(std::string("flag ") + flag + ": needs --enable-test-faults");
    }
    if (set && c.data_dir.empty()) {
      return Status::InvalidArgument(std::string("flag ") + flag +
                                     ": only means something with data_dir set");
    }
  }
  if (c.wal_on_corruption == OnCorruption::kRefetch && c.role == Role::kMaster) {
    return Status::InvalidArgument(
        KeyOrigin("wal.on_corruption") +
        ": 'refetch' is for sentinels only (a master has nobody to refetch its log from)");
  }
  return Status::Ok();
}

Result<Config> Load(int argc, const char* const* argv,
                    const std::map<std::string, std::string>& env) {
  Result<CommandLine> line = ParseCommandLine(argc, argv);
  if (!line.ok()) return line.status();

  Config c;
  std::string path = line->config_path.value_or("");
  if (!line->config_path) {
    auto it = env.find("CONFIG");
    if (it != env.end()) path = it->second;
  }
  if (!path.empty()) {
    Status s = ApplyFile(path, c);
    if (!s.ok()) return s;
  }
  if (Status s = ApplyEnvironment(env, c); !s.ok()) return s;
  for (const auto& [spec, text] : line->flags) {
    if (Status s = Apply(*spec, text, "flag " + spec->flag, c); !s.ok()) return s;
  }
  if (Status s = ApplySets(line->sets, c); !s.ok()) return s;

  FillDerivedDefaults(c);
  if (Status s = CheckOrderings(c); !s.ok()) return s;
  return c;
}

}  // namespace

Result<Config> LoadConfig(int argc, const char* const* argv,
                          const std::map<std::string, std::string>& env) {
  try {
    return Load(argc, argv, env);
  } catch (const std::exception& e) {  // a library threw where we did not expect it
    return Status::InvalidArgument(std::string("configuration: ") + e.what());
  } catch (...) {
    return Status::InvalidArgument("configuration: unexpected error");
  }
}

std::map<std::string, std::string> ProcessEnvironment() {
  std::map<std::string, std::string> env;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    std::string_view text(*entry);
    size_t eq = text.find('=');
    if (eq == std::string_view::npos) continue;
    env.emplace(text.substr(0, eq), text.substr(eq + 1));
  }
  return env;
}

const char* RoleName(Role role) {
  return config_internal::NameOf(config_internal::kRoleNames, role);
}

const char* FsyncPolicyName(FsyncPolicy policy) {
  return config_internal::NameOf(config_internal::kFsyncNames, policy);
}

const char* OnCorruptionName(OnCorruption action) {
  return config_internal::NameOf(config_internal::kOnCorruptionNames, action);
}

const char* LogFormatName(LogFormat format) {
  return config_internal::NameOf(config_internal::kLogFormatNames, format);
}

}  // namespace rlog
