// KvmSystem: the /dev/kvm file descriptor and the system-level ioctls.
#pragma once

#include "common.h"

namespace nodevmm {

class KvmSystem : public Napi::ObjectWrap<KvmSystem> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit KvmSystem(const Napi::CallbackInfo& info);
  ~KvmSystem() override;

  int fd() const { return fd_; }

 private:
  Napi::Value Fd(const Napi::CallbackInfo& info);
  Napi::Value ApiVersion(const Napi::CallbackInfo& info);
  Napi::Value CheckExtension(const Napi::CallbackInfo& info);
  Napi::Value VcpuMmapSize(const Napi::CallbackInfo& info);
  Napi::Value SupportedCpuid(const Napi::CallbackInfo& info);
  Napi::Value MsrIndexList(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  int RequireOpen(Napi::Env env) const;

  int fd_ = -1;
};

}  // namespace nodevmm
