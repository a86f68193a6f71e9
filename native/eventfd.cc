#include "eventfd.h"

#include <sys/eventfd.h>
#include <unistd.h>

namespace nodevmm {

Napi::Function EventFd::Init(Napi::Env env) {
  return DefineClass(env, "EventFd",
                     {
                         InstanceAccessor<&EventFd::Fd>("fd"),
                         InstanceMethod<&EventFd::Write>("write"),
                         InstanceMethod<&EventFd::Read>("read"),
                         InstanceMethod<&EventFd::Close>("close"),
                         StaticValue("NONBLOCK", Napi::Number::New(env, EFD_NONBLOCK)),
                         StaticValue("SEMAPHORE", Napi::Number::New(env, EFD_SEMAPHORE)),
                     });
}

// new EventFd(initialValue, flags): flags is a combination of EventFd.NONBLOCK / EventFd.SEMAPHORE.
EventFd::EventFd(const Napi::CallbackInfo& info) : Napi::ObjectWrap<EventFd>(info) {
  uint32_t init = info[0].IsUndefined() ? 0 : ToU32(info[0], "eventfd initial value");
  uint32_t flags = info[1].IsUndefined() ? 0 : ToU32(info[1], "eventfd flags");
  if (flags & ~static_cast<uint32_t>(EFD_NONBLOCK | EFD_SEMAPHORE)) {
    throw Napi::RangeError::New(info.Env(), "eventfd flags: only NONBLOCK and SEMAPHORE are allowed");
  }
  fd_ = eventfd(init, static_cast<int>(flags) | EFD_CLOEXEC);
  if (fd_ < 0) throw ErrnoError(info.Env(), errno, "eventfd");
}

EventFd::~EventFd() {
  if (fd_ >= 0) close(fd_);
}

Napi::Value EventFd::Fd(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), fd_); }

// write(n) -> 0 or -errno: adds n (default 1) to the counter.
Napi::Value EventFd::Write(const Napi::CallbackInfo& info) {
  if (fd_ < 0) return Napi::Number::New(info.Env(), -EBADF);
  uint64_t v = info[0].IsUndefined() ? 1 : ToU64(info[0], "eventfd increment");
  ssize_t r;
  do {
    r = write(fd_, &v, sizeof v);
  } while (r < 0 && errno == EINTR);
  return Napi::Number::New(info.Env(), r < 0 ? -errno : 0);
}

// read() -> the counter (> 0), or -errno (-EAGAIN when NONBLOCK and zero).
Napi::Value EventFd::Read(const Napi::CallbackInfo& info) {
  if (fd_ < 0) return Napi::Number::New(info.Env(), -EBADF);
  uint64_t v = 0;
  ssize_t r;
  do {
    r = read(fd_, &v, sizeof v);
  } while (r < 0 && errno == EINTR);
  if (r < 0) return Napi::Number::New(info.Env(), -errno);
  return Napi::Number::New(info.Env(), static_cast<double>(v));
}

Napi::Value EventFd::Close(const Napi::CallbackInfo& info) {
  if (fd_ >= 0) {
    close(fd_);
    fd_ = -1;
  }
  return info.Env().Undefined();
}

}  // namespace nodevmm
