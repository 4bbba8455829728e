// Clang thread-safety annotations (no-ops elsewhere). Build with clang -Wthread-safety to check.
#pragma once

#if defined(__clang__)
#define RLOG_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define RLOG_THREAD_ANNOTATION(x)
#endif

#define GUARDED_BY(x) RLOG_THREAD_ANNOTATION(guarded_by(x))
#define PT_GUARDED_BY(x) RLOG_THREAD_ANNOTATION(pt_guarded_by(x))
#define REQUIRES(...) RLOG_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define EXCLUDES(...) RLOG_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define CAPABILITY(x) RLOG_THREAD_ANNOTATION(capability(x))
#define ACQUIRE(...) RLOG_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define RELEASE(...) RLOG_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define SCOPED_CAPABILITY RLOG_THREAD_ANNOTATION(scoped_lockable)
#define NO_THREAD_SAFETY_ANALYSIS RLOG_THREAD_ANNOTATION(no_thread_safety_analysis)

#include <mutex>

namespace rlog {

// std::mutex with capability annotations, so GUARDED_BY can be checked by clang.
class CAPABILITY("mutex") Mutex {
 public:
  void lock() ACQUIRE() { mu_.lock(); }
  void unlock() RELEASE() { mu_.unlock(); }
  std::mutex& native() { return mu_; }

 private:
  std::mutex mu_;
};

class SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mu) ACQUIRE(mu) : mu_(mu) { mu_.lock(); }
  ~MutexLock() RELEASE() { mu_.unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex& mu_;
};

}  // namespace rlog
