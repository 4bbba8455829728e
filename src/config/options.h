// The table of configurable settings: the one place that says, for every setting, its YAML key,
// environment variable, flag, accepted values and where it lands in Config.
//
// LoadConfig (config.cc) drives the file walk, the environment, the flags, --set, the unknown-key
// check and the help text from this table; nothing else parses a setting. Internal to
// src/config (the test includes it to check that the docs cover every key).
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace rlog::config_internal {

// Stores one setting into a Config. Returns "" on success, otherwise what is wrong with the value
// in the form "expected <what>, got '<value>'"; the caller prefixes where the value came from.
using Setter = std::function<std::string(std::string_view text, Config& config)>;
using ListSetter =
    std::function<std::string(const std::vector<std::string>& items, Config& config)>;

struct OptionSpec {
  std::string key;         // dotted YAML path ("http.port"); empty for flag-only settings
  std::string env;         // environment variable ("PORT"); empty if none
  std::string flag;        // long flag ("--port"); empty if none
  std::string help;        // one line for --help and the docs
  std::string metavar;     // what --help shows after the flag ("N", "TEXT", "master|sentinel")
  std::string expect;      // what a valid value looks like ("an integer in 0..65535")
  bool is_switch = false;  // a flag that takes no value and sets true
  Setter set;              // from text (file scalar, env, flag, --set)
  ListSetter set_list;     // from a YAML sequence; empty for settings that are not lists
  std::function<std::string(const Config&)> show;  // the current value as text (for defaults)
};

// Every setting, in the order --help and the docs list them.
const std::vector<OptionSpec>& Options();

// The setting whose YAML key is `key`, or nullptr.
const OptionSpec* FindByKey(std::string_view key);

// True if `path` names a YAML section (a prefix of some key, like "http" or "replication").
bool IsSection(std::string_view path);

// The known key closest to an unknown one (for "did you mean"), or "" if none is close.
std::string ClosestKey(std::string_view unknown);

}  // namespace rlog::config_internal
