#include "vcpu.h"

#include "kvm_headers.h"
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>

#include "guest_ram.h"
#include "inline_run.h"
#include "kick_signal.h"
#include "run_thread.h"
#include "vm.h"

namespace nodevmm {

namespace {

// The vCPU ioctls JS may call, each with the struct size it needs; JS passes a kind index, never a raw
// request number, so it cannot make the kernel write past the end of its buffer.
enum class Sizing { kFixed, kMsrs, kCpuid, kNone };
struct IoctlKind {
  const char* name;
  unsigned long request;
  size_t size;
  Sizing sizing;
};

const IoctlKind kIoctls[] = {
    {"getRegs", KVM_GET_REGS, sizeof(kvm_regs), Sizing::kFixed},
    {"setRegs", KVM_SET_REGS, sizeof(kvm_regs), Sizing::kFixed},
    {"getSregs", KVM_GET_SREGS, sizeof(kvm_sregs), Sizing::kFixed},
    {"setSregs", KVM_SET_SREGS, sizeof(kvm_sregs), Sizing::kFixed},
    {"getFpu", KVM_GET_FPU, sizeof(kvm_fpu), Sizing::kFixed},
    {"setFpu", KVM_SET_FPU, sizeof(kvm_fpu), Sizing::kFixed},
    {"getLapic", KVM_GET_LAPIC, sizeof(kvm_lapic_state), Sizing::kFixed},
    {"setLapic", KVM_SET_LAPIC, sizeof(kvm_lapic_state), Sizing::kFixed},
    {"getVcpuEvents", KVM_GET_VCPU_EVENTS, sizeof(kvm_vcpu_events), Sizing::kFixed},
    {"setVcpuEvents", KVM_SET_VCPU_EVENTS, sizeof(kvm_vcpu_events), Sizing::kFixed},
    {"getMpState", KVM_GET_MP_STATE, sizeof(kvm_mp_state), Sizing::kFixed},
    {"setMpState", KVM_SET_MP_STATE, sizeof(kvm_mp_state), Sizing::kFixed},
    {"getXcrs", KVM_GET_XCRS, sizeof(kvm_xcrs), Sizing::kFixed},
    {"setXcrs", KVM_SET_XCRS, sizeof(kvm_xcrs), Sizing::kFixed},
    {"getDebugRegs", KVM_GET_DEBUGREGS, sizeof(kvm_debugregs), Sizing::kFixed},
    {"setDebugRegs", KVM_SET_DEBUGREGS, sizeof(kvm_debugregs), Sizing::kFixed},
    {"getXsave", KVM_GET_XSAVE, sizeof(kvm_xsave), Sizing::kFixed},
    {"setXsave", KVM_SET_XSAVE, sizeof(kvm_xsave), Sizing::kFixed},
    {"translate", KVM_TRANSLATE, sizeof(kvm_translation), Sizing::kFixed},
    {"setGuestDebug", KVM_SET_GUEST_DEBUG, sizeof(kvm_guest_debug), Sizing::kFixed},
    {"interrupt", KVM_INTERRUPT, sizeof(kvm_interrupt), Sizing::kFixed},
    {"getMsrs", KVM_GET_MSRS, sizeof(kvm_msrs), Sizing::kMsrs},
    {"setMsrs", KVM_SET_MSRS, sizeof(kvm_msrs), Sizing::kMsrs},
    {"getCpuid2", KVM_GET_CPUID2, sizeof(kvm_cpuid2), Sizing::kCpuid},
    {"setCpuid2", KVM_SET_CPUID2, sizeof(kvm_cpuid2), Sizing::kCpuid},
    {"nmi", KVM_NMI, 0, Sizing::kNone},
};
constexpr size_t kIoctlCount = sizeof(kIoctls) / sizeof(kIoctls[0]);

}  // namespace

Napi::Function KvmVcpu::Init(Napi::Env env) {
  KickSignal();  // install the handler before any run thread exists
  return DefineClass(env, "KvmVcpu",
                     {
                         InstanceAccessor<&KvmVcpu::Fd>("fd"),
                         InstanceMethod<&KvmVcpu::Ioctl>("ioctl"),
                         InstanceMethod<&KvmVcpu::RunSync>("runSync"),
                         InstanceMethod<&KvmVcpu::RunInline>("runInline"),
                         InstanceMethod<&KvmVcpu::YieldThen>("yieldThen"),
                         InstanceMethod<&KvmVcpu::StartThread>("startThread"),
                         InstanceMethod<&KvmVcpu::Resume>("resume"),
                         InstanceMethod<&KvmVcpu::Kick>("kick"),
                         InstanceMethod<&KvmVcpu::SetSpin>("setSpin"),
                         InstanceMethod<&KvmVcpu::Close>("close"),
                     });
}

// { getRegs: [index, structSize], ... } so TS can name ioctls and check its struct layouts.
Napi::Object KvmVcpu::IoctlKinds(Napi::Env env) {
  Napi::Object o = Napi::Object::New(env);
  for (size_t i = 0; i < kIoctlCount; i++) {
    Napi::Array pair = Napi::Array::New(env, 2);
    pair.Set(0u, Napi::Number::New(env, static_cast<double>(i)));
    pair.Set(1u, Napi::Number::New(env, static_cast<double>(kIoctls[i].size)));
    o.Set(kIoctls[i].name, pair);
  }
  return o;
}

// new KvmVcpu(vm, id, mmapSize). Sets this.run (ArrayBuffer over the kvm_run mapping).
KvmVcpu::KvmVcpu(const Napi::CallbackInfo& info) : Napi::ObjectWrap<KvmVcpu>(info) {
  Napi::Env env = info.Env();
  env_ = env;
  if (!info[0].IsObject() || !info[0].As<Napi::Object>().CheckTypeTag(&kVmTag)) {
    throw Napi::TypeError::New(env, "KvmVcpu: first argument must be a KvmVm");
  }
  KvmVm* vm = KvmVm::Unwrap(info[0].As<Napi::Object>());
  if (vm->fd() < 0) throw ErrnoError(env, EBADF, "ioctl(KVM_CREATE_VCPU)", "closed KvmVm");
  uint32_t id = ToU32(info[1], "vCPU id");
  uint64_t mmapSize = ToU64(info[2], "vCPU mmap size", 1ull << 30);
  if (mmapSize < sizeof(kvm_run)) throw Napi::RangeError::New(env, "KvmVcpu: mmap size smaller than kvm_run");
  int r = IoctlRetry(vm->fd(), KVM_CREATE_VCPU, static_cast<unsigned long>(id));
  if (r < 0) throw ErrnoError(env, -r, "ioctl(KVM_CREATE_VCPU)");
  fd_ = r;
  void* p = mmap(nullptr, mmapSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
  if (p == MAP_FAILED) {
    int e = errno;
    close(fd_);
    fd_ = -1;
    throw ErrnoError(env, e, "mmap", "kvm_run");
  }
  run_ = static_cast<kvm_run*>(p);
  runSize_ = mmapSize;
  // Same lifetime scheme as GuestRam: the ArrayBuffer owns the address range; close() swaps in zero pages so
  // the vCPU (and with it the VM) can be destroyed while JS still holds views.
  auto* hold = new std::shared_ptr<RamMapping>(std::make_shared<RamMapping>(p, mmapSize));
  runMapping_ = *hold;
  Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(
      env, p, mmapSize, [](Napi::Env, void*, std::shared_ptr<RamMapping>* h) { delete h; }, hold);
  info.This().As<Napi::Object>().DefineProperty(Napi::PropertyDescriptor::Value("run", ab, napi_enumerable));
}

KvmVcpu::~KvmVcpu() { DoClose(); }

Napi::Value KvmVcpu::Fd(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), fd_); }

// Register-file ioctls are refused while the run thread may be inside KVM_RUN (they would block on the
// vCPU mutex); they are fine while parked or while JS handles an exit.
bool KvmVcpu::Busy() const {
  return shared_ != nullptr && shared_->state == kRunning && !shared_->awaitingReply.load();
}

// ioctl(kind, buffer?) -> result (>= 0) or -errno. Never throws for kernel errors (hot enough to matter).
Napi::Value KvmVcpu::Ioctl(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t kind = info[0].As<Napi::Number>().Uint32Value();
  if (kind >= kIoctlCount) throw Napi::RangeError::New(env, "KvmVcpu.ioctl: unknown kind");
  const IoctlKind& k = kIoctls[kind];
  if (fd_ < 0) return Napi::Number::New(env, -EBADF);
  if (Busy()) return Napi::Number::New(env, -EBUSY);
  if (k.sizing == Sizing::kNone) return Napi::Number::New(env, IoctlRetry(fd_, k.request, 0ul));
  ByteSpan b = ToBytes(info[1], k.name);
  size_t need = k.size;
  if (b.length >= 4) {
    uint32_t n;
    memcpy(&n, b.data, 4);
    if (k.sizing == Sizing::kMsrs) need += static_cast<size_t>(n) * sizeof(kvm_msr_entry);
    if (k.sizing == Sizing::kCpuid) need += static_cast<size_t>(n) * sizeof(kvm_cpuid_entry2);
  }
  if (b.length < need) {
    throw Napi::RangeError::New(env, std::string(k.name) + ": buffer needs " + std::to_string(need) + " bytes");
  }
  return Napi::Number::New(env, IoctlRetry(fd_, k.request, b.data));
}

// runSync() -> 0 or -errno (EINTR when kicked). Blocks the calling thread for as long as the guest runs.
Napi::Value KvmVcpu::RunSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (fd_ < 0) return Napi::Number::New(env, -EBADF);
  if (shared_ != nullptr && shared_->state != kParked) return Napi::Number::New(env, -EBUSY);
  int r = ioctl(fd_, KVM_RUN, 0);
  if (r < 0) {
    int e = errno;
    if (e == EINTR) run_->immediate_exit = 0;
    return Napi::Number::New(env, -e);
  }
  return Napi::Number::New(env, 0);
}

// runInline(sliceNs) -> 0 (an exit is in kvm_run), 1 (yield: let the event loop take a turn, then call again)
// or -errno (-EINTR: kicked out for the event loop or by kick()). See inline_run.h.
Napi::Value KvmVcpu::RunInline(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (fd_ < 0) return Napi::Number::New(env, -EBADF);
  if (shared_ != nullptr && shared_->state != kParked) return Napi::Number::New(env, -EBUSY);
  // A negative slice ends the inline run (disarms its timer).
  int64_t slice = info[0].IsNumber() ? info[0].As<Napi::Number>().Int64Value() : 2000000;
  if (slice < 0) {
    InlineRunner::ForEnv(env)->End();
    return Napi::Number::New(env, 0);
  }
  return Napi::Number::New(env, InlineRunner::ForEnv(env)->Run(fd_, run_, slice));
}

// yieldThen(resume): resume() runs after one non-blocking event-loop turn (see InlineRunner::YieldThen).
Napi::Value KvmVcpu::YieldThen(const Napi::CallbackInfo& info) {
  if (!info[0].IsFunction()) throw Napi::TypeError::New(info.Env(), "yieldThen: resume must be a function");
  InlineRunner::ForEnv(info.Env())->YieldThen(info.Env(), info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

// startThread(onExit): creates the run thread (parked). onExit(errno) is called on the JS thread after every
// KVM_RUN and returns 0 to re-enter the guest or 1 to park.
Napi::Value KvmVcpu::StartThread(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (fd_ < 0) throw ErrnoError(env, EBADF, "startThread", "closed KvmVcpu");
  if (shared_ != nullptr) throw Napi::Error::New(env, "KvmVcpu.startThread: the run thread already exists");
  if (!info[0].IsFunction()) throw Napi::TypeError::New(env, "KvmVcpu.startThread: onExit must be a function");
  auto* shared = new RunShared();
  shared->fd = fd_;
  shared->run = run_;
  shared->owner = this;
  shared->tsfn = RunTsfn::New(env, info[0].As<Napi::Function>(), "nodevmm.vcpu", 0, 1, nullptr,
                              [](Napi::Env, RunShared* s, void*) { delete s; }, shared);
  shared->tsfn.Unref(env);  // a parked vCPU does not keep the process alive
  shared->thread = std::thread([shared] { shared->ThreadMain(); });
  shared->tid = shared->thread.native_handle();
  shared_ = shared;
  ApplyTuning();
  if (!hookAdded_) {
    napi_add_env_cleanup_hook(env, CleanupHook, this);
    hookAdded_ = true;
  }
  return env.Undefined();
}

// resume(): let the run thread enter the guest. A running vCPU keeps the process alive and this object
// referenced (it cannot be collected while it runs).
Napi::Value KvmVcpu::Resume(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (shared_ == nullptr) throw Napi::Error::New(env, "KvmVcpu.resume: call startThread first");
  {
    std::lock_guard<std::mutex> lock(shared_->mu);
    if (shared_->state != kParked) {
      // Resumed from inside the exit callback, before it answered "park": turn the park into continue.
      if (shared_->awaitingReply.load()) shared_->resumeRequested = true;
      return env.Undefined();
    }
    shared_->state = kRunning;
  }
  shared_->cv.notify_one();
  shared_->tsfn.Ref(env);
  if (!referenced_) {
    Ref();
    referenced_ = true;
  }
  return env.Undefined();
}

void KvmVcpu::OnParked(Napi::Env env) {
  shared_->tsfn.Unref(env);
  if (referenced_) {
    referenced_ = false;
    Unref();
  }
}

// kick() -> true if the vCPU was running (it will exit with EINTR / KVM_EXIT_INTR), false if parked.
Napi::Value KvmVcpu::Kick(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (shared_ == nullptr || shared_->state != kRunning) return Napi::Boolean::New(env, false);
  shared_->Kick();
  return Napi::Boolean::New(env, true);
}

// setSpin(spinNs, pollNs, budgetNs): how long the run thread busy-waits for the JS verdict before sleeping,
// how long the JS thread waits for the next exit before returning to the event loop, and the longest stretch of
// back-to-back exit handling per event-loop turn (0 disables spinning / polling).
Napi::Value KvmVcpu::SetSpin(const Napi::CallbackInfo& info) {
  spinNs_ = static_cast<int64_t>(ToU64(info[0], "spin nanoseconds", 1000000000ull));
  if (!info[1].IsUndefined()) pollNs_ = static_cast<int64_t>(ToU64(info[1], "poll nanoseconds", 1000000000ull));
  if (!info[2].IsUndefined()) budgetNs_ = static_cast<int64_t>(ToU64(info[2], "budget nanoseconds", 1000000000ull));
  ApplyTuning();
  return info.Env().Undefined();
}

void KvmVcpu::ApplyTuning() {
  if (shared_ == nullptr) return;
  shared_->spinNs.store(spinNs_);
  shared_->pollNs = pollNs_;
  shared_->budgetNs = budgetNs_;
}

void KvmVcpu::DoClose() {
  if (shared_ != nullptr) {
    RunShared* s = shared_;
    shared_ = nullptr;
    s->closing.store(true);
    {
      std::lock_guard<std::mutex> lock(s->mu);
      s->state = kClosing;
    }
    s->cv.notify_one();
    s->Answer(kAbort);
    s->Kick();
    s->thread.join();
    s->aborted = true;
    s->owner = nullptr;
    s->tsfn.Release();  // the TSFN finalizer deletes `s` once queued callbacks have drained
  }
  if (referenced_) {
    referenced_ = false;
    Unref();
  }
  if (hookAdded_) {
    napi_remove_env_cleanup_hook(env_, CleanupHook, this);
    hookAdded_ = false;
  }
  if (run_ != nullptr) {
    runMapping_->Discard();  // drops the mapping's reference to the vCPU file
    runMapping_.reset();
    run_ = nullptr;
  }
  if (fd_ >= 0) {
    close(fd_);
    fd_ = -1;
  }
}

void KvmVcpu::CleanupHook(void* arg) {
  auto* self = static_cast<KvmVcpu*>(arg);
  self->hookAdded_ = false;  // already being removed by Node
  self->DoClose();
}

Napi::Value KvmVcpu::Close(const Napi::CallbackInfo& info) {
  DoClose();
  return info.Env().Undefined();
}

}  // namespace nodevmm
