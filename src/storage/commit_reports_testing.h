// Test support: records what a GroupCommitter or NodeLog reported through on_durable and
// on_error (on the committer thread), and lets a test wait for it without sleeping.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include "common/status.h"
#include "storage/entry.h"

namespace rlog::storage {

class CommitReports {
 public:
  // How long a wait may take: only reached when something is broken.
  static constexpr std::chrono::seconds kWait{10};

  void Durable(LogId n) {
    std::lock_guard<std::mutex> lock(mu_);
    seen_.push_back(n);
    cv_.notify_all();
  }
  void Error(const Status& s) {
    std::lock_guard<std::mutex> lock(mu_);
    errors_.push_back(s.message());
    cv_.notify_all();
  }
  bool WaitDurable(LogId n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, kWait, [&] { return !seen_.empty() && seen_.back() >= n; });
  }
  bool WaitError() {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, kWait, [&] { return !errors_.empty(); });
  }
  // Every on_durable value, in the order reported.
  std::vector<LogId> seen() {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_;
  }
  std::vector<std::string> errors() {
    std::lock_guard<std::mutex> lock(mu_);
    return errors_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<LogId> seen_;
  std::vector<std::string> errors_;
};

}  // namespace rlog::storage
