#include "app/node_base.h"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace rlog::app {

namespace {

// Max payload bytes in one /messages page (at least one entry is always returned).
constexpr uint64_t kPageBytes = 4 << 20;

nlohmann::json EntriesJson(const std::vector<storage::Entry>& entries) {
  nlohmann::json arr = nlohmann::json::array();
  for (const storage::Entry& e : entries) {
    arr.push_back({{"id", e.id}, {"message", e.message}, {"timestamp", e.timestamp_ms}});
  }
  return arr;
}

std::string Dump(const nlohmann::json& j) {
  // Messages were validated as UTF-8 on insert; replace rather than throw if one is not.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

core::LogId NodeBase::VisibleId() const {
  return std::min(served_->durable_id(), served_->last_id());
}

http::HttpReply NodeBase::GetAll() {
  const core::LogId visible = VisibleId();
  auto entries = served_->memory().Read(1, visible, UINT64_MAX);
  return {200, Dump(EntriesJson(entries)), {}};
}

http::HttpReply NodeBase::Page(core::LogId from, size_t limit) const {
  const core::LogId visible = VisibleId();
  const size_t readable = visible >= from ? static_cast<size_t>(visible - from + 1) : 0;
  auto entries = served_->memory().Read(from, std::min(limit, readable), kPageBytes);
  core::LogId next = entries.empty() ? from : entries.back().id + 1;
  nlohmann::json j = {{"messages", EntriesJson(entries)}, {"next", next}, {"lastId", visible}};
  return {200, Dump(j), {}};
}

void NodeBase::Messages(core::LogId from, size_t limit, uint64_t wait_ms, http::Responder respond) {
  if (wait_ms == 0 || VisibleId() >= from) {
    respond(Page(from, limit));
    return;
  }
  {
    std::lock_guard lock(tails_mu_);
    if (!tails_closed_) {
      tails_.emplace(from, Tail{from, limit, Clock::now() + std::chrono::milliseconds(wait_ms),
                                std::move(respond)});
      respond = nullptr;
    }
  }
  if (respond) {  // Draining: nobody would ever answer it.
    respond(Page(from, limit));
    return;
  }
  // The id may have become readable between the check and the parking.
  NotifyAppended(VisibleId());
}

void NodeBase::NotifyAppended(core::LogId last_id) {
  std::vector<Tail> ready;
  {
    std::lock_guard lock(tails_mu_);
    if (tails_.empty()) return;
    auto end = tails_.upper_bound(std::min(last_id, VisibleId()));
    for (auto it = tails_.begin(); it != end; ++it) ready.push_back(std::move(it->second));
    tails_.erase(tails_.begin(), end);
  }
  for (Tail& t : ready) t.respond(Page(t.from, t.limit));
}

void NodeBase::ExpireTails(Clock::time_point now, bool all) {
  std::vector<Tail> expired;
  {
    std::lock_guard lock(tails_mu_);
    if (all) tails_closed_ = true;
    for (auto it = tails_.begin(); it != tails_.end();) {
      if (all || it->second.deadline <= now) {
        expired.push_back(std::move(it->second));
        it = tails_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (Tail& t : expired) t.respond(Page(t.from, t.limit));
}

}  // namespace rlog::app
