#include "run_thread.h"

#include <linux/futex.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "kick_signal.h"
#include "vcpu.h"

namespace nodevmm {

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
    if (tsfn.BlockingCall(this) != napi_ok) return;
    WaitReply();
    awaitingReply.store(false);
    if (reply.load() == kAbort || closing.load()) return;
  }
}

// The JS side usually answers within a few microseconds: spin briefly (cheaper than a futex sleep/wake pair),
// then sleep on the futex so a slow handler does not burn a core.
void RunShared::WaitReply() {
  const int64_t limit = spinNs.load(std::memory_order_relaxed);
  if (limit > 0) {
    const int64_t start = NowNs();
    unsigned n = 0;
    while (reply.load(std::memory_order_acquire) == kPending) {
      __builtin_ia32_pause();
      if ((++n & 63) == 0 && NowNs() - start > limit) break;
    }
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

void CallJsOnExit(Napi::Env env, Napi::Function callback, void*, RunShared* shared) {
  if (env == nullptr || shared->aborted) return;
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
  if (shared->aborted) return;  // the callback closed the vCPU; close() already released the thread
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
}

}  // namespace nodevmm
