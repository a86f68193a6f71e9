// KvmVcpu: a vCPU fd, its mmapped kvm_run page (shared with JS as an ArrayBuffer), raw register-file
// ioctls (the caller passes the struct bytes; TypeScript decodes them), and the run models:
//  - runSync(): KVM_RUN on the calling thread (for worker threads; blocks that thread).
//  - a native run thread per vCPU that loops KVM_RUN and hands every exit to a JS callback through a
//    ThreadSafeFunction, then waits for the callback's verdict (continue / park). The Node event loop stays
//    free while the guest runs or halts. See run_thread.h.
#pragma once

#include <memory>

#include "common.h"
#include "guest_ram.h"

struct kvm_run;

namespace nodevmm {

struct RunShared;

class KvmVcpu : public Napi::ObjectWrap<KvmVcpu> {
 public:
  static Napi::Function Init(Napi::Env env);
  static Napi::Object IoctlKinds(Napi::Env env);
  explicit KvmVcpu(const Napi::CallbackInfo& info);
  ~KvmVcpu() override;

  // Called on the JS thread by the run thread's callback when JS parks the vCPU.
  void OnParked(Napi::Env env);

 private:
  Napi::Value Fd(const Napi::CallbackInfo& info);
  Napi::Value Ioctl(const Napi::CallbackInfo& info);
  Napi::Value RunSync(const Napi::CallbackInfo& info);
  Napi::Value RunInline(const Napi::CallbackInfo& info);
  Napi::Value YieldThen(const Napi::CallbackInfo& info);
  Napi::Value StartThread(const Napi::CallbackInfo& info);
  Napi::Value Resume(const Napi::CallbackInfo& info);
  Napi::Value Kick(const Napi::CallbackInfo& info);
  Napi::Value SetSpin(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  void DoClose();
  void ApplyTuning();
  bool Busy() const;
  static void CleanupHook(void* arg);

  int fd_ = -1;
  kvm_run* run_ = nullptr;
  size_t runSize_ = 0;
  std::shared_ptr<RamMapping> runMapping_;
  RunShared* shared_ = nullptr;  // owned by the ThreadSafeFunction once the thread exists
  bool referenced_ = false;      // this wrapper is Ref()'d while the thread runs the guest
  bool hookAdded_ = false;
  napi_env env_ = nullptr;
  // Hand-off tuning; off by default: on the loaded 2-core hosts this project runs on, spinning lost to plain
  // futex + ThreadSafeFunction hand-offs in 4 of 5 bench/exit-roundtrip.ts runs.
  int64_t spinNs_ = 0;
  int64_t pollNs_ = 0;
  int64_t budgetNs_ = 2000000;
};

}  // namespace nodevmm
