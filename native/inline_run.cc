#include "inline_run.h"

#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <thread>

#include "kick_signal.h"
#include "kvm_headers.h"

namespace nodevmm {

static __thread kvm_run* t_run __attribute__((tls_model("initial-exec"))) = nullptr;

void SetThreadRun(kvm_run* run) { t_run = run; }

void MarkImmediateExitForSignal() {
  kvm_run* r = t_run;
  if (r != nullptr) __atomic_store_n(&r->immediate_exit, 1, __ATOMIC_SEQ_CST);
}

static int64_t MonoNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

static thread_local InlineRunner* t_runner = nullptr;

InlineRunner* InlineRunner::ForEnv(Napi::Env env) {
  // One runner per JS thread (= env); torn down by an async env cleanup hook, because its libuv handles must
  // be closed (uv_close) while the loop still runs, or a worker's uv_loop_close() would find them.
  if (t_runner == nullptr) {
    uv_loop_s* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
      throw Napi::Error::New(env, "inline run: no libuv event loop");
    }
    auto* runner = new InlineRunner(env, loop);
    napi_add_async_cleanup_hook(env, Cleanup, runner, &runner->cleanupHandle_);
    t_runner = runner;
  }
  return t_runner;
}

void InlineRunner::Cleanup(napi_async_cleanup_hook_handle, void* arg) {
  auto* self = static_cast<InlineRunner*>(arg);
  if (t_runner == self) t_runner = nullptr;
  self->StopWatcher();
  self->resume_.clear();
  uv_close(reinterpret_cast<uv_handle_t*>(&self->idle_), OnClosed);
  uv_close(reinterpret_cast<uv_handle_t*>(&self->check_), OnClosed);
}

void InlineRunner::OnClosed(uv_handle_t* handle) {
  auto* self = static_cast<InlineRunner*>(handle->data);
  if (--self->handlesOpen_ > 0) return;
  napi_async_cleanup_hook_handle h = self->cleanupHandle_;
  delete self;
  napi_remove_async_cleanup_hook(h);
}

InlineRunner::InlineRunner(Napi::Env env, uv_loop_s* loop) : loop_(loop), jsThread_(pthread_self()), env_(env) {
  KickSignal();
  uv_idle_init(loop_, &idle_);
  uv_check_init(loop_, &check_);
  idle_.data = this;
  check_.data = this;
  napi_value name;
  napi_create_string_utf8(env, "nodevmm.runInline", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, nullptr, name, &asyncContext_);
  epollFd_ = epoll_create1(EPOLL_CLOEXEC);
  controlFd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = uv_backend_fd(loop_);
  epoll_ctl(epollFd_, EPOLL_CTL_ADD, ev.data.fd, &ev);
  ev.data.fd = controlFd_;
  epoll_ctl(epollFd_, EPOLL_CTL_ADD, controlFd_, &ev);
  sigevent sev{};
  sev.sigev_notify = SIGEV_THREAD_ID;
  sev.sigev_signo = KickSignal();
  sev._sigev_un._tid = static_cast<pid_t>(syscall(SYS_gettid));
  timerCreated_ = timer_create(CLOCK_MONOTONIC, &sev, &timer_) == 0;
  watcher_ = new std::thread([this] { WatcherMain(); });
}

void InlineRunner::StopWatcher() {
  if (watcher_ == nullptr) return;
  stop_.store(true);
  uint64_t one = 1;
  if (write(controlFd_, &one, sizeof one) < 0) { /* the watcher also checks stop_ after every wake */ }
  ackGen_.fetch_add(1);
  syscall(SYS_futex, reinterpret_cast<int*>(&ackGen_), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
  watcher_->join();
  delete watcher_;
  watcher_ = nullptr;
}

InlineRunner::~InlineRunner() {
  StopWatcher();
  if (timerCreated_) timer_delete(timer_);
  if (asyncContext_ != nullptr) napi_async_destroy(env_, asyncContext_);
  close(epollFd_);
  close(controlFd_);
}

// Sleeps until the JS thread's event loop has I/O ready; if the JS thread is in KVM_RUN, kicks it. Then waits
// for the JS thread to take its event-loop turn (ackGen_) before watching again (the fd stays readable until
// libuv consumes the events, and must not be reported twice).
void InlineRunner::WatcherMain() {
  sigset_t mask;
  sigfillset(&mask);
  pthread_sigmask(SIG_SETMASK, &mask, nullptr);
  epoll_event events[2];
  while (!stop_.load()) {
    int n = epoll_wait(epollFd_, events, 2, -1);
    if (stop_.load()) return;
    if (n <= 0) continue;
    const int seen = ackGen_.load();
    eventPending_.store(1);
    if (inRun_.load()) pthread_kill(jsThread_, KickSignal());
    while (ackGen_.load() == seen && !stop_.load()) {
      syscall(SYS_futex, reinterpret_cast<int*>(&ackGen_), FUTEX_WAIT_PRIVATE, seen, nullptr, nullptr, 0);
    }
  }
}

void InlineRunner::ArmTimer(int64_t deadlineNs) {
  if (!timerCreated_ || deadlineNs == armedDeadline_) return;
  itimerspec its{};
  its.it_value.tv_sec = deadlineNs / 1000000000;
  its.it_value.tv_nsec = deadlineNs % 1000000000;
  timer_settime(timer_, TIMER_ABSTIME, &its, nullptr);
  armedDeadline_ = deadlineNs;
}

void InlineRunner::DisarmTimer() {
  if (!timerCreated_ || armedDeadline_ == 0) return;
  itimerspec its{};
  timer_settime(timer_, 0, &its, nullptr);
  armedDeadline_ = 0;
}

int InlineRunner::Run(int vcpuFd, kvm_run* run, int64_t sliceNs) {
  const int64_t now = MonoNs();
  if (sliceEnd_ == 0) {
    // Back from an event-loop turn: let the watcher report new I/O again.
    if (eventPending_.exchange(0)) {
      ackGen_.fetch_add(1);
      syscall(SYS_futex, reinterpret_cast<int*>(&ackGen_), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
    }
    sliceEnd_ = now + sliceNs;
  }
  // With no active handles uv_backend_timeout() is 0 ("nothing to wait for"): then only the slice bounds us.
  int timeoutMs = uv_loop_alive(loop_) ? uv_backend_timeout(loop_) : -1;
  // Our own idle handle (another inline vCPU on this thread has already yielded) also reads as "work
  // pending": the turn is scheduled anyway, so only the slice bounds this run.
  if (timeoutMs == 0 && uv_is_active(reinterpret_cast<uv_handle_t*>(&idle_))) timeoutMs = -1;
  int64_t deadline = sliceEnd_;
  if (timeoutMs >= 0) deadline = std::min(deadline, now + static_cast<int64_t>(timeoutMs) * 1000000);
  if (timeoutMs == 0 || now >= deadline || eventPending_.load()) {
    DisarmTimer();
    sliceEnd_ = 0;
    return kYield;
  }
  // Re-arm only when the deadline moves earlier by more than 100 µs: a timer_settime per exit would cost more
  // than the jitter it removes.
  if (armedDeadline_ == 0 || deadline < armedDeadline_ - 100000) ArmTimer(deadline);

  SetThreadRun(run);
  inRun_.store(1);
  if (eventPending_.load()) {  // the watcher may have looked just before inRun_ was set
    inRun_.store(0);
    SetThreadRun(nullptr);
    DisarmTimer();
    sliceEnd_ = 0;
    return kYield;
  }
  int r = ioctl(vcpuFd, KVM_RUN, 0);
  int err = r < 0 ? errno : 0;
  inRun_.store(0);
  SetThreadRun(nullptr);
  // A kick that lands after KVM_RUN returned (but before t_run was cleared) would leave immediate_exit set and
  // make the next, unrelated KVM_RUN return at once: this run is over, so any such kick is moot.
  __atomic_store_n(&run->immediate_exit, 0, __ATOMIC_SEQ_CST);
  if (err == EINTR) {
    DisarmTimer();
    sliceEnd_ = 0;
    return -EINTR;
  }
  return err ? -err : kExit;
}

void InlineRunner::End() {
  DisarmTimer();
  sliceEnd_ = 0;
}

void InlineRunner::YieldThen(Napi::Env env, Napi::Function resume) {
  resume_.push_back(Napi::Persistent(resume));
  uv_idle_start(&idle_, [](uv_idle_t*) {});  // an active idle handle makes the poll phase non-blocking
  uv_check_start(&check_, OnCheck);
}

void InlineRunner::OnCheck(uv_check_t* handle) {
  auto* self = static_cast<InlineRunner*>(handle->data);
  uv_idle_stop(&self->idle_);
  uv_check_stop(&self->check_);
  if (self->resume_.empty()) return;
  std::vector<Napi::FunctionReference> ready;
  ready.swap(self->resume_);
  Napi::Env env(self->env_);
  napi_value recv;
  for (auto& ref : ready) {
    Napi::HandleScope scope(env);
    napi_get_global(env, &recv);  // MakeCallback needs an object receiver
    napi_value result;
    // MakeCallback: runs microtasks afterwards and reports exceptions as uncaught, like any other loop callback.
    napi_make_callback(env, self->asyncContext_, recv, ref.Value(), 0, nullptr, &result);
  }
}

}  // namespace nodevmm
