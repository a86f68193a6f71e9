// State shared between a vCPU's run thread and the JS thread.
//
// Protocol per exit: the run thread returns from KVM_RUN, posts the exit through a ThreadSafeFunction and waits
// on `reply` (a short spin, then a futex). The JS callback decodes the kvm_run page, handles the exit and answers
// kContinue (re-enter KVM_RUN) or kPark (wait for resume()). State changes are made only on the JS thread.
#pragma once

#include "kvm_headers.h"
#include <pthread.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "common.h"

namespace nodevmm {

class KvmVcpu;

enum RunReply : int { kPending = -1, kContinue = 0, kPark = 1, kAbort = 2 };
enum RunState : int { kParked, kRunning, kClosing };
// Who delivers the next exit: the ThreadSafeFunction (kIdle), or the JS thread that is polling for it (kPolling;
// the run thread claims it with a CAS to kClaimed, skipping the event-loop wake-up).
enum PollMode : int { kIdle, kPolling, kClaimed };

struct RunShared;
void CallJsOnExit(Napi::Env env, Napi::Function callback, void* context, RunShared* shared);
using RunTsfn = Napi::TypedThreadSafeFunction<void, RunShared, CallJsOnExit>;

struct RunShared {
  int fd = -1;
  kvm_run* run = nullptr;
  KvmVcpu* owner = nullptr;  // valid while !aborted (JS thread only)

  std::mutex mu;
  std::condition_variable cv;
  RunState state = kParked;  // written on the JS thread under mu
  bool aborted = false;      // JS thread only: close() happened, ignore queued callbacks
  bool resumeRequested = false;

  std::atomic<bool> closing{false};
  std::atomic<int> reply{kPending};
  std::atomic<int> sleeping{0};
  std::atomic<bool> awaitingReply{false};
  std::atomic<int64_t> spinNs{0};
  std::atomic<int> pollMode{kIdle};
  int64_t pollNs = 0;           // JS thread: longest wait for the next exit before returning to the event loop
  int64_t budgetNs = 2000000;   // JS thread: at most this long handling exits back to back per event-loop turn
  // Adaptive windows (like an adaptive mutex): a wait that pays off sets the window to twice what it took; a
  // wait that times out halves it, down to zero on a busy host where the other thread is not on a CPU. Every
  // kProbeEvery hand-offs a zero window is re-armed to probe whether spinning pays again.
  int64_t spinWindow = 30000;   // run thread only
  int64_t pollWindow = 50000;   // JS thread only
  unsigned spinMisses = 0;      // run thread only
  unsigned pollMisses = 0;      // JS thread only
  int lastErrno = 0;  // written by the run thread before posting, read by the callback

  RunTsfn tsfn;
  std::thread thread;
  pthread_t tid{};

  void ThreadMain();
  void WaitReply();
  void Answer(int r);  // JS thread: publish the reply and wake the run thread
  void Kick();         // JS thread: make KVM_RUN return EINTR now or at its next entry
};

}  // namespace nodevmm
