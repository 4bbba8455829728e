// Scenario transcripts for the replication core, in the style of etcd raft's testdata: each file
// under tests/testdata/core/ is a list of commands ("> append 3", "> ack s1 1 3", "> ready") and,
// after them, the actions the core must produce. Set RLOG_REWRITE=1 to rewrite the expectations
// from the current behaviour (then review the diff: the files are the specification).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "core/replicator.h"

namespace rlog::core {
namespace {

class SizedLog : public LogView {
 public:
  std::vector<uint64_t> sizes;
  LogId BatchEnd(LogId first, LogId last, uint64_t max_bytes) const override {
    uint64_t total = sizes[first - 1];
    LogId end = first;
    while (end < last && total + sizes[end] <= max_bytes) total += sizes[end++];
    return end;
  }
};

std::map<std::string, uint64_t> Options(std::istringstream& in) {
  std::map<std::string, uint64_t> kv;
  std::string word;
  while (in >> word) {
    auto eq = word.find('=');
    if (eq == std::string::npos) throw std::runtime_error("expected key=value, got " + word);
    kv[word.substr(0, eq)] = std::stoull(word.substr(eq + 1));
  }
  return kv;
}

class Transcript {
 public:
  Transcript() : r_(std::make_unique<Replicator>(ReplicatorOptions{}, &log_)) {}

  // Runs one command; appends what it prints to `out`.
  void Run(const std::string& line, std::vector<std::string>& out) {
    std::istringstream in(line);
    std::string cmd;
    in >> cmd;
    if (cmd == "options") {
      auto kv = Options(in);
      ReplicatorOptions o;
      if (kv.count("batch")) o.batch_max_entries = static_cast<uint32_t>(kv["batch"]);
      if (kv.count("bytes")) o.batch_max_bytes = kv["bytes"];
      if (kv.count("window")) o.window_batches = static_cast<uint32_t>(kv["window"]);
      if (kv.count("pipelined")) o.min_pipelined_batch = static_cast<uint32_t>(kv["pipelined"]);
      if (kv.count("linger")) o.linger = kv["linger"];
      if (kv.count("heartbeat")) o.heartbeat_every = kv["heartbeat"];
      if (kv.count("suspect")) o.health.suspect_after = kv["suspect"];
      if (kv.count("unhealthy")) o.health.unhealthy_after = kv["unhealthy"];
      if (kv.count("backoff")) o.backoff_initial = o.backoff_max = kv["backoff"];
      r_ = std::make_unique<Replicator>(o, &log_);
    } else if (cmd == "sentinels") {
      std::string name;
      while (in >> name) ids_[name] = r_->AddSentinel(name), names_.push_back(name);
    } else if (cmd == "append") {
      uint64_t n = 0;
      in >> n;
      auto kv = Options(in);
      for (uint64_t i = 0; i < n; ++i) log_.sizes.push_back(kv.count("bytes") ? kv["bytes"] : 10);
      r_->Appended(log_.sizes.size());
      if (!kv.count("nodurable")) r_->LocalDurable(log_.sizes.size());
    } else if (cmd == "durable") {
      LogId id = 0;
      in >> id;
      r_->LocalDurable(id);
    } else if (cmd == "park") {
      LogId id = 0;
      in >> id;
      auto kv = Options(in);
      WriteHandle h = r_->ParkWrite(id, static_cast<uint32_t>(kv.at("w")),
                                    kv.count("timeout") ? kv["timeout"] : 1000000);
      out.push_back("parked h" + std::to_string(h));
    } else if (cmd == "welcome") {
      std::string name;
      LogId hwm = 0;
      in >> name >> hwm;
      r_->Connected(ids_.at(name), gens_[name], hwm);
    } else if (cmd == "drop") {
      std::string name;
      in >> name;
      r_->Disconnected(ids_.at(name), gens_[name]);
    } else if (cmd == "ack") {
      std::string name;
      uint64_t seq = 0;
      LogId hwm = 0;
      in >> name >> seq >> hwm;
      r_->Acked(ids_.at(name), gens_[name], seq, hwm);
    } else if (cmd == "written") {
      std::string name;
      while (in >> name) r_->WriteDone(ids_.at(name), gens_[name]);
    } else if (cmd == "remove") {
      std::string name;
      in >> name;
      r_->RemoveSentinel(ids_.at(name));
    } else if (cmd == "tick") {
      int n = 1;
      in >> n;
      for (int i = 0; i < n; ++i) r_->OnTick();
    } else if (cmd == "ready") {
      Print(r_->TakeReady(), out);
    } else if (cmd == "status") {
      out.push_back("cluster=" + std::to_string(r_->cluster_size()) +
                    " reachable=" + std::to_string(r_->reachable()) +
                    " read-only=" + (r_->read_only() ? "yes" : "no") +
                    " last=" + std::to_string(r_->last_id()));
      for (const SentinelStatus& s : r_->Sentinels()) {
        out.push_back("  " + s.name + " " + HealthName(s.health) +
                      (s.connected ? " connected" : " disconnected") +
                      " acked=" + std::to_string(s.acked) + " lag=" + std::to_string(s.lag));
      }
    } else {
      throw std::runtime_error("unknown command: " + cmd);
    }
    Status st = r_->CheckInvariants();
    if (!st.ok()) out.push_back("INVARIANT VIOLATED: " + st.message());
  }

 private:
  void Print(const Ready& ready, std::vector<std::string>& out) {
    for (const auto& c : ready.connects) {
      gens_[names_[c.sentinel]] = c.generation;
      out.push_back("connect " + names_[c.sentinel] + " gen=" + std::to_string(c.generation));
    }
    for (const auto& c : ready.cancels) out.push_back("cancel " + names_[c.sentinel]);
    for (const auto& s : ready.sends) {
      std::string what = s.heartbeat() ? "heartbeat"
                                       : "ids=" + std::to_string(s.first) + ".." +
                                             std::to_string(s.last);
      out.push_back("send " + names_[s.sentinel] + " seq=" + std::to_string(s.seq) + " " + what +
                    " commit=" + std::to_string(s.commit));
    }
    for (const auto& c : ready.completions) {
      out.push_back("complete h" + std::to_string(c.handle) + " id=" + std::to_string(c.id) +
                    (c.outcome == WriteOutcome::kCommitted ? " committed" : " timed-out"));
    }
    for (const auto& c : ready.status_changes) {
      out.push_back("status " + names_[c.sentinel] + " " + HealthName(c.from) + "->" +
                    HealthName(c.to));
    }
    for (const auto& a : ready.acks) {
      out.push_back("acked " + names_[a.sentinel] + " " + std::to_string(a.from) + "->" +
                    std::to_string(a.to));
    }
    if (ready.read_only) out.push_back(*ready.read_only ? "read-only on" : "read-only off");
  }

  SizedLog log_;
  std::unique_ptr<Replicator> r_;
  std::map<std::string, SentinelId> ids_;
  std::map<std::string, uint64_t> gens_;
  std::vector<std::string> names_;
};

std::filesystem::path TestdataDir() {
  const char* dir = std::getenv("RLOG_TESTDATA");
  return std::filesystem::path(dir ? dir : "tests/testdata") / "core";
}

// Runs a transcript; returns the file as it should read (commands with their actual output).
std::string Replay(const std::filesystem::path& file) {
  std::ifstream in(file);
  std::string line, rewritten;
  Transcript t;
  std::vector<std::string> out;
  auto flush = [&] {
    for (const std::string& o : out) rewritten += o + "\n";
    out.clear();
  };
  while (std::getline(in, line)) {
    if (line.rfind("> ", 0) == 0) {
      t.Run(line.substr(2), out);
      rewritten += line + "\n";
      flush();
    } else if (line.empty() || line[0] == '#') {
      rewritten += line + "\n";
    }
    // Other lines are the expected output: dropped here, regenerated above.
  }
  return rewritten;
}

TEST(CoreTranscripts, EveryTranscriptReplaysExactly) {
  std::filesystem::path dir = TestdataDir();
  ASSERT_TRUE(std::filesystem::is_directory(dir)) << dir;
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".txt") continue;
    ++files;
    std::ifstream in(entry.path());
    std::string expected((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::string actual = Replay(entry.path());
    if (std::getenv("RLOG_REWRITE") != nullptr) {
      std::ofstream(entry.path()) << actual;
      continue;
    }
    EXPECT_EQ(actual, expected) << "transcript " << entry.path().filename();
  }
  EXPECT_GE(files, 3);
}

}  // namespace
}  // namespace rlog::core
