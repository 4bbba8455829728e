// The spelling of every enumerated setting, shared by the parser (options.cc) and the *Name()
// functions of config.h so that what is accepted and what is printed cannot drift apart.
#pragma once

#include "config/config.h"

namespace rlog::config_internal {

template <typename V>
struct NamedValue {
  const char* name;
  V value;
};

inline constexpr NamedValue<Role> kRoleNames[] = {
    {"master", Role::kMaster},
    {"sentinel", Role::kSentinel},
};

inline constexpr NamedValue<FsyncPolicy> kFsyncNames[] = {
    {"always", FsyncPolicy::kAlways},
    {"interval", FsyncPolicy::kInterval},
    {"never", FsyncPolicy::kNever},
};

inline constexpr NamedValue<LogFormat> kLogFormatNames[] = {
    {"text", LogFormat::kText},
    {"json", LogFormat::kJson},
};

inline constexpr NamedValue<OnCorruption> kOnCorruptionNames[] = {
    {"fail", OnCorruption::kFail},
    {"refetch", OnCorruption::kRefetch},
};

// log_level is kept as text in Config; the name is the value.
inline constexpr NamedValue<const char*> kLogLevelNames[] = {
    {"trace", "trace"}, {"debug", "debug"}, {"info", "info"},
    {"warn", "warn"},   {"error", "error"}, {"off", "off"},
};

template <typename V, size_t N>
const char* NameOf(const NamedValue<V> (&names)[N], V value) {
  for (const auto& entry : names) {
    if (entry.value == value) return entry.name;
  }
  return "unknown";
}

}  // namespace rlog::config_internal
