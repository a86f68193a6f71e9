// PacketFd: a packet-oriented fd (a TAP: one Ethernet frame per read/write) driven from the JS thread's event
// loop. Reads happen when the fd is readable (uv_poll), never on the libuv threadpool, so an idle link holds no
// pool thread and close() takes effect at once. Writes are plain non-blocking write() calls on the JS thread.
#pragma once

#include <uv.h>

#include <cstdint>
#include <vector>

#include "common.h"

namespace nodevmm {

class PacketFd : public Napi::ObjectWrap<PacketFd> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit PacketFd(const Napi::CallbackInfo& info);
  ~PacketFd() override;

 private:
  Napi::Value Fd(const Napi::CallbackInfo& info);
  Napi::Value Oversized(const Napi::CallbackInfo& info);
  Napi::Value Start(const Napi::CallbackInfo& info);
  Napi::Value Send(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  // Stops the watcher (the handle is freed by its close callback) and drops the callback; idempotent. The caller
  // drops the reference start() took (not in the destructor, which runs when no reference is left).
  void StopPolling();
  static void OnReadable(uv_poll_t* handle, int status, int events);

  // The uv_poll_t and the environment cleanup hook that outlives it: while the handle is open or closing, the
  // hook holds the environment's teardown (a worker exiting) until the close callback has run — after teardown
  // Node may unload this addon, and with it the close callback's code.
  struct Watcher {
    uv_poll_t poll;
    PacketFd* owner;  // null once the owner let go (stopped, or the environment is going away)
    napi_async_cleanup_hook_handle hook = nullptr;
    bool closing = false;
  };
  static void CloseWatcher(Watcher* w);
  static void OnEnvTeardown(napi_async_cleanup_hook_handle hook, void* arg);

  int fd_ = -1;
  size_t maxFrame_ = 0;
  // Frames longer than maxFrame_ (read truncated, dropped).
  double oversized_ = 0;
  // One spare byte beyond maxFrame_ tells a truncated frame from one that fits exactly.
  std::vector<uint8_t> scratch_;
  // While started: a uv_poll_t in the JS thread's loop, the callback, and a strong reference to this object so
  // it is not collected while the loop still points at it.
  Watcher* poll_ = nullptr;
  napi_env env_ = nullptr;
  napi_async_context asyncContext_ = nullptr;
  Napi::FunctionReference callback_;
  // True while onFrames runs: a context released then (close() from the callback) is destroyed after the call.
  bool inCallback_ = false;
  napi_async_context retiredContext_ = nullptr;
};

}  // namespace nodevmm
