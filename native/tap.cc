#include "tap.h"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstring>

namespace nodevmm {

static const char kTunPath[] = "/dev/net/tun";

Napi::Value OpenTap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) throw Napi::TypeError::New(env, "openTap: ifname must be a string");
  std::string name = info[0].As<Napi::String>().Utf8Value();
  // IFNAMSIZ counts the terminating NUL; an embedded NUL would silently truncate the name.
  if (name.size() >= IFNAMSIZ || name.find('\0') != std::string::npos) {
    throw Napi::RangeError::New(env, "openTap: ifname must be at most " + std::to_string(IFNAMSIZ - 1) + " bytes without NUL");
  }

  int fd;
  do {
    fd = open(kTunPath, O_RDWR | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) throw ErrnoError(env, errno, "open", kTunPath);

  struct ifreq ifr;
  std::memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  std::memcpy(ifr.ifr_name, name.data(), name.size());
  int r = IoctlRetry(fd, TUNSETIFF, &ifr);
  if (r < 0) {
    close(fd);
    throw ErrnoError(env, -r, "ioctl", name.empty() ? std::string(kTunPath) : name);
  }

  Napi::Object out = Napi::Object::New(env);
  out.Set("fd", Napi::Number::New(env, fd));
  out.Set("ifname", Napi::String::New(env, std::string(ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ))));
  return out;
}

}  // namespace nodevmm
