// Membership: which sentinels the SENTINELS items name, as DNS answers come and go. The pure core
// of discovery (STYLE.md §1): no sockets, threads or clock reads. The shell (Discovery) asks
// which items are due, resolves them, feeds back each answer or failure with the current tick,
// and hands the resulting changes to the master.
//
// Rules (DESIGN.md "Discovery", issue 5 item 1):
// - Static items are members from the start and never re-resolved.
// - A successful answer adds its new identities at once (Added) and moves a known identity to a
//   new address (AddressChanged: the caller rebuilds that sentinel's channel). While a known
//   address is still among an identity's addresses it is kept, so rotating records cause no churn.
// - An identity leaves (Removed) only when successful answers have lacked it for `grace` ticks,
//   confirmed by a successful answer at or after the deadline. Failures (NXDOMAIN, timeouts,
//   refused, an answer with no records) prove nothing: they never remove anyone, they only
//   schedule the next attempt with capped exponential backoff and jitter.
// - After a success an item is re-resolved every `refresh` ticks (sooner when an absent identity's
//   grace deadline comes first, so the removal is confirmed on time).
// - An identity named by several items is a member while any of them names it.
//
// Not thread-safe: one owner (the discovery thread) drives it.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/backoff.h"
#include "core/types.h"
#include "discovery/sentinel_item.h"

namespace rlog::discovery {

using core::Tick;
inline constexpr Tick kNever = std::numeric_limits<Tick>::max();

// One sentinel in an answer: its identity and the addresses ("ip:port") it resolved to. No
// addresses means "present, but its address lookup failed this time" (an SRV target whose A/AAAA
// query failed): a known member keeps its address, an unknown one waits for the next answer.
struct Endpoint {
  std::string identity;
  std::vector<std::string> addresses;
};

struct Change {
  enum class Kind { kAdded, kAddressChanged, kRemoved };

  Kind kind = Kind::kAdded;
  std::string identity;
  std::string address;  // What to dial (kAdded, kAddressChanged); empty for kRemoved.

  static Change Added(std::string identity, std::string address) {
    return {Kind::kAdded, std::move(identity), std::move(address)};
  }
  static Change AddressChanged(std::string identity, std::string address) {
    return {Kind::kAddressChanged, std::move(identity), std::move(address)};
  }
  static Change Removed(std::string identity) { return {Kind::kRemoved, std::move(identity), ""}; }
  bool operator==(const Change&) const = default;
};

// "added s0:9091 at 10.0.0.1:9091", for logs and test messages.
std::string ToString(const Change& change);

struct MembershipOptions {
  Tick refresh = 5000;         // Between successful resolutions of one item.
  Tick grace = 30000;          // How long an identity may be missing from answers before it leaves.
  Tick backoff_initial = 250;  // First retry after a failure; doubles per failure...
  Tick backoff_max = 10000;    // ...up to this (each delay drawn from [base/2, base]).
  Tick min_interval = 500;     // RequestRefresh never resolves one item more often than this.
  uint64_t seed = 1;           // Seeds the jitter.
};

class Membership {
 public:
  // What the shell can show about one item (for logs and /health).
  struct ItemStatus {
    std::string item;
    bool attempted = false;             // Has had at least one answer or failure.
    uint32_t consecutive_failures = 0;  // Reset by a complete successful answer.
    std::string last_error;             // Of the latest failure; empty after a success.
    size_t members = 0;                 // Identities this item currently contributes.
  };

  // Static items become members at once: the first TakeChanges() reports them as Added. Every
  // other item is due at `now`.
  Membership(std::vector<SentinelItem> items, MembershipOptions options, Tick now);

  size_t item_count() const { return items_.size(); }
  const SentinelItem& item(size_t index) const { return items_[index].item; }

  // Items due at `now`, now in flight: resolve each and report back with Resolved() or Failed().
  std::vector<size_t> TakeDue(Tick now);
  // The earliest tick at which TakeDue() returns an item; kNever if none is waiting.
  Tick NextDue() const;

  // The answer to an in-flight item's resolution. `now` never goes back in time. An empty
  // answer counts as a failure.
  void Resolved(size_t index, Tick now, std::vector<Endpoint> endpoints);
  // The resolution failed (temporarily: every DNS failure is).
  void Failed(size_t index, Tick now, std::string reason);
  // Re-resolve every item whose last attempt succeeded, soon (not before `min_interval` after its
  // last attempt). Items in backoff keep their schedule: a failing server is not hammered.
  void RequestRefresh(Tick now);

  // Changes since the last call, in order: additions, then address changes, then removals (so
  // the cluster never shrinks on the way to a new shape); each group sorted by identity.
  std::vector<Change> TakeChanges();

  // identity -> address of every current member (what all changes so far add up to).
  const std::map<std::string, std::string>& members() const { return members_; }
  std::vector<ItemStatus> Status() const;
  // Every item has had at least one answer or failure (static items count as answered).
  bool AllAttempted() const;

  // Aborts if an internal invariant is broken; tests call it after every step.
  void CheckInvariants() const;

 private:
  struct Tracked {
    std::string address;
    std::optional<Tick> absent_since;  // First successful answer that lacked it.
  };
  struct ItemState {
    ItemState(SentinelItem i, core::Backoff b) : item(std::move(i)), backoff(b) {}

    SentinelItem item;
    std::map<std::string, Tracked> tracked;  // Identities this item contributes.
    core::Backoff backoff;
    Tick next_due = kNever;
    Tick last_attempt = 0;
    bool in_flight = false;
    bool attempted = false;
    bool last_ok = false;
    uint32_t consecutive_failures = 0;
    std::string last_error;
  };

  void Finish(ItemState& state, Tick now);
  void ScheduleRetry(ItemState& state, Tick now, std::string reason);
  void Publish();
  std::map<std::string, std::string> Union() const;

  const MembershipOptions options_;
  std::vector<ItemState> items_;
  core::Random random_;
  Tick now_;
  std::map<std::string, std::string> members_;
  std::vector<Change> changes_;
};

}  // namespace rlog::discovery
