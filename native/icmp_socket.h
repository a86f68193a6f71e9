// IcmpSocket: an ICMP echo socket for the user-mode network (Node has none). Prefers an unprivileged Linux "ping
// socket" (SOCK_DGRAM, IPPROTO_ICMP: allowed when the caller's group is in net.ipv4.ping_group_range; the kernel
// owns the echo identifier and hands us only replies to it) and falls back to SOCK_RAW (needs CAP_NET_RAW; every
// echo reply on the host arrives, the caller matches them). Non-blocking; replies are read on the JS thread's
// event loop through FdWatch, sends are one sendto() each.
#pragma once

#include <cstdint>
#include <vector>

#include "common.h"
#include "fd_watch.h"

namespace nodevmm {

class IcmpSocket : public Napi::ObjectWrap<IcmpSocket>, private FdWatch::Owner {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit IcmpSocket(const Napi::CallbackInfo& info);
  ~IcmpSocket() override;

 private:
  Napi::Value Kind(const Napi::CallbackInfo& info);
  Napi::Value Fd(const Napi::CallbackInfo& info);
  Napi::Value Start(const Napi::CallbackInfo& info);
  Napi::Value Send(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  void OnReadable(int status) override;
  void OnWatchTeardown() override;

  int fd_ = -1;
  bool raw_ = false;
  std::vector<uint8_t> scratch_;
  FdWatch watch_{this};
};

}  // namespace nodevmm
