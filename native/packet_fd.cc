#include "packet_fd.h"

#include <fcntl.h>
#include <unistd.h>

namespace nodevmm {

// Frames delivered per readable event at most: the rest stay in the kernel queue and (epoll being
// level-triggered) come in the next loop iteration, so one busy link cannot keep the loop from other work.
static constexpr int kBatchFrames = 64;
// Bounds for maxFrameBytes: an Ethernet header, and 1 MiB (far beyond any TAP frame, even with GSO).
static constexpr uint32_t kMinFrame = 14;
static constexpr uint32_t kMaxFrame = 1u << 20;

Napi::Function PacketFd::Init(Napi::Env env) {
  return DefineClass(env, "PacketFd",
                     {
                         InstanceAccessor<&PacketFd::Fd>("fd"),
                         InstanceAccessor<&PacketFd::Oversized>("oversized"),
                         InstanceMethod<&PacketFd::Start>("start"),
                         InstanceMethod<&PacketFd::Send>("send"),
                         InstanceMethod<&PacketFd::Close>("close"),
                     });
}

// new PacketFd(fd, maxFrameBytes): takes ownership of `fd` (only if the constructor succeeds) and makes it
// non-blocking.
PacketFd::PacketFd(const Napi::CallbackInfo& info) : Napi::ObjectWrap<PacketFd>(info) {
  Napi::Env env = info.Env();
  uint32_t fd = ToU32(info[0], "PacketFd fd");
  if (fd > static_cast<uint32_t>(INT32_MAX)) throw Napi::RangeError::New(env, "PacketFd fd: not a file descriptor");
  uint32_t maxFrame = ToU32(info[1], "PacketFd maxFrameBytes");
  if (maxFrame < kMinFrame || maxFrame > kMaxFrame) {
    throw Napi::RangeError::New(env, "PacketFd maxFrameBytes: must be between " + std::to_string(kMinFrame) + " and " +
                                         std::to_string(kMaxFrame));
  }
  int flags = fcntl(static_cast<int>(fd), F_GETFL);
  if (flags < 0) throw ErrnoError(env, errno, "fcntl");
  if (!(flags & O_NONBLOCK) && fcntl(static_cast<int>(fd), F_SETFL, flags | O_NONBLOCK) < 0) throw ErrnoError(env, errno, "fcntl");
  fd_ = static_cast<int>(fd);
  maxFrame_ = maxFrame;
  scratch_.resize(maxFrame_ + 1);
}

PacketFd::~PacketFd() {
  watch_.Stop();
  if (fd_ >= 0) close(fd_);
}

Napi::Value PacketFd::Fd(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), fd_); }

Napi::Value PacketFd::Oversized(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), oversized_); }

// start(onFrames): from now on, whenever the fd is readable, read frames until EAGAIN (at most kBatchFrames) and
// call onFrames(frames: Buffer[], error: number) once per batch on the JS thread. error is 0, or -errno when a
// read failed (-EPIPE: end of stream); after an error the watcher has stopped (frames read before it are in
// `frames`) and start() may be called again. The watcher does not keep the process alive.
Napi::Value PacketFd::Start(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (fd_ < 0) throw Napi::Error::New(env, "PacketFd start: the fd is closed");
  if (watch_.IsActive()) throw Napi::Error::New(env, "PacketFd start: already started");
  if (!info[0].IsFunction()) throw Napi::TypeError::New(env, "PacketFd start: onFrames must be a function");
  // Like EventFd.watch: a link alone does not keep the process alive; whatever runs the guest does.
  watch_.Start(env, Value(), fd_, UV_READABLE, info[0].As<Napi::Function>(), "nodevmm:packetfd", "PacketFd start");
  return env.Undefined();
}

// send(frame) -> bytes written, or -errno (-EAGAIN/-ENOBUFS when the kernel queue is full; -EBADF once closed).
Napi::Value PacketFd::Send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ByteSpan frame = ToBytes(info[0], "PacketFd send: frame");
  if (fd_ < 0) return Napi::Number::New(env, -EBADF);
  ssize_t n;
  do {
    n = write(fd_, frame.data, frame.length);
  } while (n < 0 && errno == EINTR);
  return Napi::Number::New(env, n < 0 ? -errno : static_cast<double>(n));
}

// close(): stop the watcher and close the fd now; idempotent. Safe from inside onFrames (the batch being
// delivered is complete; nothing reads the fd after the callback returns).
Napi::Value PacketFd::Close(const Napi::CallbackInfo& info) {
  watch_.Stop();
  if (fd_ >= 0) {
    close(fd_);
    fd_ = -1;
  }
  return info.Env().Undefined();
}

// The environment (a worker) is going away while started: close the fd now, as close() would have.
void PacketFd::OnWatchTeardown() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

void PacketFd::OnReadable(int status) {
  if (fd_ < 0) return;
  Napi::Env env(watch_.Env());
  Napi::Array frames = Napi::Array::New(env);
  uint32_t count = 0;
  int error = 0;
  for (int reads = 0; error == 0 && reads < kBatchFrames; reads++) {
    ssize_t n = read(fd_, scratch_.data(), scratch_.size());
    if (n < 0) {
      if (errno == EINTR) {
        reads--;
        continue;
      }
      if (errno != EAGAIN && errno != EWOULDBLOCK) error = -errno;
      break;
    }
    if (n == 0) {
      error = -EPIPE;  // end of stream: the fd will stay readable, so polling must stop
      break;
    }
    if (static_cast<size_t>(n) > maxFrame_) {
      oversized_++;
      continue;
    }
    frames.Set(count++, Napi::Buffer<uint8_t>::Copy(env, scratch_.data(), static_cast<size_t>(n)));
  }
  // libuv reports EPOLLERR as UV_EBADF (and has stopped the handle); the read above names the real error
  // (e.g. EBADFD once a TAP's interface is deleted), otherwise report libuv's (-errno on Linux).
  if (error == 0 && status < 0) error = status;
  if (count == 0 && error == 0) return;  // spurious wake-up, or only oversized frames
  // A failing fd would be readable (or in error) forever: stop before reporting, so the report comes once.
  if (error != 0) watch_.Stop();
  napi_value args[2] = {frames, Napi::Number::New(env, error)};
  watch_.Deliver(Value(), 2, args);
}

}  // namespace nodevmm
