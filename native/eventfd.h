// EventFd: an eventfd(2) for KVM_IRQFD / KVM_IOEVENTFD, written and read from JS.
#pragma once

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

  int fd_ = -1;
};

}  // namespace nodevmm
