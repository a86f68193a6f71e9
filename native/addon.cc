// Module entry: exports the native classes and the struct layout tables. Everything else lives in lib/kvm.
#include "common.h"
#include "eventfd.h"
#include "fallocate.h"
#include "guest_ram.h"
#include "icmp_socket.h"
#include "kick_signal.h"
#include "layout.h"
#include "packet_fd.h"
#include "system.h"
#include "tap.h"
#include "vcpu.h"
#include "vm.h"

namespace nodevmm {

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  exports.Set("KvmSystem", KvmSystem::Init(env));
  exports.Set("KvmVm", KvmVm::Init(env));
  exports.Set("KvmVcpu", KvmVcpu::Init(env));
  exports.Set("GuestRam", GuestRam::Init(env));
  exports.Set("EventFd", EventFd::Init(env));
  exports.Set("fallocate", FallocateFunction(env));
  exports.Set("openTap", Napi::Function::New(env, OpenTap, "openTap"));
  exports.Set("PacketFd", PacketFd::Init(env));
  exports.Set("IcmpSocket", IcmpSocket::Init(env));
  exports.Set("vcpuIoctls", KvmVcpu::IoctlKinds(env));
  exports.Set("runLayout", RunLayout(env));
  exports.Set("structSizes", StructSizes(env));
  exports.Set("kickSignal", Napi::Number::New(env, KickSignal()));
  exports.Set("napiVersion", Napi::Number::New(env, NAPI_VERSION));
  return exports;
}

}  // namespace nodevmm

static Napi::Object Init(Napi::Env env, Napi::Object exports) { return nodevmm::InitAddon(env, exports); }

NODE_API_MODULE(nodevmm_kvm, Init)
