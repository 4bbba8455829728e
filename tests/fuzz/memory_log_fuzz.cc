// Fuzz target: MemoryLog (storage/memory_log.h), the log every read is served from, against a
// plain model: a vector of entries and a map of held-back ones. The input is a sequence of
// operations (AppendNext, Apply of batches in any order with resends, gaps, stale and refused
// epochs, TruncateAfter, Clear, Read, BatchEnd); after each one the log must equal the model:
// the ids 1..last_id() with their messages, timestamps and epochs (DESIGN invariants 2 and 3),
// the epoch history, the held-back count, and what Read and BatchEnd return. Messages range up
// to a little over the payload arena's 1 MiB chunks, so entries straddle chunk boundaries and
// TruncateAfter gives chunks back (ASan checks every byte the log hands out).
#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "fuzz_support.h"
#include "storage/memory_log.h"

namespace {

using rlog::fuzz::Input;
using rlog::storage::Entry;
using rlog::storage::LogId;
using rlog::storage::MemoryLog;

struct Model {
  std::vector<Entry> entries;   // entries[i] has id i + 1.
  std::map<LogId, Entry> held;  // Arrived ahead of a gap; the first copy of an id is kept.
  uint64_t last_epoch() const { return entries.empty() ? 0 : entries.back().epoch; }

  // Appends e as the next entry unless its epoch goes backwards.
  bool Take(const Entry& e) {
    if (e.epoch < last_epoch()) return false;
    entries.push_back(e);
    entries.back().id = entries.size();
    return true;
  }

  LogId Apply(const std::vector<Entry>& batch, LogId* refused) {
    *refused = 0;
    for (const Entry& e : batch) {
      if (e.id <= entries.size()) continue;
      if (e.id == entries.size() + 1) {
        if (!Take(e) && *refused == 0) *refused = e.id;
      } else {
        held.emplace(e.id, e);
      }
    }
    while (!held.empty() && held.begin()->first <= entries.size() + 1) {
      const Entry e = held.begin()->second;
      held.erase(held.begin());
      if (e.id == entries.size() + 1 && !Take(e) && *refused == 0) *refused = e.id;
    }
    return entries.size();
  }

  std::vector<rlog::core::EpochStart> EpochStarts() const {
    std::vector<rlog::core::EpochStart> out;
    for (const Entry& e : entries) {
      if (out.empty() || out.back().epoch != e.epoch) out.push_back({e.epoch, e.id});
    }
    return out;
  }
};

std::string Message(LogId id, size_t bytes, uint8_t salt) {
  std::string m(bytes, static_cast<char>('a' + (id + salt) % 26));
  if (bytes > 0) m[0] = static_cast<char>(salt);
  return m;
}

// Message sizes: mostly small, sometimes up to the arena's dedicated-chunk size and past it, and
// now and then about a whole chunk, within a budget of bytes per input that keeps runs fast.
size_t MessageBytes(Input& in, uint64_t* budget) {
  size_t bytes = 0;
  switch (in.Int(31)) {
    case 0:
      bytes = (1u << 20) - 64 + in.Int(256);
      break;
    case 1:
      bytes = in.Int(70000);
      break;
    default:
      bytes = in.Int(48);
      break;
  }
  if (bytes > *budget) bytes = std::min<uint64_t>(*budget, 48);
  *budget -= bytes;
  return bytes;
}

bool Same(const Entry& a, const Entry& b) {
  return a.id == b.id && a.timestamp_ms == b.timestamp_ms && a.message == b.message &&
         a.epoch == b.epoch;
}

// The cheap checks run after every operation, the whole contents after those that cut the log
// and at the end (copying every message after every step would make runs 20x slower).
void CheckEqual(const MemoryLog& log, const Model& model, bool contents) {
  FUZZ_CHECK(log.last_id() == model.entries.size(), "");
  FUZZ_CHECK(log.LastEpoch() == model.last_epoch(), "");
  FUZZ_CHECK(log.held_back() == model.held.size(), "");
  FUZZ_CHECK(log.EpochStarts() == model.EpochStarts(), "");
  if (!contents) return;
  const std::vector<Entry> all = log.Read(1, SIZE_MAX, UINT64_MAX);
  FUZZ_CHECK(all.size() == model.entries.size(), "");
  for (size_t i = 0; i < all.size(); ++i) FUZZ_CHECK(Same(all[i], model.entries[i]), "");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Input in(data, size);
  MemoryLog log;
  Model model;
  uint64_t budget = (1u << 20) + (1u << 18);  // Message bytes this input may still make.
  for (int step = 0; step < 200 && !in.empty(); ++step) {
    const LogId last = model.entries.size();
    const uint64_t op = in.Int(9);
    switch (op) {
      case 0:
      case 1: {  // The master appends.
        const uint64_t epoch =
            in.Int(7) == 0 ? in.Int(model.last_epoch() + 1) : model.last_epoch() + in.Int(1);
        const size_t bytes = MessageBytes(in, &budget);
        const int64_t ts = static_cast<int64_t>(in.Int(1u << 20));
        const std::string message = Message(last + 1, bytes, static_cast<uint8_t>(in.Int(255)));
        const LogId got = log.AppendNext(epoch, ts, message);
        if (epoch < model.last_epoch()) {
          FUZZ_CHECK(got == 0, "");
        } else {
          FUZZ_CHECK(got == last + 1, "");
          model.Take(Entry{got, ts, message, epoch});
        }
        break;
      }
      case 2:
      case 3:
      case 4: {  // A sentinel applies a batch: any order, resends, gaps, stale epochs.
        std::vector<Entry> batch;
        const uint64_t n = in.Int(12);
        for (uint64_t i = 0; i < n; ++i) {
          LogId id = last + 1 + in.Int(10);
          if (in.Int(5) == 0) id = in.Int(last + 1);         // A resend (or id 0).
          if (in.Int(40) == 0) id = UINT64_MAX - in.Int(2);  // Far ahead.
          const uint64_t epoch = in.Int(3) == 0 ? in.Int(6) : model.last_epoch() + in.Int(1);
          const size_t bytes = MessageBytes(in, &budget);
          batch.push_back(Entry{id, static_cast<int64_t>(in.Int(1000)),
                                Message(id, bytes, static_cast<uint8_t>(in.Int(255))), epoch});
        }
        LogId want_refused = 0;
        const LogId want = model.Apply(batch, &want_refused);
        LogId refused = 0;
        FUZZ_CHECK(log.Apply(std::move(batch), &refused) == want, "");
        FUZZ_CHECK(refused == want_refused, "");
        break;
      }
      case 5: {  // Entries that never became durable are cut.
        const LogId keep = in.Int(last + 1);
        log.TruncateAfter(keep);
        if (keep < model.entries.size()) model.entries.resize(keep);
        break;
      }
      case 6:
        if (in.Int(7) == 0) {
          log.Clear();
          model = Model();
        }
        break;
      case 7: {  // A reader's page.
        const LogId from = in.Int(last + 2);
        const size_t max_entries = 1 + in.Int(20);
        const uint64_t max_bytes = in.Int(3000);
        const std::vector<Entry> got = log.Read(from, max_entries, max_bytes);
        std::vector<Entry> want;
        uint64_t bytes = 0;
        for (LogId id = std::max<LogId>(from, 1); id <= last && want.size() < max_entries; ++id) {
          const Entry& e = model.entries[id - 1];
          if (!want.empty() && bytes + e.message.size() > max_bytes) break;
          bytes += e.message.size();
          want.push_back(e);
        }
        FUZZ_CHECK(got.size() == want.size(), "");
        for (size_t i = 0; i < got.size(); ++i) FUZZ_CHECK(Same(got[i], want[i]), "");
        break;
      }
      default: {  // The master cuts a batch.
        if (last == 0) break;
        const LogId first = 1 + in.Int(last - 1);
        const LogId end = first + in.Int(last - first);
        const uint64_t max_bytes = in.Int(5000);
        LogId want = first;
        uint64_t bytes = model.entries[first - 1].message.size();
        while (want < end && bytes + model.entries[want].message.size() <= max_bytes) {
          bytes += model.entries[want].message.size();
          ++want;
        }
        FUZZ_CHECK(log.BatchEnd(first, end, max_bytes) == want, "");
        break;
      }
    }
    CheckEqual(log, model, op == 5 || op == 6);
  }
  CheckEqual(log, model, true);
  return 0;
}
