// openTap(ifname): a Linux TAP interface for the networking layer (lib/net/tap-open.ts). Node cannot issue
// ioctl(TUNSETIFF) itself; this is the one call it needs. Reads and writes of frames stay in JS (fs on the fd).
#pragma once

#include "common.h"

namespace nodevmm {

// openTap(ifname: string) -> { fd, ifname }: /dev/net/tun opened O_RDWR|O_CLOEXEC, TUNSETIFF with
// IFF_TAP|IFF_NO_PI and `ifname` ('' lets the kernel pick tapN). Throws Node-style errors (syscall 'open' or
// 'ioctl'); the fd is closed on failure.
Napi::Value OpenTap(const Napi::CallbackInfo& info);

}  // namespace nodevmm
