#include "fallocate.h"

#include <fcntl.h>
#include <linux/falloc.h>

namespace nodevmm {

namespace {

constexpr int kAllowedModes = FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE;

// One fallocate() call on a pool thread; settles the promise back on the JS thread.
class FallocateWork : public Napi::AsyncWorker {
 public:
  FallocateWork(Napi::Env env, int fd, int mode, off_t offset, off_t length)
      : Napi::AsyncWorker(env, "nodevmm:fallocate"),
        deferred_(Napi::Promise::Deferred::New(env)),
        fd_(fd),
        mode_(mode),
        offset_(offset),
        length_(length) {}

  Napi::Promise Promise() const { return deferred_.Promise(); }

 protected:
  void Execute() override {
    int r;
    do {
      r = fallocate(fd_, mode_, offset_, length_);
    } while (r < 0 && errno == EINTR);
    err_ = r < 0 ? errno : 0;
  }

  // Errors are settled here rather than through SetError so the rejection carries code/errno/syscall.
  void OnOK() override {
    Napi::Env env = Env();
    if (err_ != 0) {
      deferred_.Reject(ErrnoError(env, err_, "fallocate").Value());
    } else {
      deferred_.Resolve(env.Undefined());
    }
  }

 private:
  Napi::Promise::Deferred deferred_;
  int fd_;
  int mode_;
  off_t offset_;
  off_t length_;
  int err_ = 0;
};

Napi::Value Fallocate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(ToU64(info[0], "fallocate fd", 0x7fffffff));
  uint32_t mode = ToU32(info[1], "fallocate mode");
  if (mode & ~static_cast<uint32_t>(kAllowedModes)) {
    throw Napi::RangeError::New(env, "fallocate mode: only KEEP_SIZE, PUNCH_HOLE and ZERO_RANGE are allowed");
  }
  // off_t is signed 64-bit; 2^53 (the JS safe-integer limit) keeps offset + length far from overflow.
  uint64_t offset = ToU64(info[2], "fallocate offset");
  uint64_t length = ToU64(info[3], "fallocate length");
  if (length == 0) throw Napi::RangeError::New(env, "fallocate length must be greater than 0");
  auto* work = new FallocateWork(env, fd, static_cast<int>(mode), static_cast<off_t>(offset), static_cast<off_t>(length));
  Napi::Promise promise = work->Promise();
  work->Queue();  // the worker deletes itself after OnOK
  return promise;
}

}  // namespace

Napi::Function FallocateFunction(Napi::Env env) {
  Napi::Function fn = Napi::Function::New(env, Fallocate, "fallocate");
  fn.Set("KEEP_SIZE", Napi::Number::New(env, FALLOC_FL_KEEP_SIZE));
  fn.Set("PUNCH_HOLE", Napi::Number::New(env, FALLOC_FL_PUNCH_HOLE));
  fn.Set("ZERO_RANGE", Napi::Number::New(env, FALLOC_FL_ZERO_RANGE));
  return fn;
}

}  // namespace nodevmm
