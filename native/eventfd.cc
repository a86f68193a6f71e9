#include "eventfd.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <unistd.h>

namespace nodevmm {

// Reads (and so resets) the counter, retrying on EINTR: 0, or -errno.
static int ReadCounter(int fd, uint64_t* value) {
  ssize_t r;
  do {
    r = read(fd, value, sizeof *value);
  } while (r < 0 && errno == EINTR);
  return r < 0 ? -errno : 0;
}

Napi::Function EventFd::Init(Napi::Env env) {
  return DefineClass(env, "EventFd",
                     {
                         InstanceAccessor<&EventFd::Fd>("fd"),
                         InstanceMethod<&EventFd::Write>("write"),
                         InstanceMethod<&EventFd::Read>("read"),
                         InstanceMethod<&EventFd::Close>("close"),
                         InstanceMethod<&EventFd::Watch>("watch"),
                         InstanceMethod<&EventFd::Unwatch>("unwatch"),
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
  watch_.Stop();
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
  int err = ReadCounter(fd_, &v);
  return Napi::Number::New(info.Env(), err < 0 ? err : static_cast<double>(v));
}

Napi::Value EventFd::Close(const Napi::CallbackInfo& info) {
  watch_.Stop();
  if (fd_ >= 0) {
    close(fd_);
    fd_ = -1;
  }
  return info.Env().Undefined();
}

// watch(callback): from now on, whenever the counter is non-zero, read (reset) it on the JS thread's event loop
// and call callback(counter) — or callback(-errno) if the read fails. Never blocks the loop.
Napi::Value EventFd::Watch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (fd_ < 0) throw Napi::Error::New(env, "eventfd watch: the eventfd is closed");
  if (watch_.IsActive()) throw Napi::Error::New(env, "eventfd watch: already watched");
  if (!info[0].IsFunction()) throw Napi::TypeError::New(env, "eventfd watch: callback must be a function");
  // The loop must never block on read(); KVM does not care about the flag on its side of the fd.
  int flags = fcntl(fd_, F_GETFL);
  if (flags < 0 || fcntl(fd_, F_SETFL, flags | O_NONBLOCK) < 0) throw ErrnoError(env, errno, "fcntl(eventfd)");
  watch_.Start(env, Value(), fd_, UV_READABLE, info[0].As<Napi::Function>(), "nodevmm:eventfd", "eventfd watch");
  return env.Undefined();
}

// unwatch(): stop calling back (idempotent). A signal already counted stays in the counter.
Napi::Value EventFd::Unwatch(const Napi::CallbackInfo& info) {
  watch_.Stop();
  return info.Env().Undefined();
}

void EventFd::OnReadable(int status) {
  if (fd_ < 0) return;
  double value;
  if (status < 0) {
    value = status;  // libuv errors are -errno on Linux
  } else {
    uint64_t v = 0;
    int err = ReadCounter(fd_, &v);
    if (err == -EAGAIN) return;  // someone else read it first
    value = err < 0 ? err : static_cast<double>(v);
  }
  Napi::Env env(watch_.Env());
  napi_value recv;
  napi_get_global(env, &recv);
  napi_value arg = Napi::Number::New(env, value);
  watch_.Deliver(recv, 1, &arg);
}

// The environment (a worker) is going away while watched: nothing can use the eventfd any more.
void EventFd::OnWatchTeardown() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

}  // namespace nodevmm
