// KvmVm: a VM file descriptor, its memory slots, and the VM-level ioctls (irqchip, PIT and their state, IRQ lines, irqfd,
// ioeventfd, dirty log, clock, MSI routing). No machine layout here: the caller picks every address.
#pragma once

#include <map>
#include <memory>

#include "common.h"
#include "guest_ram.h"

namespace nodevmm {

class KvmVm : public Napi::ObjectWrap<KvmVm> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit KvmVm(const Napi::CallbackInfo& info);
  ~KvmVm() override;

  int fd() const { return fd_; }

 private:
  struct Slot {
    std::shared_ptr<RamMapping> mapping;  // keeps the host range mapped while KVM may access it
    uint64_t guestAddress;
    uint64_t size;
    uint32_t flags;
  };

  int RequireOpen(Napi::Env env) const;
  Napi::Value Fd(const Napi::CallbackInfo& info);
  Napi::Value CheckExtension(const Napi::CallbackInfo& info);
  Napi::Value EnableCap(const Napi::CallbackInfo& info);
  Napi::Value SetMemoryRegion(const Napi::CallbackInfo& info);
  Napi::Value SetTssAddr(const Napi::CallbackInfo& info);
  Napi::Value SetIdentityMapAddr(const Napi::CallbackInfo& info);
  Napi::Value CreateIrqchip(const Napi::CallbackInfo& info);
  Napi::Value CreatePit2(const Napi::CallbackInfo& info);
  Napi::Value GetIrqchip(const Napi::CallbackInfo& info);
  Napi::Value SetIrqchip(const Napi::CallbackInfo& info);
  Napi::Value GetPit2(const Napi::CallbackInfo& info);
  Napi::Value SetPit2(const Napi::CallbackInfo& info);
  Napi::Value IrqLine(const Napi::CallbackInfo& info);
  Napi::Value Irqfd(const Napi::CallbackInfo& info);
  Napi::Value Ioeventfd(const Napi::CallbackInfo& info);
  Napi::Value GetDirtyLog(const Napi::CallbackInfo& info);
  Napi::Value GetClock(const Napi::CallbackInfo& info);
  Napi::Value SetClock(const Napi::CallbackInfo& info);
  Napi::Value SignalMsi(const Napi::CallbackInfo& info);
  Napi::Value SetGsiRouting(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  void DoClose();

  int fd_ = -1;
  std::map<uint32_t, Slot> slots_;
};

}  // namespace nodevmm
