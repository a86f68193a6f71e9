#include "run_thread.h"

#include <linux/futex.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>

#include "inline_run.h"
#include "kick_signal.h"
#include "vcpu.h"

namespace nodevmm {

constexpr unsigned kProbeEvery = 64;
constexpr int64_t kProbeNs = 4000;
constexpr int64_t kMinWindowNs = 1000;

static int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

static void FutexWait(std::atomic<int>* word, int expected) {
  syscall(SYS_futex, reinterpret_cast<int*>(word), FUTEX_WAIT_PRIVATE, expected, nullptr, nullptr, 0);
}

static void FutexWake(std::atomic<int>* word) {
  syscall(SYS_futex, reinterpret_cast<int*>(word), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
}

void RunShared::ThreadMain() {
  // Only the kick signal may interrupt this thread: process-directed signals (SIGCHLD, SIGINT, ...) must go to
  // Node's threads, and must not make KVM_RUN return a spurious EINTR.
  sigset_t mask;
  sigfillset(&mask);
  sigdelset(&mask, KickSignal());
  for (int s : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) sigdelset(&mask, s);
  pthread_sigmask(SIG_SETMASK, &mask, nullptr);
  SetThreadRun(run);  // the kick handler sets immediate_exit even if the signal lands just before KVM_RUN

  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [this] { return state != kParked; });
      if (state == kClosing) return;
    }
    int r = ioctl(fd, KVM_RUN, 0);
    lastErrno = r < 0 ? errno : 0;
    if (lastErrno == EINTR) run->immediate_exit = 0;  // the kick has been delivered
    reply.store(kPending);
    if (closing.load()) return;
    awaitingReply.store(true);
    int polling = kPolling;
    if (!pollMode.compare_exchange_strong(polling, kClaimed)) {
      if (tsfn.BlockingCall(this) != napi_ok) return;
    }
    WaitReply();
    awaitingReply.store(false);
    if (reply.load() == kAbort || closing.load()) return;
  }
}

// The JS side usually answers within a few microseconds: spin briefly (cheaper than a futex sleep/wake pair),
// then sleep on the futex so a slow handler does not burn a core.
void RunShared::WaitReply() {
  const int64_t maxSpin = spinNs.load(std::memory_order_relaxed);
  if (spinWindow == 0 && maxSpin > 0 && ++spinMisses % kProbeEvery == 0) spinWindow = kProbeNs;
  if (spinWindow > maxSpin) spinWindow = maxSpin;
  if (spinWindow > 0) {
    const int64_t start = NowNs();
    int64_t waited = 0;
    unsigned n = 0;
    while (reply.load(std::memory_order_acquire) == kPending) {
      __builtin_ia32_pause();
      if ((++n & 31) == 0 && (waited = NowNs() - start) > spinWindow) break;
    }
    if (reply.load(std::memory_order_acquire) != kPending) {
      spinWindow = std::min(maxSpin, std::max<int64_t>(2 * waited, kProbeNs));
      spinMisses = 0;
      return;
    }
    spinWindow = spinWindow / 2 < kMinWindowNs ? 0 : spinWindow / 2;
  }
  while (reply.load() == kPending && !closing.load()) {
    sleeping.store(1);
    if (reply.load() == kPending && !closing.load()) FutexWait(&reply, kPending);
    sleeping.store(0);
  }
}

void RunShared::Answer(int r) {
  reply.store(r);
  if (sleeping.load()) FutexWake(&reply);
}

void RunShared::Kick() {
  __atomic_store_n(&run->immediate_exit, 1, __ATOMIC_SEQ_CST);
  pthread_kill(tid, KickSignal());
}

// Runs the JS onExit for the exit the run thread just published; returns the verdict (kContinue / kPark), or
// -1 when the vCPU was closed by the callback.
static int HandleExit(Napi::Env env, Napi::Function callback, RunShared* shared) {
  int verdict = kPark;
  bool threw = false;
  Napi::Error error;
  try {
    Napi::Value v = callback.Call({Napi::Number::New(env, shared->lastErrno)});
    if (v.IsNumber()) verdict = v.As<Napi::Number>().Int32Value();
  } catch (const Napi::Error& e) {
    error = e;
    threw = true;
  }
  if (shared->aborted) return -1;  // the callback closed the vCPU; close() already released the thread
  if (verdict != kContinue && shared->resumeRequested) verdict = kContinue;
  shared->resumeRequested = false;
  if (verdict != kContinue) {
    verdict = kPark;
    {
      std::lock_guard<std::mutex> lock(shared->mu);
      shared->state = kParked;
      // A kick that raced with this exit has done its job: the vCPU is stopped.
      __atomic_store_n(&shared->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
    }
    shared->owner->OnParked(env);
  }
  shared->Answer(verdict);
  if (threw) error.ThrowAsJavaScriptException();
  return threw ? kPark : verdict;
}

// Called through the ThreadSafeFunction. After answering "continue", keeps the JS thread briefly polling for
// the next exit (pollNs), handling exits back to back for at most budgetNs before returning to the event loop:
// on a busy guest this avoids an event-loop wake-up (an IPI, expensive in a VM) per exit, while timers, I/O
// and microtasks still get a turn at least every budgetNs.
void CallJsOnExit(Napi::Env env, Napi::Function callback, void*, RunShared* shared) {
  if (env == nullptr || shared->aborted) return;
  const int64_t start = NowNs();
  for (;;) {
    if (HandleExit(env, callback, shared) != kContinue) return;
    const int64_t now = NowNs();
    if (shared->pollNs <= 0 || now - start > shared->budgetNs) return;
    if (shared->pollWindow == 0 && ++shared->pollMisses % kProbeEvery == 0) shared->pollWindow = kProbeNs;
    if (shared->pollWindow > shared->pollNs) shared->pollWindow = shared->pollNs;
    if (shared->pollWindow == 0) return;
    shared->pollMode.store(kPolling);
    const int64_t deadline = now + shared->pollWindow;
    int64_t t = now;
    unsigned n = 0;
    bool claimed = false;
    for (;;) {
      if (shared->pollMode.load(std::memory_order_acquire) == kClaimed) {
        claimed = true;
        break;
      }
      __builtin_ia32_pause();
      if ((++n & 31) == 0 && (t = NowNs()) > deadline) break;
    }
    if (!claimed) {
      int polling = kPolling;
      if (shared->pollMode.compare_exchange_strong(polling, kIdle)) {
        // Nothing came: the next exit goes through the TSFN; narrow the window.
        shared->pollWindow = shared->pollWindow / 2 < kMinWindowNs ? 0 : shared->pollWindow / 2;
        return;
      }
    }
    shared->pollWindow = std::min(shared->pollNs, std::max<int64_t>(2 * (t - now), kProbeNs));
    shared->pollMisses = 0;
    shared->pollMode.store(kIdle);  // claimed: the run thread published an exit for us
  }
}

}  // namespace nodevmm
