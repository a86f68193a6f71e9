#include "guest_ram.h"

#include <sys/mman.h>
#include <unistd.h>

namespace nodevmm {

RamMapping::~RamMapping() { munmap(addr, size); }

void RamMapping::Discard() {
  mmap(addr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
}

Napi::Function GuestRam::Init(Napi::Env env) {
  return DefineClass(env, "GuestRam",
                     {
                         InstanceAccessor<&GuestRam::Size>("size"),
                         InstanceMethod<&GuestRam::Close>("close"),
                     });
}

// new GuestRam(size): size must be a positive multiple of the page size. Sets this.buffer (ArrayBuffer).
GuestRam::GuestRam(const Napi::CallbackInfo& info) : Napi::ObjectWrap<GuestRam>(info) {
  Napi::Env env = info.Env();
  const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  uint64_t size = ToU64(info[0], "GuestRam size");
  if (size == 0 || size % page != 0) {
    throw Napi::RangeError::New(env, "GuestRam size must be a positive multiple of " + std::to_string(page));
  }
  // V8 (Node 20) cannot wrap more than 4 GiB in one ArrayBuffer, and a failed wrap is not recoverable here.
  if (size > kMaxGuestRamBlock) {
    throw Napi::RangeError::New(env, "GuestRam size " + std::to_string(size) +
                                         " exceeds the 4 GiB per-block limit; back larger RAM with several blocks/slots");
  }
  void* addr = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (addr == MAP_FAILED) throw ErrnoError(env, errno, "mmap");
  // The child of a fork (child_process) must not share or copy guest RAM.
  madvise(addr, size, MADV_DONTFORK);
  mapping_ = std::make_shared<RamMapping>(addr, size);

  // One external ArrayBuffer per mapping (V8 forbids registering the same backing memory twice),
  // stored on the wrapper so it lives at least as long as this object.
  auto* hold = new std::shared_ptr<RamMapping>(mapping_);
  Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(
      env, addr, size, [](Napi::Env, void*, std::shared_ptr<RamMapping>* h) { delete h; }, hold);
  Napi::Object self = info.This().As<Napi::Object>();
  self.DefineProperty(Napi::PropertyDescriptor::Value("buffer", ab, napi_enumerable));
  self.TypeTag(&kGuestRamTag);
}

std::shared_ptr<RamMapping> GuestRam::Mapping(Napi::Env env) const {
  if (closed_) throw ErrnoError(env, EBADF, "KVM_SET_USER_MEMORY_REGION", "closed GuestRam");
  return mapping_;
}

Napi::Value GuestRam::Size(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(mapping_->size));
}

Napi::Value GuestRam::Close(const Napi::CallbackInfo& info) {
  if (!closed_) {
    closed_ = true;
    mapping_->Discard();
  }
  return info.Env().Undefined();
}

}  // namespace nodevmm
