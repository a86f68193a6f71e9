#include "vm.h"

#include "kvm_headers.h"
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstring>

#include "system.h"

namespace nodevmm {

Napi::Function KvmVm::Init(Napi::Env env) {
  return DefineClass(env, "KvmVm",
                     {
                         InstanceAccessor<&KvmVm::Fd>("fd"),
                         InstanceMethod<&KvmVm::CheckExtension>("checkExtension"),
                         InstanceMethod<&KvmVm::EnableCap>("enableCap"),
                         InstanceMethod<&KvmVm::SetMemoryRegion>("setMemoryRegion"),
                         InstanceMethod<&KvmVm::SetTssAddr>("setTssAddr"),
                         InstanceMethod<&KvmVm::SetIdentityMapAddr>("setIdentityMapAddr"),
                         InstanceMethod<&KvmVm::CreateIrqchip>("createIrqchip"),
                         InstanceMethod<&KvmVm::CreatePit2>("createPit2"),
                         InstanceMethod<&KvmVm::GetIrqchip>("getIrqchip"),
                         InstanceMethod<&KvmVm::SetIrqchip>("setIrqchip"),
                         InstanceMethod<&KvmVm::GetPit2>("getPit2"),
                         InstanceMethod<&KvmVm::SetPit2>("setPit2"),
                         InstanceMethod<&KvmVm::IrqLine>("irqLine"),
                         InstanceMethod<&KvmVm::Irqfd>("irqfd"),
                         InstanceMethod<&KvmVm::Ioeventfd>("ioeventfd"),
                         InstanceMethod<&KvmVm::GetDirtyLog>("getDirtyLog"),
                         InstanceMethod<&KvmVm::GetClock>("getClock"),
                         InstanceMethod<&KvmVm::SetClock>("setClock"),
                         InstanceMethod<&KvmVm::SignalMsi>("signalMsi"),
                         InstanceMethod<&KvmVm::SetGsiRouting>("setGsiRouting"),
                         InstanceMethod<&KvmVm::Close>("close"),
                     });
}

// new KvmVm(system, type)
KvmVm::KvmVm(const Napi::CallbackInfo& info) : Napi::ObjectWrap<KvmVm>(info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject() || !info[0].As<Napi::Object>().CheckTypeTag(&kSystemTag)) {
    throw Napi::TypeError::New(env, "KvmVm: first argument must be a KvmSystem");
  }
  KvmSystem* sys = KvmSystem::Unwrap(info[0].As<Napi::Object>());
  if (sys->fd() < 0) throw ErrnoError(env, EBADF, "ioctl(KVM_CREATE_VM)", "closed KvmSystem");
  uint32_t type = info[1].IsUndefined() ? 0 : ToU32(info[1], "VM type");
  int r = IoctlRetry(sys->fd(), KVM_CREATE_VM, static_cast<unsigned long>(type));
  if (r < 0) throw ErrnoError(env, -r, "ioctl(KVM_CREATE_VM)");
  fd_ = r;
  info.This().As<Napi::Object>().TypeTag(&kVmTag);
}

KvmVm::~KvmVm() { DoClose(); }

void KvmVm::DoClose() {
  if (fd_ >= 0) {
    close(fd_);
    fd_ = -1;
  }
  // Once the fd is closed no new KVM access can start; the kernel drops its memslots when the VM dies.
  slots_.clear();
}

int KvmVm::RequireOpen(Napi::Env env) const {
  if (fd_ < 0) throw ErrnoError(env, EBADF, "ioctl", "closed KvmVm");
  return fd_;
}

Napi::Value KvmVm::Fd(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), fd_); }

Napi::Value KvmVm::CheckExtension(const Napi::CallbackInfo& info) {
  uint32_t cap = ToU32(info[0], "capability");
  int r = IoctlRetry(RequireOpen(info.Env()), KVM_CHECK_EXTENSION, static_cast<unsigned long>(cap));
  if (r < 0) throw ErrnoError(info.Env(), -r, "ioctl(KVM_CHECK_EXTENSION)");
  return Napi::Number::New(info.Env(), r);
}

// enableCap(cap, arg0..arg3): KVM_ENABLE_CAP on the VM (e.g. KVM_CAP_X86_DISABLE_EXITS).
Napi::Value KvmVm::EnableCap(const Napi::CallbackInfo& info) {
  kvm_enable_cap c{};
  c.cap = ToU32(info[0], "capability");
  for (int i = 0; i < 4; i++) {
    if (!info[1 + i].IsUndefined()) c.args[i] = ToU64(info[1 + i], "enableCap argument", UINT64_MAX);
  }
  int r = IoctlRetry(RequireOpen(info.Env()), KVM_ENABLE_CAP, &c);
  if (r < 0) throw ErrnoError(info.Env(), -r, "ioctl(KVM_ENABLE_CAP)");
  return info.Env().Undefined();
}

// setMemoryRegion(slot, flags, guestAddress, ram | null, ramOffset, size). size 0 deletes the slot.
Napi::Value KvmVm::SetMemoryRegion(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = RequireOpen(env);
  uint32_t slot = ToU32(info[0], "slot");
  uint32_t flags = ToU32(info[1], "flags");
  uint64_t gpa = ToU64(info[2], "guestAddress", UINT64_MAX);
  uint64_t offset = ToU64(info[4], "ramOffset");
  uint64_t size = ToU64(info[5], "size");
  const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  if (gpa % page || offset % page || size % page) {
    throw Napi::RangeError::New(env, "setMemoryRegion: guestAddress, ramOffset and size must be page aligned");
  }
  kvm_userspace_memory_region region{};
  region.slot = slot;
  region.flags = flags;
  region.guest_phys_addr = gpa;
  region.memory_size = size;
  std::shared_ptr<RamMapping> mapping;
  if (size != 0) {
    if (!info[3].IsObject() || !info[3].As<Napi::Object>().CheckTypeTag(&kGuestRamTag)) {
      throw Napi::TypeError::New(env, "setMemoryRegion: ram must be a GuestRam");
    }
    mapping = GuestRam::Unwrap(info[3].As<Napi::Object>())->Mapping(env);
    if (offset > mapping->size || size > mapping->size - offset) {
      throw Napi::RangeError::New(env, "setMemoryRegion: ramOffset + size exceeds the GuestRam size");
    }
    region.userspace_addr = reinterpret_cast<uint64_t>(static_cast<uint8_t*>(mapping->addr) + offset);
  }
  int r = IoctlRetry(fd, KVM_SET_USER_MEMORY_REGION, &region);
  if (r < 0) throw ErrnoError(env, -r, "ioctl(KVM_SET_USER_MEMORY_REGION)");
  if (size == 0) {
    slots_.erase(slot);
  } else {
    slots_[slot] = Slot{mapping, gpa, size, flags};
  }
  return env.Undefined();
}

Napi::Value KvmVm::SetTssAddr(const Napi::CallbackInfo& info) {
  uint32_t addr = ToU32(info[0], "TSS address");
  int r = IoctlRetry(RequireOpen(info.Env()), KVM_SET_TSS_ADDR, static_cast<unsigned long>(addr));
  if (r < 0) throw ErrnoError(info.Env(), -r, "ioctl(KVM_SET_TSS_ADDR)");
  return info.Env().Undefined();
}

Napi::Value KvmVm::SetIdentityMapAddr(const Napi::CallbackInfo& info) {
  uint64_t addr = ToU64(info[0], "identity map address", UINT64_MAX);
  int r = IoctlRetry(RequireOpen(info.Env()), KVM_SET_IDENTITY_MAP_ADDR, &addr);
  if (r < 0) throw ErrnoError(info.Env(), -r, "ioctl(KVM_SET_IDENTITY_MAP_ADDR)");
  return info.Env().Undefined();
}

Napi::Value KvmVm::CreateIrqchip(const Napi::CallbackInfo& info) {
  int r = IoctlRetry(RequireOpen(info.Env()), KVM_CREATE_IRQCHIP, 0ul);
  if (r < 0) throw ErrnoError(info.Env(), -r, "ioctl(KVM_CREATE_IRQCHIP)");
  return info.Env().Undefined();
}

Napi::Value KvmVm::CreatePit2(const Napi::CallbackInfo& info) {
  kvm_pit_config cfg{};
  cfg.flags = info[0].IsUndefined() ? 0 : ToU32(info[0], "PIT flags");
  int r = IoctlRetry(RequireOpen(info.Env()), KVM_CREATE_PIT2, &cfg);
  if (r < 0) throw ErrnoError(info.Env(), -r, "ioctl(KVM_CREATE_PIT2)");
  return info.Env().Undefined();
}

// The chip union of struct kvm_irqchip (PIC or IOAPIC state); chip ids 0/1 = PIC master/slave, 2 = IOAPIC.
static constexpr size_t kIrqchipStateSize = sizeof(kvm_irqchip::chip);
static_assert(kIrqchipStateSize == 512, "kvm_irqchip chip union (lib/kvm/vm.ts IRQCHIP_STATE_SIZE)");
static_assert(sizeof(kvm_pit_state2) == 112, "kvm_pit_state2 (lib/kvm/vm.ts PIT_STATE2_SIZE)");

static ByteSpan SizedBytes(const Napi::Value& v, const char* what, size_t need) {
  ByteSpan b = ToBytes(v, what);
  if (b.length < need) {
    throw Napi::RangeError::New(v.Env(), std::string(what) + ": needs " + std::to_string(need) + " bytes, got " + std::to_string(b.length));
  }
  return b;
}

// getIrqchip(chipId, out): KVM_GET_IRQCHIP, copying the chip's state (512 bytes) into `out`.
Napi::Value KvmVm::GetIrqchip(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  kvm_irqchip chip{};
  chip.chip_id = ToU32(info[0], "irqchip id");
  ByteSpan out = SizedBytes(info[1], "irqchip state buffer", kIrqchipStateSize);
  int r = IoctlRetry(RequireOpen(env), KVM_GET_IRQCHIP, &chip);
  if (r < 0) throw ErrnoError(env, -r, "ioctl(KVM_GET_IRQCHIP)");
  memcpy(out.data, &chip.chip, kIrqchipStateSize);
  return env.Undefined();
}

// setIrqchip(chipId, state): KVM_SET_IRQCHIP with the chip's state (512 bytes, as getIrqchip returns it).
Napi::Value KvmVm::SetIrqchip(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  kvm_irqchip chip{};
  chip.chip_id = ToU32(info[0], "irqchip id");
  ByteSpan in = SizedBytes(info[1], "irqchip state", kIrqchipStateSize);
  memcpy(&chip.chip, in.data, kIrqchipStateSize);
  int r = IoctlRetry(RequireOpen(env), KVM_SET_IRQCHIP, &chip);
  if (r < 0) throw ErrnoError(env, -r, "ioctl(KVM_SET_IRQCHIP)");
  return env.Undefined();
}

// getPit2(out): KVM_GET_PIT2, struct kvm_pit_state2 (112 bytes) into `out`.
Napi::Value KvmVm::GetPit2(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ByteSpan out = SizedBytes(info[0], "PIT state buffer", sizeof(kvm_pit_state2));
  kvm_pit_state2 st{};
  int r = IoctlRetry(RequireOpen(env), KVM_GET_PIT2, &st);
  if (r < 0) throw ErrnoError(env, -r, "ioctl(KVM_GET_PIT2)");
  memcpy(out.data, &st, sizeof st);
  return env.Undefined();
}

// setPit2(state): KVM_SET_PIT2 (reloads each channel's count; a channel in no valid mode stops its timer).
Napi::Value KvmVm::SetPit2(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ByteSpan in = SizedBytes(info[0], "PIT state", sizeof(kvm_pit_state2));
  kvm_pit_state2 st{};
  memcpy(&st, in.data, sizeof st);
  int r = IoctlRetry(RequireOpen(env), KVM_SET_PIT2, &st);
  if (r < 0) throw ErrnoError(env, -r, "ioctl(KVM_SET_PIT2)");
  return env.Undefined();
}

// irqLine(irq, level) -> 0 or -errno. Hot path: no exceptions.
Napi::Value KvmVm::IrqLine(const Napi::CallbackInfo& info) {
  if (fd_ < 0) return Napi::Number::New(info.Env(), -EBADF);
  kvm_irq_level l{};
  l.irq = info[0].As<Napi::Number>().Uint32Value();
  l.level = info[1].ToBoolean() ? 1 : 0;
  int r = IoctlRetry(fd_, KVM_IRQ_LINE, &l);
  return Napi::Number::New(info.Env(), r < 0 ? r : 0);
}

// irqfd(eventFd, gsi, flags, resampleFd)
Napi::Value KvmVm::Irqfd(const Napi::CallbackInfo& info) {
  kvm_irqfd f{};
  f.fd = ToU32(info[0], "eventfd");
  f.gsi = ToU32(info[1], "gsi");
  f.flags = info[2].IsUndefined() ? 0 : ToU32(info[2], "irqfd flags");
  f.resamplefd = info[3].IsUndefined() ? 0 : ToU32(info[3], "resample eventfd");
  int r = IoctlRetry(RequireOpen(info.Env()), KVM_IRQFD, &f);
  if (r < 0) throw ErrnoError(info.Env(), -r, "ioctl(KVM_IRQFD)");
  return info.Env().Undefined();
}

// ioeventfd(address, length, eventFd, flags, datamatch)
Napi::Value KvmVm::Ioeventfd(const Napi::CallbackInfo& info) {
  kvm_ioeventfd e{};
  e.addr = ToU64(info[0], "ioeventfd address", UINT64_MAX);
  e.len = ToU32(info[1], "ioeventfd length");
  e.fd = static_cast<int32_t>(ToU32(info[2], "eventfd"));
  e.flags = info[3].IsUndefined() ? 0 : ToU32(info[3], "ioeventfd flags");
  e.datamatch = info[4].IsUndefined() ? 0 : ToU64(info[4], "datamatch", UINT64_MAX);
  int r = IoctlRetry(RequireOpen(info.Env()), KVM_IOEVENTFD, &e);
  if (r < 0) throw ErrnoError(info.Env(), -r, "ioctl(KVM_IOEVENTFD)");
  return info.Env().Undefined();
}

// getDirtyLog(slot, bitmap): bitmap must hold one bit per page of the slot, rounded up to 64 bits.
Napi::Value KvmVm::GetDirtyLog(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = RequireOpen(env);
  uint32_t slot = ToU32(info[0], "slot");
  ByteSpan bitmap = ToBytes(info[1], "dirty bitmap");
  auto it = slots_.find(slot);
  if (it == slots_.end()) throw Napi::RangeError::New(env, "getDirtyLog: slot " + std::to_string(slot) + " is not set");
  const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  uint64_t pages = it->second.size / page;
  uint64_t need = (pages + 63) / 64 * 8;
  if (bitmap.length < need) {
    throw Napi::RangeError::New(env, "getDirtyLog: bitmap needs " + std::to_string(need) + " bytes");
  }
  kvm_dirty_log log{};
  log.slot = slot;
  log.dirty_bitmap = bitmap.data;
  int r = IoctlRetry(fd, KVM_GET_DIRTY_LOG, &log);
  if (r < 0) throw ErrnoError(env, -r, "ioctl(KVM_GET_DIRTY_LOG)");
  return env.Undefined();
}

Napi::Value KvmVm::GetClock(const Napi::CallbackInfo& info) {
  ByteSpan b = ToBytes(info[0], "clock buffer");
  if (b.length < sizeof(kvm_clock_data)) throw Napi::RangeError::New(info.Env(), "getClock: buffer too small");
  kvm_clock_data c{};
  int r = IoctlRetry(RequireOpen(info.Env()), KVM_GET_CLOCK, &c);
  if (r < 0) throw ErrnoError(info.Env(), -r, "ioctl(KVM_GET_CLOCK)");
  memcpy(b.data, &c, sizeof c);
  return info.Env().Undefined();
}

Napi::Value KvmVm::SetClock(const Napi::CallbackInfo& info) {
  ByteSpan b = ToBytes(info[0], "clock buffer");
  if (b.length < sizeof(kvm_clock_data)) throw Napi::RangeError::New(info.Env(), "setClock: buffer too small");
  kvm_clock_data c{};
  memcpy(&c, b.data, sizeof c);
  int r = IoctlRetry(RequireOpen(info.Env()), KVM_SET_CLOCK, &c);
  if (r < 0) throw ErrnoError(info.Env(), -r, "ioctl(KVM_SET_CLOCK)");
  return info.Env().Undefined();
}

// signalMsi(addressLo, addressHi, data) -> >0 delivered, 0 blocked by the guest, -errno on failure.
Napi::Value KvmVm::SignalMsi(const Napi::CallbackInfo& info) {
  if (fd_ < 0) return Napi::Number::New(info.Env(), -EBADF);
  kvm_msi m{};
  m.address_lo = info[0].As<Napi::Number>().Uint32Value();
  m.address_hi = info[1].As<Napi::Number>().Uint32Value();
  m.data = info[2].As<Napi::Number>().Uint32Value();
  int r = IoctlRetry(fd_, KVM_SIGNAL_MSI, &m);
  return Napi::Number::New(info.Env(), r);
}

// setGsiRouting(raw struct kvm_irq_routing): 8-byte header (nr, flags) + nr * 32-byte entries.
Napi::Value KvmVm::SetGsiRouting(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ByteSpan b = ToBytes(info[0], "routing table");
  if (b.length < sizeof(kvm_irq_routing)) throw Napi::RangeError::New(env, "setGsiRouting: buffer too small");
  uint32_t nr;
  memcpy(&nr, b.data, sizeof nr);
  if (b.length < sizeof(kvm_irq_routing) + static_cast<uint64_t>(nr) * sizeof(kvm_irq_routing_entry)) {
    throw Napi::RangeError::New(env, "setGsiRouting: buffer shorter than its entry count says");
  }
  int r = IoctlRetry(RequireOpen(env), KVM_SET_GSI_ROUTING, b.data);
  if (r < 0) throw ErrnoError(env, -r, "ioctl(KVM_SET_GSI_ROUTING)");
  return env.Undefined();
}

Napi::Value KvmVm::Close(const Napi::CallbackInfo& info) {
  DoClose();
  return info.Env().Undefined();
}

}  // namespace nodevmm
