// EventFd: an eventfd(2) for KVM_IRQFD / KVM_IOEVENTFD, written and read from JS.
#pragma once

#include "common.h"
#include "fd_watch.h"

namespace nodevmm {

class EventFd : public Napi::ObjectWrap<EventFd>, private FdWatch::Owner {
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
  void OnReadable(int status) override;
  void OnWatchTeardown() override;

  int fd_ = -1;
  // While watched: reads the counter when it becomes non-zero and calls the JS callback with it.
  FdWatch watch_{this};
};

}  // namespace nodevmm
