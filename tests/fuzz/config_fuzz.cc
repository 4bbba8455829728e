// Fuzz target: the configuration (config/config.h). The input picks settings from the table of
// config/options.h and a value for each, either one shaped like the values settings take or
// printable bytes. The same settings are then given four ways: as a YAML file, as environment
// variables, as --set key=value and as each setting's own flag. The oracle: all four loads agree
// (accepted by all or refused by all; when accepted, every setting reads back the same), a
// refusal is a message that names the setting, the variable or the flag it came from (or the
// setting a value conflicts with), and nothing crashes or throws.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "config/config.h"
#include "config/options.h"
#include "fuzz_support.h"

namespace {

using rlog::Config;
using rlog::config_internal::Options;
using rlog::config_internal::OptionSpec;

// Values of the shapes settings take, and of shapes they refuse.
const char* const kValues[] = {
    "0",
    "1",
    "2",
    "7",
    "100",
    "65535",
    "65536",
    "-1",
    "1.5",
    "1e3",
    "true",
    "false",
    "yes",
    "off",
    "master",
    "sentinel",
    "always",
    "interval",
    "never",
    "refetch",
    "refuse",
    "json",
    "text",
    "info",
    "debug",
    "majority",
    "127.0.0.1:7001",
    "a:1,b:2",
    "dns:///x:1",
    "srv:///_grpc._tcp.x",
    "/tmp/x",
    "",
    " ",
    "18446744073709551616",
    "0x10",
    "1k",
    "10ms",
};

// A YAML double-quoted scalar holding exactly `text` (printable ASCII only).
std::string Quote(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// The YAML file for dotted keys: one nested mapping per section.
std::string Yaml(const std::vector<std::pair<const OptionSpec*, std::string>>& settings) {
  struct Node {
    std::map<std::string, Node> children;
    std::string value;
    bool leaf = false;
  };
  Node root;
  for (const auto& [spec, value] : settings) {
    Node* node = &root;
    std::string key = spec->key;
    for (size_t dot; (dot = key.find('.')) != std::string::npos; key = key.substr(dot + 1)) {
      node = &node->children[key.substr(0, dot)];
    }
    Node& leaf = node->children[key];
    leaf.leaf = true;
    leaf.value = value;
  }
  std::string out;
  auto emit = [&](auto&& self, const Node& node, int depth) -> void {
    for (const auto& [name, child] : node.children) {
      out += std::string(2 * depth, ' ') + name + ":";
      if (child.leaf) {
        out += " " + Quote(child.value) + "\n";
      } else {
        out += "\n";
        self(self, child, depth + 1);
      }
    }
  };
  emit(emit, root, 0);
  return out;
}

struct Loaded {
  rlog::Status status;
  std::map<std::string, std::string> shown;  // Every setting as `show` prints it.
};

Loaded Load(std::vector<std::string> args, const std::map<std::string, std::string>& env) {
  args.insert(args.begin(), "rlog");
  std::vector<const char*> argv;
  for (const std::string& a : args) argv.push_back(a.c_str());
  Loaded out;
  auto config = rlog::LoadConfig(static_cast<int>(argv.size()), argv.data(), env);
  if (!config.ok()) {
    out.status = config.status();
    return out;
  }
  for (const OptionSpec& spec : Options()) {
    if (spec.show) out.shown[spec.key + spec.flag] = spec.show(config.value());
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  rlog::fuzz::Input in(data, size);
  // Settings every channel can give: a YAML key, an environment variable and a flag that takes
  // a value.
  std::vector<const OptionSpec*> usable;
  for (const OptionSpec& spec : Options()) {
    if (!spec.key.empty() && !spec.env.empty() && !spec.flag.empty() && !spec.is_switch) {
      usable.push_back(&spec);
    }
  }
  FUZZ_CHECK(!usable.empty(), "no setting has a key, a variable and a flag");
  std::vector<std::pair<const OptionSpec*, std::string>> settings;
  std::set<const OptionSpec*> taken;
  const uint64_t n = in.Int(5);
  for (uint64_t i = 0; i < n; ++i) {
    const OptionSpec* spec = usable[in.Int(usable.size() - 1)];
    if (!taken.insert(spec).second) continue;  // Each setting once: a file has no duplicates.
    std::string value;
    if (in.Int(3) != 0) {
      value = kValues[in.Int(std::size(kValues) - 1)];
    } else {
      for (char c : in.Bytes(in.Int(24))) value += static_cast<char>(0x20 + (c & 0x7f) % 95);
    }
    settings.emplace_back(spec, value);
  }

  // The file: written once per input, under a name of this process, removed at exit.
  struct TempFile {
    std::string path =
        "/tmp/rlog-config-fuzz-" + std::to_string(static_cast<long>(getpid())) + ".yaml";
    ~TempFile() { std::remove(path.c_str()); }
  };
  static const TempFile temp;
  const std::string& path = temp.path;
  {
    std::ofstream file(path, std::ios::trunc);
    file << Yaml(settings);
  }
  std::map<std::string, std::string> env, none;
  std::vector<std::string> sets, flags;
  for (const auto& [spec, value] : settings) {
    env[spec->env] = value;
    sets.push_back("--set");
    sets.push_back(spec->key + "=" + value);
    flags.push_back(spec->flag + "=" + value);  // "--port=-1": a value, not another option.
  }

  const Loaded from_file = Load({"--config", path}, none);
  const Loaded from_env = Load({}, env);
  const Loaded from_set = Load(sets, none);
  const Loaded from_flags = Load(flags, none);
  std::string what = Yaml(settings);
  for (const Loaded* l : {&from_file, &from_env, &from_set, &from_flags}) {
    what += "\n-> " + (l->status.ok() ? std::string("ok") : l->status.message());
  }
  for (const Loaded* l : {&from_env, &from_set, &from_flags}) {
    FUZZ_CHECK(l->status.ok() == from_file.status.ok(), what);
    FUZZ_CHECK(l->shown == from_file.shown, what);
  }
  if (from_file.status.ok()) return 0;
  // Each refusal names where the bad value came from, or a setting it conflicts with.
  for (const Loaded* l : {&from_file, &from_env, &from_set, &from_flags}) {
    const std::string& m = l->status.message();
    bool named = false;
    for (const OptionSpec& spec : Options()) {
      for (const std::string& name : {spec.key, spec.env, spec.flag}) {
        if (!name.empty() && m.find(name) != std::string::npos) named = true;
      }
    }
    FUZZ_CHECK(named, what);
  }
  return 0;
}
