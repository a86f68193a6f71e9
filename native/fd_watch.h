// FdWatch: watches one fd from the JS thread's event loop (uv_poll) on behalf of a native object and calls that
// object's JS callback through napi_make_callback. Owns everything such a watch needs to be safe:
//   - the uv_poll_t lives on the heap and is freed by its own close callback, so it may outlive the owner;
//   - the handle is unref'd: a watch alone never keeps the process alive;
//   - while started, a strong reference to the owner's JS object (it cannot be collected while the loop points
//     at it) and to the callback, and an async context for async_hooks;
//   - stop() is allowed from inside the callback (and start() again after it): the context in use is destroyed
//     only once the call returns, and local handles keep the JS object and callback alive through the call;
//   - an async environment cleanup hook that lives as long as the handle: when the environment goes away with
//     the watch open (a worker terminated or returning), the handle is closed without calling into JS, the owner
//     is told (to close its fd), and teardown waits for the close callback — after teardown Node may unload the
//     addon, and with it the close callback's code.
#pragma once

#include <uv.h>

#include "common.h"

namespace nodevmm {

class FdWatch {
 public:
  // What the watching object implements. Both run on the JS thread.
  class Owner {
   public:
    // The fd is readable, or libuv reports an error (status < 0, -errno; libuv has then stopped the handle).
    // Runs inside a HandleScope; deliver results with FdWatch::Deliver. May stop the watch (or restart it).
    virtual void OnReadable(int status) = 0;
    // The environment is being torn down with the watch started; the watch has already let go. Close the fd
    // here if it should not outlive the environment. Must not call into JS.
    virtual void OnWatchTeardown() = 0;

   protected:
    ~Owner() = default;
  };

  explicit FdWatch(Owner* owner) : owner_(owner) {}
  ~FdWatch();
  FdWatch(const FdWatch&) = delete;
  FdWatch& operator=(const FdWatch&) = delete;

  // Starts watching `fd` for `events` (UV_READABLE...). `self` is the owner's JS object (held strongly while
  // started), `callback` what Deliver calls, `resourceName` the async_hooks resource name. Errors throw a
  // Napi::Error whose message starts with `what` (e.g. "PacketFd start"). Throws if already started.
  void Start(Napi::Env env, Napi::Object self, int fd, int events, Napi::Function callback, const char* resourceName,
             const char* what);
  // Stops watching and drops the references; idempotent; allowed from inside OnReadable / the JS callback.
  void Stop();
  bool IsActive() const { return handle_ != nullptr; }
  napi_env Env() const { return env_; }

  // Only from inside OnReadable: calls the callback the watch had when this readable event began, with `recv`
  // as `this`, through napi_make_callback (microtasks run afterwards; a throw is reported as uncaught, as for
  // any loop callback). Works even if the owner stopped the watch before or during the call.
  void Deliver(napi_value recv, size_t argc, const napi_value* argv);

 private:
  struct Handle;
  static void OnPoll(uv_poll_t* poll, int status, int events);
  static void OnEnvTeardown(napi_async_cleanup_hook_handle hook, void* arg);
  static void CloseHandle(Handle* h);
  // Drops the references and the async context (the one in use by a call is kept until the call is over).
  void Release();

  Owner* owner_;
  Handle* handle_ = nullptr;  // non-null while started
  napi_env env_ = nullptr;
  napi_async_context context_ = nullptr;
  Napi::ObjectReference self_;
  Napi::FunctionReference callback_;
  // While OnReadable runs: the callback and context of that event, and a context released meanwhile (destroyed
  // when the event is over).
  bool dispatching_ = false;
  napi_value dispatchCallback_ = nullptr;
  napi_async_context dispatchContext_ = nullptr;
  napi_async_context retiredContext_ = nullptr;
};

}  // namespace nodevmm
