// EventFd: an eventfd(2) for KVM_IRQFD / KVM_IOEVENTFD, written and read from JS.
#pragma once

#include <uv.h>

#include "common.h"

namespace nodevmm {

class EventFd : public Napi::ObjectWrap<EventFd> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit EventFd(const Napi::CallbackInfo& info);
  ~EventFd() override;

 private:
  Napi::Value Fd(const Napi::CallbackInfo& info);
  Napi::Value Write(const Napi::CallbackInfo& info);
  Napi::Value Read(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value Watch(const Napi::CallbackInfo& info);
  Napi::Value Unwatch(const Napi::CallbackInfo& info);
  void StopWatching();
  static void OnReadable(uv_poll_t* handle, int status, int events);

  int fd_ = -1;
  // While watched: a uv_poll_t in the JS thread's loop (freed by its close callback), the callback, and a
  // strong reference to this object so it is not collected while the loop still points at it.
  uv_poll_t* poll_ = nullptr;
  napi_env env_ = nullptr;
  napi_async_context asyncContext_ = nullptr;
  Napi::FunctionReference callback_;
};

}  // namespace nodevmm
