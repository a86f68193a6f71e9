#include "system.h"

#include <fcntl.h>
#include "kvm_headers.h"
#include <unistd.h>

#include <cstring>
#include <vector>

namespace nodevmm {

Napi::Function KvmSystem::Init(Napi::Env env) {
  return DefineClass(env, "KvmSystem",
                     {
                         InstanceAccessor<&KvmSystem::Fd>("fd"),
                         InstanceMethod<&KvmSystem::ApiVersion>("apiVersion"),
                         InstanceMethod<&KvmSystem::CheckExtension>("checkExtension"),
                         InstanceMethod<&KvmSystem::VcpuMmapSize>("vcpuMmapSize"),
                         InstanceMethod<&KvmSystem::SupportedCpuid>("supportedCpuid"),
                         InstanceMethod<&KvmSystem::MsrIndexList>("msrIndexList"),
                         InstanceMethod<&KvmSystem::Close>("close"),
                     });
}

// new KvmSystem(path): opens the KVM device node (path overridable so tests can provoke ENOENT/EACCES).
KvmSystem::KvmSystem(const Napi::CallbackInfo& info) : Napi::ObjectWrap<KvmSystem>(info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) throw Napi::TypeError::New(env, "KvmSystem: path must be a string");
  std::string path = info[0].As<Napi::String>().Utf8Value();
  int fd;
  do {
    fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) throw ErrnoError(env, errno, "open", path);
  fd_ = fd;
  info.This().As<Napi::Object>().TypeTag(&kSystemTag);
}

KvmSystem::~KvmSystem() {
  if (fd_ >= 0) close(fd_);
}

int KvmSystem::RequireOpen(Napi::Env env) const {
  if (fd_ < 0) throw ErrnoError(env, EBADF, "ioctl", "closed KvmSystem");
  return fd_;
}

Napi::Value KvmSystem::Fd(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), fd_); }

Napi::Value KvmSystem::ApiVersion(const Napi::CallbackInfo& info) {
  int r = IoctlRetry(RequireOpen(info.Env()), KVM_GET_API_VERSION, 0ul);
  if (r < 0) throw ErrnoError(info.Env(), -r, "ioctl(KVM_GET_API_VERSION)");
  return Napi::Number::New(info.Env(), r);
}

Napi::Value KvmSystem::CheckExtension(const Napi::CallbackInfo& info) {
  uint32_t cap = ToU32(info[0], "capability");
  int r = IoctlRetry(RequireOpen(info.Env()), KVM_CHECK_EXTENSION, static_cast<unsigned long>(cap));
  if (r < 0) throw ErrnoError(info.Env(), -r, "ioctl(KVM_CHECK_EXTENSION)");
  return Napi::Number::New(info.Env(), r);
}

Napi::Value KvmSystem::VcpuMmapSize(const Napi::CallbackInfo& info) {
  int r = IoctlRetry(RequireOpen(info.Env()), KVM_GET_VCPU_MMAP_SIZE, 0ul);
  if (r < 0) throw ErrnoError(info.Env(), -r, "ioctl(KVM_GET_VCPU_MMAP_SIZE)");
  return Napi::Number::New(info.Env(), r);
}

// Raw struct kvm_cpuid2 (8-byte header + nent * 40-byte entries) as a Uint8Array; TS decodes it.
Napi::Value KvmSystem::SupportedCpuid(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = RequireOpen(env);
  for (uint32_t n = 128; n <= 65536; n *= 2) {
    size_t bytes = sizeof(kvm_cpuid2) + n * sizeof(kvm_cpuid_entry2);
    std::vector<uint8_t> buf(bytes, 0);
    auto* c = reinterpret_cast<kvm_cpuid2*>(buf.data());
    c->nent = n;
    int r = IoctlRetry(fd, KVM_GET_SUPPORTED_CPUID, c);
    if (r == -E2BIG) continue;
    if (r < 0) throw ErrnoError(env, -r, "ioctl(KVM_GET_SUPPORTED_CPUID)");
    size_t used = sizeof(kvm_cpuid2) + c->nent * sizeof(kvm_cpuid_entry2);
    auto out = Napi::Uint8Array::New(env, used);
    memcpy(out.Data(), buf.data(), used);
    return out;
  }
  throw ErrnoError(env, E2BIG, "ioctl(KVM_GET_SUPPORTED_CPUID)");
}

Napi::Value KvmSystem::MsrIndexList(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = RequireOpen(env);
  kvm_msr_list probe{};
  int r = IoctlRetry(fd, KVM_GET_MSR_INDEX_LIST, &probe);  // fails with E2BIG and sets nmsrs
  if (r < 0 && r != -E2BIG) throw ErrnoError(env, -r, "ioctl(KVM_GET_MSR_INDEX_LIST)");
  std::vector<uint32_t> buf(1 + probe.nmsrs, 0);
  buf[0] = probe.nmsrs;
  r = IoctlRetry(fd, KVM_GET_MSR_INDEX_LIST, buf.data());
  if (r < 0) throw ErrnoError(env, -r, "ioctl(KVM_GET_MSR_INDEX_LIST)");
  uint32_t n = buf[0];
  auto out = Napi::Uint32Array::New(env, n);
  memcpy(out.Data(), buf.data() + 1, n * sizeof(uint32_t));
  return out;
}

Napi::Value KvmSystem::Close(const Napi::CallbackInfo& info) {
  if (fd_ >= 0) {
    close(fd_);
    fd_ = -1;
  }
  return info.Env().Undefined();
}

}  // namespace nodevmm
