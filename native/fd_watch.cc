#include "fd_watch.h"

#include <utility>

namespace nodevmm {

// The libuv handle and the environment cleanup hook that outlives it: while the handle is open or closing, the
// hook holds the environment's teardown until the close callback has run.
struct FdWatch::Handle {
  uv_poll_t poll;
  FdWatch* watch = nullptr;  // null once the watch let go (stopped, or the environment is going away)
  napi_async_cleanup_hook_handle hook = nullptr;
  bool closing = false;
};

FdWatch::~FdWatch() { Stop(); }

void FdWatch::Start(Napi::Env env, Napi::Object self, int fd, int events, Napi::Function callback,
                    const char* resourceName, const char* what) {
  const std::string prefix = std::string(what) + ": ";
  if (handle_ != nullptr) throw Napi::Error::New(env, prefix + "already watching");
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) throw Napi::Error::New(env, prefix + "no event loop");
  auto* h = new Handle{};
  int r = uv_poll_init(loop, &h->poll, fd);
  if (r < 0) {
    delete h;
    throw Napi::Error::New(env, prefix + "uv_poll_init: " + uv_strerror(r));
  }
  h->poll.data = h;
  if (napi_add_async_cleanup_hook(env, OnEnvTeardown, h, &h->hook) != napi_ok) {
    h->hook = nullptr;
    CloseHandle(h);
    throw Napi::Error::New(env, prefix + "napi_add_async_cleanup_hook failed");
  }
  r = uv_poll_start(&h->poll, events, OnPoll);
  if (r < 0) {
    CloseHandle(h);
    throw Napi::Error::New(env, prefix + "uv_poll_start: " + uv_strerror(r));
  }
  napi_async_context context = nullptr;
  Napi::ObjectReference selfRef;
  Napi::FunctionReference callbackRef;
  try {
    if (napi_async_init(env, nullptr, Napi::String::New(env, resourceName), &context) != napi_ok) {
      throw Napi::Error::New(env, prefix + "napi_async_init failed");
    }
    selfRef = Napi::Persistent(self);
    callbackRef = Napi::Persistent(callback);
  } catch (...) {
    if (context != nullptr) napi_async_destroy(env, context);
    CloseHandle(h);
    throw;
  }
  // A watch alone must not keep the process alive (a forgotten device would hang exit); whatever runs the
  // guest keeps the loop alive while its fds matter.
  uv_unref(reinterpret_cast<uv_handle_t*>(&h->poll));
  h->watch = this;
  handle_ = h;
  env_ = env;
  context_ = context;
  self_ = std::move(selfRef);
  callback_ = std::move(callbackRef);
}

void FdWatch::Stop() {
  if (handle_ == nullptr) return;
  handle_->watch = nullptr;
  CloseHandle(handle_);
  handle_ = nullptr;
  Release();
}

void FdWatch::Release() {
  if (context_ != nullptr) {
    if (dispatching_ && context_ == dispatchContext_) {
      retiredContext_ = context_;  // in use by the call under way: destroyed when it returns
    } else {
      napi_async_destroy(env_, context_);
    }
    context_ = nullptr;
  }
  self_.Reset();
  callback_.Reset();
}

void FdWatch::CloseHandle(Handle* h) {
  if (h->closing) return;
  h->closing = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&h->poll), [](uv_handle_t* closed) {
    auto* handle = static_cast<Handle*>(closed->data);
    if (handle->hook != nullptr) napi_remove_async_cleanup_hook(handle->hook);  // lets teardown proceed
    delete handle;
  });
}

// The environment is going away with the handle open. Close it without calling into JS (no async destroy
// either: the context simply dies with the environment); the close callback then completes the hook.
void FdWatch::OnEnvTeardown(napi_async_cleanup_hook_handle hook, void* arg) {
  auto* h = static_cast<Handle*>(arg);
  if (FdWatch* watch = h->watch) {
    h->watch = nullptr;
    watch->handle_ = nullptr;
    watch->context_ = nullptr;
    watch->self_.Reset();
    watch->callback_.Reset();
    watch->owner_->OnWatchTeardown();
  }
  CloseHandle(h);
}

void FdWatch::OnPoll(uv_poll_t* poll, int status, int events) {
  FdWatch* watch = static_cast<Handle*>(poll->data)->watch;
  if (watch == nullptr) return;
  Napi::Env env(watch->env_);
  Napi::HandleScope scope(env);
  // Local handles keep the owner's object (and so the owner and this watch) and the callback alive through the
  // event even if the owner stops the watch, which drops the persistent references.
  Napi::Object self = watch->self_.Value();
  Napi::Function callback = watch->callback_.Value();
  static_cast<void>(self);
  watch->dispatching_ = true;
  watch->dispatchCallback_ = callback;
  watch->dispatchContext_ = watch->context_;
  try {
    watch->owner_->OnReadable(status);
  } catch (const Napi::Error& e) {
    // A throw must not leave a libuv callback (that would terminate the process): report it as uncaught.
    napi_value error = e.Value();
    if (error != nullptr) napi_fatal_exception(env, error);
  }
  watch->dispatching_ = false;
  watch->dispatchCallback_ = nullptr;
  watch->dispatchContext_ = nullptr;
  if (watch->retiredContext_ != nullptr) napi_async_destroy(env, watch->retiredContext_);
  watch->retiredContext_ = nullptr;
}

void FdWatch::Deliver(napi_value recv, size_t argc, const napi_value* argv) {
  if (!dispatching_) return;
  napi_value result;
  napi_make_callback(env_, dispatchContext_, recv, dispatchCallback_, argc, argv, &result);
}

}  // namespace nodevmm
