#include "discovery/membership.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <utility>

namespace rlog::discovery {
namespace {

void Check(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "discovery::Membership invariant broken: %s\n", what);
    std::abort();
  }
}

// Several endpoints with one identity (an SRV target listed twice) become one.
std::map<std::string, std::vector<std::string>> ByIdentity(std::vector<Endpoint> endpoints) {
  std::map<std::string, std::vector<std::string>> out;
  for (Endpoint& e : endpoints) {
    std::vector<std::string>& addresses = out[e.identity];
    for (std::string& a : e.addresses) {
      if (!a.empty()) addresses.push_back(std::move(a));
    }
  }
  return out;
}

}  // namespace

std::string ToString(const Change& change) {
  switch (change.kind) {
    case Change::Kind::kAdded:
      return "added " + change.identity + " at " + change.address;
    case Change::Kind::kAddressChanged:
      return "moved " + change.identity + " to " + change.address;
    case Change::Kind::kRemoved:
      return "removed " + change.identity;
  }
  return "?";
}

Membership::Membership(std::vector<SentinelItem> items, MembershipOptions options, Tick now)
    : options_(options), random_(options.seed), now_(now) {
  items_.reserve(items.size());
  for (SentinelItem& item : items) {
    ItemState state(std::move(item), core::Backoff(options.backoff_initial, options.backoff_max));
    if (state.item.kind == SentinelItem::Kind::kStatic) {
      std::string identity = state.item.StaticIdentity();
      state.tracked[identity] = Tracked{identity, std::nullopt};
      state.attempted = true;
      state.last_ok = true;
    } else {
      state.next_due = now;
    }
    items_.push_back(std::move(state));
  }
  Publish();
}

std::vector<size_t> Membership::TakeDue(Tick now) {
  now_ = std::max(now_, now);
  std::vector<size_t> due;
  for (size_t i = 0; i < items_.size(); ++i) {
    ItemState& state = items_[i];
    if (state.in_flight || state.next_due > now_) continue;
    state.in_flight = true;
    state.last_attempt = now_;
    state.next_due = kNever;
    due.push_back(i);
  }
  return due;
}

Tick Membership::NextDue() const {
  Tick next = kNever;
  for (const ItemState& state : items_) {
    if (!state.in_flight) next = std::min(next, state.next_due);
  }
  return next;
}

void Membership::Resolved(size_t index, Tick now, std::vector<Endpoint> endpoints) {
  ItemState& state = items_.at(index);
  Check(state.in_flight, "Resolved() for an item that is not in flight");
  now_ = std::max(now_, now);
  std::map<std::string, std::vector<std::string>> answer = ByIdentity(std::move(endpoints));
  if (answer.empty()) {
    Failed(index, now_, "the answer holds no records");
    return;
  }
  state.in_flight = false;
  state.attempted = true;

  bool partial = false;
  for (auto& [identity, addresses] : answer) {
    auto it = state.tracked.find(identity);
    if (addresses.empty()) {
      // Present, address unknown this round: a known member stays where it is.
      partial = true;
      if (it != state.tracked.end()) it->second.absent_since.reset();
      continue;
    }
    std::string address = *std::min_element(addresses.begin(), addresses.end());
    if (it != state.tracked.end() &&
        std::find(addresses.begin(), addresses.end(), it->second.address) != addresses.end()) {
      address = it->second.address;  // Still valid: keep it, no churn.
    }
    state.tracked[identity] = Tracked{std::move(address), std::nullopt};
  }
  for (auto it = state.tracked.begin(); it != state.tracked.end();) {
    Tracked& t = it->second;
    if (answer.count(it->first) == 0) {
      if (!t.absent_since) t.absent_since = now_;
      if (now_ - *t.absent_since >= options_.grace) {
        it = state.tracked.erase(it);
        continue;
      }
    }
    ++it;
  }

  if (partial) {
    ScheduleRetry(state, now_, "some SRV targets did not resolve to an address");
  } else {
    state.backoff.Reset();
    state.consecutive_failures = 0;
    state.last_error.clear();
    state.last_ok = true;
    state.next_due = now_ + options_.refresh;
  }
  Finish(state, now_);
}

void Membership::Failed(size_t index, Tick now, std::string reason) {
  ItemState& state = items_.at(index);
  Check(state.in_flight, "Failed() for an item that is not in flight");
  now_ = std::max(now_, now);
  state.in_flight = false;
  state.attempted = true;
  ScheduleRetry(state, now_, std::move(reason));
}

void Membership::ScheduleRetry(ItemState& state, Tick now, std::string reason) {
  ++state.consecutive_failures;
  state.last_error = std::move(reason);
  state.last_ok = false;
  state.next_due = now + state.backoff.NextDelay(random_);
}

// Bring the next attempt forward to the earliest grace deadline, then publish.
void Membership::Finish(ItemState& state, Tick now) {
  for (const auto& [identity, t] : state.tracked) {
    if (t.absent_since) {
      state.next_due =
          std::min(state.next_due, std::max(now + 1, *t.absent_since + options_.grace));
    }
  }
  Publish();
}

void Membership::RequestRefresh(Tick now) {
  now_ = std::max(now_, now);
  for (ItemState& state : items_) {
    if (state.item.kind == SentinelItem::Kind::kStatic || state.in_flight || !state.last_ok) {
      continue;
    }
    state.next_due =
        std::min(state.next_due, std::max(now_, state.last_attempt + options_.min_interval));
  }
}

std::map<std::string, std::string> Membership::Union() const {
  std::map<std::string, std::string> all;
  for (const ItemState& state : items_) {
    for (const auto& [identity, t] : state.tracked)
      all.emplace(identity, t.address);  // First item wins.
  }
  return all;
}

void Membership::Publish() {
  std::map<std::string, std::string> next = Union();
  std::vector<Change> added, moved, removed;
  for (const auto& [identity, address] : next) {
    auto it = members_.find(identity);
    if (it == members_.end()) {
      added.push_back(Change::Added(identity, address));
    } else if (it->second != address) {
      moved.push_back(Change::AddressChanged(identity, address));
    }
  }
  for (const auto& [identity, address] : members_) {
    if (next.count(identity) == 0) removed.push_back(Change::Removed(identity));
  }
  for (auto* group : {&added, &moved, &removed}) {
    changes_.insert(changes_.end(), group->begin(), group->end());
  }
  members_ = std::move(next);
}

std::vector<Change> Membership::TakeChanges() { return std::exchange(changes_, {}); }

std::vector<Membership::ItemStatus> Membership::Status() const {
  std::vector<ItemStatus> out;
  for (const ItemState& state : items_) {
    out.push_back(ItemStatus{state.item.text, state.attempted, state.consecutive_failures,
                             state.last_error, state.tracked.size()});
  }
  return out;
}

bool Membership::AllAttempted() const {
  return std::all_of(items_.begin(), items_.end(), [](const ItemState& s) { return s.attempted; });
}

void Membership::CheckInvariants() const {
  Check(members_ == Union(), "members() is not the union of what the items contribute");
  for (const ItemState& state : items_) {
    bool is_static = state.item.kind == SentinelItem::Kind::kStatic;
    Check(!is_static || (!state.in_flight && state.next_due == kNever && state.tracked.size() == 1),
          "a static item is scheduled or lost its sentinel");
    Check(!state.in_flight || state.next_due == kNever, "an in-flight item is also scheduled");
    Check(is_static || state.in_flight || state.next_due != kNever,
          "a resolvable item is neither in flight nor scheduled");
    for (const auto& [identity, t] : state.tracked) {
      Check(!t.address.empty(), "a member without an address");
      // Absent for longer than the grace period is allowed: removal waits for a successful answer
      // that confirms it.
      Check(!t.absent_since || *t.absent_since <= now_, "an identity went absent in the future");
    }
  }
}

}  // namespace rlog::discovery
