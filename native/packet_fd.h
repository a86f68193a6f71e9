// PacketFd: a packet-oriented fd (a TAP: one Ethernet frame per read/write) driven from the JS thread's event
// loop. Reads happen when the fd is readable (uv_poll), never on the libuv threadpool, so an idle link holds no
// pool thread and close() takes effect at once. Writes are plain non-blocking write() calls on the JS thread.
#pragma once

#include <cstdint>
#include <vector>

#include "common.h"
#include "fd_watch.h"

namespace nodevmm {

class PacketFd : public Napi::ObjectWrap<PacketFd>, private FdWatch::Owner {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit PacketFd(const Napi::CallbackInfo& info);
  ~PacketFd() override;

 private:
  Napi::Value Fd(const Napi::CallbackInfo& info);
  Napi::Value Oversized(const Napi::CallbackInfo& info);
  Napi::Value Start(const Napi::CallbackInfo& info);
  Napi::Value Send(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  void OnReadable(int status) override;
  void OnWatchTeardown() override;

  int fd_ = -1;
  size_t maxFrame_ = 0;
  // Frames longer than maxFrame_ (read truncated, dropped).
  double oversized_ = 0;
  // One spare byte beyond maxFrame_ tells a truncated frame from one that fits exactly.
  std::vector<uint8_t> scratch_;
  // While started: reads batches of frames when the fd is readable and calls onFrames with them.
  FdWatch watch_{this};
};

}  // namespace nodevmm
