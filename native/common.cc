#include "common.h"

#include <sys/ioctl.h>

#include <cmath>
#include <cstring>

namespace nodevmm {

const napi_type_tag kGuestRamTag = {0x6e6f6465766d6d31ull, 0x67756573747261ull};
const napi_type_tag kVmTag = {0x6e6f6465766d6d31ull, 0x766d00ull};
const napi_type_tag kSystemTag = {0x6e6f6465766d6d31ull, 0x73797374656dull};

std::string ErrnoName(int err) {
  const char* name = strerrorname_np(err);
  return name ? std::string(name) : "E" + std::to_string(err);
}

Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall, const std::string& path) {
  std::string code = ErrnoName(err);
  std::string msg = code + ": " + strerror(err) + ", " + syscall;
  if (!path.empty()) msg += " '" + path + "'";
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, code));
  e.Set("errno", Napi::Number::New(env, -err));
  e.Set("syscall", Napi::String::New(env, syscall));
  if (!path.empty()) e.Set("path", Napi::String::New(env, path));
  return e;
}

uint64_t ToU64(const Napi::Value& v, const char* what, uint64_t max) {
  if (v.IsBigInt()) {
    bool lossless = false;
    uint64_t x = v.As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless || x > max) throw Napi::RangeError::New(v.Env(), std::string(what) + " is out of range");
    return x;
  }
  if (!v.IsNumber()) throw Napi::TypeError::New(v.Env(), std::string(what) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0) || std::floor(d) != d || d > static_cast<double>(max) || d > 9007199254740992.0) {
    throw Napi::RangeError::New(v.Env(), std::string(what) + " must be an integer in [0, " + std::to_string(max) + "]");
  }
  return static_cast<uint64_t>(d);
}

uint32_t ToU32(const Napi::Value& v, const char* what) {
  return static_cast<uint32_t>(ToU64(v, what, 0xffffffffull));
}

ByteSpan ToBytes(const Napi::Value& v, const char* what) {
  if (v.IsTypedArray()) {
    auto ta = v.As<Napi::TypedArray>();
    auto ab = ta.ArrayBuffer();
    return {static_cast<uint8_t*>(ab.Data()) + ta.ByteOffset(), ta.ByteLength()};
  }
  if (v.IsDataView()) {
    auto dv = v.As<Napi::DataView>();
    return {static_cast<uint8_t*>(dv.Data()), dv.ByteLength()};
  }
  if (v.IsArrayBuffer()) {
    auto ab = v.As<Napi::ArrayBuffer>();
    return {static_cast<uint8_t*>(ab.Data()), ab.ByteLength()};
  }
  throw Napi::TypeError::New(v.Env(), std::string(what) + " must be a TypedArray, DataView or ArrayBuffer");
}

int IoctlRetry(int fd, unsigned long request, void* arg) {
  int r;
  do {
    r = ioctl(fd, request, arg);
  } while (r < 0 && errno == EINTR);
  return r < 0 ? -errno : r;
}

int IoctlRetry(int fd, unsigned long request, unsigned long arg) {
  int r;
  do {
    r = ioctl(fd, request, arg);
  } while (r < 0 && errno == EINTR);
  return r < 0 ? -errno : r;
}

}  // namespace nodevmm
