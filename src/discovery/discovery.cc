#include "discovery/discovery.h"

#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <random>

namespace rlog::discovery {
namespace {

// The longest the loop sleeps without looking at the schedule (Stop() wakes it anyway).
constexpr Tick kMaxSleepMs = 1000;

}  // namespace

Discovery::Discovery(std::vector<std::string> items, DiscoveryOptions options, OnChange on_change)
    : texts_(std::move(items)),
      options_(std::move(options)),
      on_change_(std::move(on_change)),
      epoch_(std::chrono::steady_clock::now()) {}

Discovery::~Discovery() {
  Stop();
  if (wake_fd_ >= 0) close(wake_fd_);
}

Tick Discovery::Now() const {
  return static_cast<Tick>(std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::steady_clock::now() - epoch_)
                               .count());
}

Status Discovery::Start() {
  {
    MutexLock lock(mu_);
    if (started_) return Status::FailedPrecondition("discovery already started");
    started_ = true;
  }
  Result<std::vector<SentinelItem>> items = ParseSentinelItems(texts_);
  if (!items.ok()) return items.status();
  bool any_dns = false;
  for (const SentinelItem& item : items.value()) {
    any_dns = any_dns || item.kind != SentinelItem::Kind::kStatic;
  }
  if (any_dns) {
    Result<std::unique_ptr<CaresResolver>> resolver = CaresResolver::Create(
        {options_.dns_server, options_.query_timeout_ms, options_.query_tries});
    if (!resolver.ok()) return resolver.status();
    resolver_ = std::move(resolver).value();
    wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd_ < 0) return Status::IOError("discovery: eventfd failed");
  }

  MembershipOptions m;
  m.refresh = options_.refresh_ms;
  m.grace = options_.grace_ms;
  m.backoff_initial = options_.backoff_initial_ms;
  m.backoff_max = options_.backoff_max_ms;
  m.min_interval = options_.min_interval_ms;
  m.seed = options_.seed != 0 ? options_.seed : (uint64_t{std::random_device{}()} << 32) | 1;
  membership_ = std::make_unique<Membership>(std::move(items).value(), m, Now());
  Deliver();  // The static items, on the caller's thread.
  if (!any_dns) return Status::Ok();

  thread_ = std::thread([this] { Run(); });
  MutexLock lock(mu_);
  auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.start_wait_ms);
  while (!first_round_delivered_) {
    if (first_round_cv_.wait_until(mu_, deadline) == std::cv_status::timeout) break;
  }
  if (!first_round_delivered_) {
    spdlog::warn("discovery: not every name answered within {} ms; carrying on in the background",
                 options_.start_wait_ms);
  }
  return Status::Ok();
}

void Discovery::Stop() {
  stop_ = true;
  if (thread_.joinable()) {
    Wake();
    thread_.join();
  }
  resolver_.reset();  // Drops lookups in flight without calling back.
  // The eventfd stays open until the destructor: RequestRefresh() may still come from another
  // thread (a stream closing on the master's replication thread) after Stop, and must never
  // write to a closed descriptor whose number was handed out again.
}

void Discovery::RequestRefresh() {
  refresh_requested_ = true;
  Wake();
}

void Discovery::Wake() {
  if (wake_fd_ < 0) return;
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = write(wake_fd_, &one, sizeof(one));  // Full counter: already woken.
}

std::map<std::string, std::string> Discovery::Members() const {
  MutexLock lock(mu_);
  return members_;
}

std::vector<Membership::ItemStatus> Discovery::Items() const {
  MutexLock lock(mu_);
  return items_;
}

void Discovery::Run() {
  while (!stop_) {
    if (refresh_requested_.exchange(false)) membership_->RequestRefresh(Now());
    for (size_t index : membership_->TakeDue(Now())) {
      resolver_->Resolve(membership_->item(index),
                         [this, index](Result<std::vector<Endpoint>> result) {
                           OnResolved(index, std::move(result));
                         });
    }
    Deliver();
    Tick now = Now();
    Tick next = membership_->NextDue();
    Tick sleep =
        next == kNever ? kMaxSleepMs : (next > now ? std::min(next - now, kMaxSleepMs) : 0);
    if (resolver_->Poll(std::chrono::milliseconds(sleep), wake_fd_)) {
      uint64_t count = 0;
      [[maybe_unused]] ssize_t n = read(wake_fd_, &count, sizeof(count));
    }
    Deliver();
  }
}

void Discovery::OnResolved(size_t index, Result<std::vector<Endpoint>> result) {
  if (result.ok()) {
    membership_->Resolved(index, Now(), std::move(result).value());
  } else {
    membership_->Failed(index, Now(), result.status().message());
  }
}

// Publishes the snapshot, logs what changed, calls on_change, then marks the first round done.
void Discovery::Deliver() {
  std::vector<Change> changes = membership_->TakeChanges();
  std::vector<Membership::ItemStatus> status = membership_->Status();
  std::vector<Membership::ItemStatus> before;
  {
    MutexLock lock(mu_);
    members_ = membership_->members();
    before = std::exchange(items_, status);
  }
  for (size_t i = 0; i < status.size() && i < before.size(); ++i) {
    const Membership::ItemStatus& now = status[i];
    if (now.consecutive_failures > 0 && before[i].consecutive_failures == 0) {
      spdlog::warn("discovery: {} ({}); keeping its {} sentinel(s), retrying with backoff",
                   now.item, now.last_error, now.members);
    } else if (now.consecutive_failures == 0 && before[i].consecutive_failures > 0) {
      spdlog::info("discovery: {} answers again", now.item);
    }
  }
  for (const Change& change : changes) spdlog::info("discovery: {}", ToString(change));
  if (!changes.empty() && on_change_) on_change_(changes);

  if (membership_->AllAttempted()) {
    MutexLock lock(mu_);
    if (!first_round_delivered_) {
      first_round_delivered_ = true;
      first_round_cv_.notify_all();
    }
  }
}

}  // namespace rlog::discovery
