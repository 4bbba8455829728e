#include "storage/durability_checker.h"

#include <algorithm>

namespace rlog::storage {

void DurabilityChecker::Written(std::span<const Entry> entries) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const Entry& e : entries) content_[e.id] = e;
}

void DurabilityChecker::Appended(LogId last) {
  std::lock_guard<std::mutex> lock(mu_);
  appended_ = std::max(appended_, last);
}

void DurabilityChecker::TruncateStarted(LogId keep) {
  std::lock_guard<std::mutex> lock(mu_);
  appended_ = std::min(appended_, keep);
  acknowledged_ = std::min(acknowledged_, keep);
}

void DurabilityChecker::TruncateDone(LogId keep) {
  std::lock_guard<std::mutex> lock(mu_);
  content_.erase(content_.upper_bound(keep), content_.end());
  appended_ = std::min(appended_, keep);
  acknowledged_ = std::min(acknowledged_, keep);
}

void DurabilityChecker::Acknowledged(LogId n) {
  std::lock_guard<std::mutex> lock(mu_);
  acknowledged_ = std::max(acknowledged_, n);
  cv_.notify_all();
}

bool DurabilityChecker::WaitAcknowledged(LogId n, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return acknowledged_ >= n; });
}

LogId DurabilityChecker::acknowledged() const {
  std::lock_guard<std::mutex> lock(mu_);
  return acknowledged_;
}

std::vector<std::string> DurabilityChecker::Check(const std::vector<Entry>& recovered,
                                                  Crash crash) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> problems;
  for (size_t i = 0; i < recovered.size(); ++i) {
    const Entry& got = recovered[i];
    if (got.id != i + 1) {
      problems.push_back("gap: position " + std::to_string(i + 1) + " holds id " +
                         std::to_string(got.id));
      break;
    }
    auto it = content_.find(got.id);
    if (it == content_.end() || it->second.message != got.message ||
        it->second.timestamp_ms != got.timestamp_ms || it->second.epoch != got.epoch) {
      problems.push_back("id " + std::to_string(got.id) + " recovered with content never written");
    }
  }
  const LogId last = recovered.empty() ? 0 : recovered.back().id;
  const LogId required =
      crash == Crash::kPowerLoss ? acknowledged_ : std::max(acknowledged_, appended_);
  if (last < required) {
    problems.push_back("lost acknowledged write: recovered up to id " + std::to_string(last) +
                       " but ids up to " + std::to_string(required) + " must survive");
  }
  return problems;
}

void DurabilityChecker::Recovered(const std::vector<Entry>& recovered) {
  std::lock_guard<std::mutex> lock(mu_);
  content_.clear();
  for (const Entry& e : recovered) content_[e.id] = e;
  appended_ = acknowledged_ = recovered.empty() ? 0 : recovered.back().id;
}

}  // namespace rlog::storage
