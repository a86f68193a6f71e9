#include "eventfd.h"

#include <fcntl.h>
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
  StopWatching();
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
  if (poll_ != nullptr) {
    StopWatching();
    Unref();
  }
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
  if (poll_ != nullptr) throw Napi::Error::New(env, "eventfd watch: already watched");
  if (!info[0].IsFunction()) throw Napi::TypeError::New(env, "eventfd watch: callback must be a function");
  // The loop must never block on read(); KVM does not care about the flag on its side of the fd.
  int flags = fcntl(fd_, F_GETFL);
  if (flags < 0 || fcntl(fd_, F_SETFL, flags | O_NONBLOCK) < 0) throw ErrnoError(env, errno, "fcntl(eventfd)");
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) throw Napi::Error::New(env, "eventfd watch: no event loop");
  auto* poll = new uv_poll_t;
  int r = uv_poll_init(loop, poll, fd_);
  if (r < 0) {
    delete poll;
    throw Napi::Error::New(env, std::string("eventfd watch: uv_poll_init: ") + uv_strerror(r));
  }
  poll->data = this;
  r = uv_poll_start(poll, UV_READABLE, OnReadable);
  if (r < 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(poll), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    throw Napi::Error::New(env, std::string("eventfd watch: uv_poll_start: ") + uv_strerror(r));
  }
  // A watcher alone must not keep the process alive (a forgotten device would hang exit); whatever runs the
  // guest keeps the loop alive while signals matter.
  uv_unref(reinterpret_cast<uv_handle_t*>(poll));
  napi_value name = Napi::String::New(env, "nodevmm:eventfd");
  napi_async_init(env, nullptr, name, &asyncContext_);
  poll_ = poll;
  env_ = env;
  callback_ = Napi::Persistent(info[0].As<Napi::Function>());
  Ref();
  return env.Undefined();
}

// unwatch(): stop calling back (idempotent). A signal already counted stays in the counter.
Napi::Value EventFd::Unwatch(const Napi::CallbackInfo& info) {
  if (poll_ != nullptr) {
    StopWatching();
    Unref();
  }
  return info.Env().Undefined();
}

void EventFd::StopWatching() {
  if (poll_ == nullptr) return;
  uv_poll_stop(poll_);
  uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
  poll_ = nullptr;
  if (asyncContext_ != nullptr) napi_async_destroy(env_, asyncContext_);
  asyncContext_ = nullptr;
  callback_.Reset();
}

void EventFd::OnReadable(uv_poll_t* handle, int status, int events) {
  auto* self = static_cast<EventFd*>(handle->data);
  if (self->poll_ != handle || self->fd_ < 0) return;
  double value;
  if (status < 0) {
    value = status;  // libuv errors are -errno on Linux
  } else {
    uint64_t v = 0;
    ssize_t r;
    do {
      r = read(self->fd_, &v, sizeof v);
    } while (r < 0 && errno == EINTR);
    if (r < 0 && errno == EAGAIN) return;  // someone else read it first
    value = r < 0 ? -errno : static_cast<double>(v);
  }
  Napi::Env env(self->env_);
  Napi::HandleScope scope(env);
  napi_value recv;
  napi_get_global(env, &recv);
  napi_value arg = Napi::Number::New(env, value);
  napi_value result;
  // MakeCallback: microtasks run afterwards and exceptions are reported as uncaught, as for any loop callback.
  napi_make_callback(env, self->asyncContext_, recv, self->callback_.Value(), 1, &arg, &result);
}

}  // namespace nodevmm
