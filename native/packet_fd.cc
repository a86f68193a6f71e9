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
  StopPolling();
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
  if (poll_ != nullptr) throw Napi::Error::New(env, "PacketFd start: already started");
  if (!info[0].IsFunction()) throw Napi::TypeError::New(env, "PacketFd start: onFrames must be a function");
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) throw Napi::Error::New(env, "PacketFd start: no event loop");
  auto* w = new Watcher{};
  int r = uv_poll_init(loop, &w->poll, fd_);
  if (r < 0) {
    delete w;
    throw Napi::Error::New(env, std::string("PacketFd start: uv_poll_init: ") + uv_strerror(r));
  }
  w->poll.data = w;
  if (napi_add_async_cleanup_hook(env, OnEnvTeardown, w, &w->hook) != napi_ok) {
    w->hook = nullptr;
    CloseWatcher(w);
    throw Napi::Error::New(env, "PacketFd start: napi_add_async_cleanup_hook failed");
  }
  r = uv_poll_start(&w->poll, UV_READABLE, OnReadable);
  if (r < 0) {
    CloseWatcher(w);
    throw Napi::Error::New(env, std::string("PacketFd start: uv_poll_start: ") + uv_strerror(r));
  }
  // Like EventFd.watch: a link alone must not keep the process alive; whatever runs the guest does.
  uv_unref(reinterpret_cast<uv_handle_t*>(&w->poll));
  w->owner = this;
  napi_value name = Napi::String::New(env, "nodevmm:packetfd");
  napi_async_init(env, nullptr, name, &asyncContext_);
  poll_ = w;
  env_ = env;
  callback_ = Napi::Persistent(info[0].As<Napi::Function>());
  Ref();
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
  if (poll_ != nullptr) {
    StopPolling();
    Unref();
  }
  if (fd_ >= 0) {
    close(fd_);
    fd_ = -1;
  }
  return info.Env().Undefined();
}

void PacketFd::StopPolling() {
  if (poll_ == nullptr) return;
  poll_->owner = nullptr;
  CloseWatcher(poll_);
  poll_ = nullptr;
  if (asyncContext_ != nullptr) {
    if (inCallback_ && retiredContext_ == nullptr) {  // the first one released during a call is the one in use
      retiredContext_ = asyncContext_;
    } else {
      napi_async_destroy(env_, asyncContext_);
    }
  }
  asyncContext_ = nullptr;
  callback_.Reset();
}

void PacketFd::CloseWatcher(Watcher* w) {
  if (w->closing) return;
  w->closing = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&w->poll), [](uv_handle_t* h) {
    auto* closed = static_cast<Watcher*>(h->data);
    if (closed->hook != nullptr) napi_remove_async_cleanup_hook(closed->hook);  // lets teardown proceed
    delete closed;
  });
}

// The environment is being torn down with the watcher still open (a worker ending without close()): close the
// handle and the fd now, without calling into JS; the close callback then completes the hook.
void PacketFd::OnEnvTeardown(napi_async_cleanup_hook_handle hook, void* arg) {
  auto* w = static_cast<Watcher*>(arg);
  if (PacketFd* owner = w->owner) {
    w->owner = nullptr;
    owner->poll_ = nullptr;
    if (owner->fd_ >= 0) close(owner->fd_);
    owner->fd_ = -1;
  }
  CloseWatcher(w);
}

void PacketFd::OnReadable(uv_poll_t* handle, int status, int events) {
  auto* self = static_cast<Watcher*>(handle->data)->owner;
  if (self == nullptr || self->fd_ < 0) return;
  Napi::Env env(self->env_);
  Napi::HandleScope scope(env);
  // Local handles keep the wrapper and the callback alive through the call even if it closes this object (which
  // drops the persistent references).
  Napi::Object keepAlive = self->Value();
  Napi::Function callback = self->callback_.Value();

  Napi::Array frames = Napi::Array::New(env);
  uint32_t count = 0;
  int error = 0;
  for (int reads = 0; error == 0 && reads < kBatchFrames; reads++) {
    ssize_t n = read(self->fd_, self->scratch_.data(), self->scratch_.size());
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
    if (static_cast<size_t>(n) > self->maxFrame_) {
      self->oversized_++;
      continue;
    }
    frames.Set(count++, Napi::Buffer<uint8_t>::Copy(env, self->scratch_.data(), static_cast<size_t>(n)));
  }
  // libuv reports EPOLLERR as UV_EBADF (and has stopped the handle); the read above names the real error
  // (e.g. EBADFD once a TAP's interface is deleted), otherwise report libuv's (-errno on Linux).
  if (error == 0 && status < 0) error = status;
  if (count == 0 && error == 0) return;  // spurious wake-up, or only oversized frames
  self->inCallback_ = true;
  napi_async_context context = self->asyncContext_;
  // A failing fd would be readable (or in error) forever: stop before reporting, so the report comes once.
  if (error != 0) {
    self->StopPolling();
    self->Unref();
  }
  napi_value args[2] = {frames, Napi::Number::New(env, error)};
  napi_value result;
  // MakeCallback: microtasks run afterwards and exceptions are reported as uncaught, as for any loop callback.
  napi_make_callback(env, context, keepAlive, callback, 2, args, &result);
  self->inCallback_ = false;
  // A context released during the call (close() or an error) is destroyed only now that the call is over.
  if (self->retiredContext_ != nullptr) napi_async_destroy(env, self->retiredContext_);
  self->retiredContext_ = nullptr;
}

}  // namespace nodevmm
