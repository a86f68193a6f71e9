// Shared helpers for the nodevmm KVM addon: errno-carrying errors, number conversion, type tags.
// The addon is deliberately thin: every class is a file descriptor plus the ioctls that act on it.
#pragma once

#include <napi.h>

#include <cerrno>
#include <cstdint>
#include <string>

namespace nodevmm {

// Node-style Error: message "CODE: strerror, syscall 'path'", with .code, .errno (negative, as in Node's
// own fs errors) and .syscall (and .path when given).
Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall, const std::string& path = "");

// Name of an errno value ("ENOENT"); "E<n>" for unknown values.
std::string ErrnoName(int err);

// A JS number argument that must be a non-negative integer no larger than `max` (at most 2^53).
// Throws a TypeError/RangeError naming `what` otherwise.
uint64_t ToU64(const Napi::Value& v, const char* what, uint64_t max = (1ull << 53));
uint32_t ToU32(const Napi::Value& v, const char* what);

// Bytes of a Uint8Array (or any TypedArray/DataView/ArrayBuffer) argument, with its length.
struct ByteSpan {
  uint8_t* data;
  size_t length;
};
ByteSpan ToBytes(const Napi::Value& v, const char* what);

// Type tags let one native class accept another as an argument without trusting arbitrary objects.
extern const napi_type_tag kGuestRamTag;
extern const napi_type_tag kVmTag;
extern const napi_type_tag kSystemTag;

// ioctl retried on EINTR (except where the caller wants EINTR, i.e. KVM_RUN); returns -errno on error.
int IoctlRetry(int fd, unsigned long request, void* arg);
int IoctlRetry(int fd, unsigned long request, unsigned long arg);

}  // namespace nodevmm
