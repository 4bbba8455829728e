#include "app/node_base.h"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace rlog::app {

namespace {

// Max payload bytes in one /messages page (at least one entry is always returned).
constexpr uint64_t kPageBytes = 4 << 20;

// A message as a JSON string, escaped by nlohmann's serializer. Messages were validated as UTF-8
// on insert; replace rather than throw if one is not.
void AppendJsonString(const std::string& text, std::string* out) {
  out->append(nlohmann::json(text).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

// The entries as the JSON array nlohmann would print for objects {"id", "message", "timestamp"}
// (keys in that order, as its std::map keeps them), written straight into `out`: no json tree per
// entry. Pages are what tailing consumers cost the server (docs/PERFORMANCE.md, "Tailing
// consumers").
void AppendEntriesJson(const std::vector<storage::Entry>& entries, std::string* out) {
  out->push_back('[');
  for (size_t i = 0; i < entries.size(); ++i) {
    const storage::Entry& e = entries[i];
    out->append(i == 0 ? "{\"id\":" : ",{\"id\":");
    out->append(std::to_string(e.id));
    out->append(",\"message\":");
    AppendJsonString(e.message, out);
    out->append(",\"timestamp\":");
    out->append(std::to_string(e.timestamp_ms));
    out->push_back('}');
  }
  out->push_back(']');
}

}  // namespace

core::LogId NodeBase::VisibleId() const {
  return std::min({served_->durable_id(), served_->last_id(), ReadCap()});
}

// Built a page at a time (no copy of the whole log besides the body), and refused once the
// body would pass get_all_max_bytes_: one answer's memory is bounded however long the log is
// (Pistache copies the body once more to send it).
http::HttpReply NodeBase::GetAll() {
  const core::LogId visible = VisibleId();
  std::string body = "[";
  for (core::LogId from = 1; from <= visible;) {
    const auto entries = served_->memory().Read(from, visible - from + 1, kPageBytes);
    if (entries.empty()) break;
    std::string page;
    AppendEntriesJson(entries, &page);
    const std::string_view inner = std::string_view(page).substr(1, page.size() - 2);
    if (body.size() + inner.size() + 2 > get_all_max_bytes_) {
      return http::JsonError(
          400,
          "the log is too large for GET /get-all: its answer would pass http.get_all_max_bytes (" +
              std::to_string(get_all_max_bytes_) + " bytes); page through it with GET " +
              "/messages?from=1&limit=N, then from the \"next\" each page gives",
          "\"lastId\":" + std::to_string(visible) +
              ",\"getAllMaxBytes\":" + std::to_string(get_all_max_bytes_));
    }
    if (from > 1) body.push_back(',');
    body.append(inner);
    from = entries.back().id + 1;
  }
  body.push_back(']');
  return {200, std::move(body), {}};
}

http::HttpReply NodeBase::Page(core::LogId from, size_t limit) const {
  const core::LogId visible = VisibleId();
  const size_t readable = visible >= from ? static_cast<size_t>(visible - from + 1) : 0;
  auto entries = served_->memory().Read(from, std::min(limit, readable), kPageBytes);
  core::LogId next = entries.empty() ? from : entries.back().id + 1;
  std::string body = "{\"lastId\":" + std::to_string(visible) + ",\"messages\":";
  AppendEntriesJson(entries, &body);
  body += ",\"next\":" + std::to_string(next) + "}";
  return {200, std::move(body), {}};
}

void NodeBase::Messages(core::LogId from, size_t limit, uint64_t wait_ms, http::Responder respond) {
  if (wait_ms == 0 || VisibleId() >= from) {
    respond(Page(from, limit));
    return;
  }
  bool full = false;
  {
    std::lock_guard lock(tails_mu_);
    if (tails_.size() >= max_waiting_reads_) {
      full = true;
    } else if (!tails_closed_) {
      tails_.emplace(from, Tail{from, limit, Clock::now() + std::chrono::milliseconds(wait_ms),
                                std::move(respond)});
      respond = nullptr;
    }
  }
  if (full) {
    http::HttpReply reply = http::JsonError(
        503, "too many waiting reads: " + std::to_string(max_waiting_reads_) +
                 " long polls are parked (http.max_waiting_reads); retry, or read without waitMs");
    reply.headers.emplace_back("Retry-After", "1");
    respond(std::move(reply));
    return;
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

size_t NodeBase::WaitingReads() {
  std::lock_guard lock(tails_mu_);
  return tails_.size();
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
