// Running KVM_RUN directly on the JS thread without starving its event loop ("inline" run model).
//
// While the JS thread is inside KVM_RUN, a watcher thread polls the event loop's backend fd (libuv's epoll fd):
// when the loop has I/O ready it kicks the JS thread out of KVM_RUN, and a per-thread POSIX timer kicks it at
// the loop's next timer deadline (or at the end of a time slice). The caller then yields one event-loop turn
// and resumes. Exits are handled without any thread hand-off, at the cost of one vCPU per JS thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include <pthread.h>
#include <time.h>

#include "common.h"

#include <uv.h>

struct kvm_run;

namespace nodevmm {

// Sets immediate_exit on the kvm_run of the vCPU running on the interrupted thread (called by the kick
// signal handler; async-signal-safe).
void MarkImmediateExitForSignal();
// The kvm_run the current thread is about to run or is running (nullptr when none).
void SetThreadRun(kvm_run* run);

class InlineRunner {
 public:
  static InlineRunner* ForEnv(Napi::Env env);  // one per JS thread, created on first use
  ~InlineRunner();

  enum Result : int { kExit = 0, kYield = 1 };
  // One KVM_RUN on this thread unless the event loop needs a turn first. Returns kExit (an exit is in kvm_run),
  // kYield (let the loop run, then call again) or -errno (-EINTR: kicked out by a timer, I/O or kick()).
  int Run(int vcpuFd, kvm_run* run, int64_t sliceNs);

  // Calls `resume` after one event-loop turn that does not block (ready I/O and due timers are processed).
  // Driven by native idle/check handles rather than setImmediate, so that while `resume` runs the loop shows
  // no pending work of ours and uv_backend_timeout() reports the real next timer deadline.
  void YieldThen(Napi::Env env, Napi::Function resume);
  // The inline run is over: disarm the slice timer so no kick signal reaches this thread later.
  void End();

 private:
  explicit InlineRunner(Napi::Env env, uv_loop_s* loop);
  static void OnCheck(uv_check_t* handle);
  void WatcherMain();
  void StopWatcher();
  void ArmTimer(int64_t deadlineNs);
  void DisarmTimer();
  static void Cleanup(napi_async_cleanup_hook_handle handle, void* arg);
  static void OnClosed(uv_handle_t* handle);

  uv_loop_s* loop_;
  pthread_t jsThread_;
  int epollFd_ = -1;
  int controlFd_ = -1;  // eventfd: wakes the watcher to exit
  timer_t timer_{};
  bool timerCreated_ = false;
  int64_t armedDeadline_ = 0;  // 0 = disarmed
  int64_t sliceEnd_ = 0;       // 0 = no slice in progress (the last call yielded)
  std::atomic<int> inRun_{0};
  std::atomic<int> eventPending_{0};
  std::atomic<int> ackGen_{0};
  std::atomic<bool> stop_{false};
  std::thread* watcher_ = nullptr;
  napi_env env_;
  uv_idle_t idle_{};
  uv_check_t check_{};
  std::vector<Napi::FunctionReference> resume_;  // several inline vCPUs on one thread take turns
  napi_async_context asyncContext_ = nullptr;
  napi_async_cleanup_hook_handle cleanupHandle_ = nullptr;
  int handlesOpen_ = 2;
};

}  // namespace nodevmm
