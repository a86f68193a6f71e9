#include "icmp_socket.h"

#include <arpa/inet.h>
#include <linux/icmp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>

namespace nodevmm {

// Replies delivered per readable event at most; the rest wait for the next loop turn (level-triggered).
static constexpr int kBatch = 64;
// An IPv4 datagram cannot be longer; anything we read fits.
static constexpr size_t kMaxDatagram = 65535;

Napi::Function IcmpSocket::Init(Napi::Env env) {
  return DefineClass(env, "IcmpSocket",
                     {
                         InstanceAccessor<&IcmpSocket::Kind>("kind"),
                         InstanceAccessor<&IcmpSocket::Fd>("fd"),
                         InstanceMethod<&IcmpSocket::Start>("start"),
                         InstanceMethod<&IcmpSocket::Send>("send"),
                         InstanceMethod<&IcmpSocket::Close>("close"),
                     });
}

static int OpenIcmp(int type) {
  int fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_ICMP);
  return fd < 0 ? -errno : fd;
}

static std::string Describe(int err) { return ErrnoName(err) + " (" + strerror(err) + ")"; }

// new IcmpSocket(kind = 'auto'): 'dgram' or 'raw' only tries that kind; 'auto' tries dgram, then raw, and throws
// an error naming both failures and how to allow either.
IcmpSocket::IcmpSocket(const Napi::CallbackInfo& info) : Napi::ObjectWrap<IcmpSocket>(info) {
  Napi::Env env = info.Env();
  std::string kind = "auto";
  if (!info[0].IsUndefined()) {
    if (!info[0].IsString()) throw Napi::TypeError::New(env, "IcmpSocket kind must be 'auto', 'dgram' or 'raw'");
    kind = info[0].As<Napi::String>().Utf8Value();
    if (kind != "auto" && kind != "dgram" && kind != "raw") {
      throw Napi::RangeError::New(env, "IcmpSocket kind must be 'auto', 'dgram' or 'raw', not '" + kind + "'");
    }
  }
  const char* groupHint =
      "this process's group is not in net.ipv4.ping_group_range (allow it with: sysctl -w "
      "net.ipv4.ping_group_range=\"0 2147483647\")";
  int dgramErr = 0;
  if (kind != "raw") {
    int fd = OpenIcmp(SOCK_DGRAM);
    if (fd >= 0) {
      fd_ = fd;
    } else if (kind == "dgram") {
      throw Napi::Error::New(env, "IcmpSocket: ping socket (SOCK_DGRAM, IPPROTO_ICMP): " + Describe(-fd) +
                                      (-fd == EACCES ? std::string(": ") + groupHint : std::string()));
    } else {
      dgramErr = -fd;
    }
  }
  if (fd_ < 0) {
    int fd = OpenIcmp(SOCK_RAW);
    if (fd < 0) {
      std::string rawPart = "raw socket (SOCK_RAW, IPPROTO_ICMP): " + Describe(-fd) +
                            (-fd == EPERM ? ": needs CAP_NET_RAW" : "");
      if (kind == "raw") throw Napi::Error::New(env, "IcmpSocket: " + rawPart);
      throw Napi::Error::New(env, "IcmpSocket: cannot open an ICMP socket: ping socket (SOCK_DGRAM, IPPROTO_ICMP): " +
                                      Describe(dgramErr) + (dgramErr == EACCES ? std::string(": ") + groupHint : "") +
                                      "; " + rawPart);
    }
    fd_ = fd;
    raw_ = true;
    // A raw ICMP socket sees every ICMP packet the host receives: let the kernel pass echo replies only.
    struct icmp_filter filter;
    filter.data = ~(1u << ICMP_ECHOREPLY);
    if (setsockopt(fd_, SOL_RAW, ICMP_FILTER, &filter, sizeof filter) < 0) {
      int err = errno;
      close(fd_);
      fd_ = -1;
      throw ErrnoError(env, err, "setsockopt(ICMP_FILTER)");
    }
  } else {
    // Ping sockets strip the IP header; ask for the TTL as ancillary data instead.
    int on = 1;
    setsockopt(fd_, IPPROTO_IP, IP_RECVTTL, &on, sizeof on);
  }
  scratch_.resize(kMaxDatagram);
}

IcmpSocket::~IcmpSocket() {
  watch_.Stop();
  if (fd_ >= 0) close(fd_);
}

Napi::Value IcmpSocket::Kind(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), raw_ ? "raw" : "dgram"); }

Napi::Value IcmpSocket::Fd(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), fd_); }

// start(onReplies): whenever the socket is readable, read up to kBatch echo replies and call
// onReplies(replies: {source, message, ttl}[], error) once. error is 0, or -errno when libuv reports the fd
// failed (the watcher has then stopped). Per-datagram errors (queued ICMP errors) are skipped.
Napi::Value IcmpSocket::Start(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (fd_ < 0) throw Napi::Error::New(env, "IcmpSocket start: the socket is closed");
  if (watch_.IsActive()) throw Napi::Error::New(env, "IcmpSocket start: already started");
  if (!info[0].IsFunction()) throw Napi::TypeError::New(env, "IcmpSocket start: onReplies must be a function");
  watch_.Start(env, Value(), fd_, UV_READABLE, info[0].As<Napi::Function>(), "nodevmm:icmpsocket", "IcmpSocket start");
  return env.Undefined();
}

// send(dstIPv4, icmpMessage) -> bytes sent or -errno. The message is the whole ICMP message (header + data);
// a ping socket replaces the identifier with its own and recomputes the checksum, a raw socket sends it as is.
Napi::Value IcmpSocket::Send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t dst = ToU32(info[0], "IcmpSocket send: dstIPv4");
  ByteSpan msg = ToBytes(info[1], "IcmpSocket send: icmpMessage");
  if (msg.length < 8) throw Napi::RangeError::New(env, "IcmpSocket send: icmpMessage is shorter than an ICMP header (8 bytes)");
  if (fd_ < 0) return Napi::Number::New(env, -EBADF);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_addr.s_addr = htonl(dst);
  ssize_t n;
  do {
    n = sendto(fd_, msg.data, msg.length, 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
  } while (n < 0 && errno == EINTR);
  return Napi::Number::New(env, n < 0 ? -errno : static_cast<double>(n));
}

Napi::Value IcmpSocket::Close(const Napi::CallbackInfo& info) {
  watch_.Stop();
  if (fd_ >= 0) {
    close(fd_);
    fd_ = -1;
  }
  return info.Env().Undefined();
}

void IcmpSocket::OnWatchTeardown() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

void IcmpSocket::OnReadable(int status) {
  if (fd_ < 0) return;
  Napi::Env env(watch_.Env());
  Napi::Array replies = Napi::Array::New(env);
  uint32_t count = 0;
  for (int reads = 0; reads < kBatch; reads++) {
    sockaddr_in from{};
    iovec iov{scratch_.data(), scratch_.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    msghdr mh{};
    mh.msg_name = &from;
    mh.msg_namelen = sizeof from;
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = control;
    mh.msg_controllen = sizeof control;
    ssize_t n = recvmsg(fd_, &mh, 0);
    if (n < 0) {
      if (errno == EINTR) {
        reads--;
        continue;
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      continue;  // an asynchronous error reported by the socket (it clears on read): skip it
    }
    const uint8_t* msg = scratch_.data();
    size_t len = static_cast<size_t>(n);
    int ttl = -1;
    if (raw_) {
      // Raw sockets deliver the IP header too: take the TTL from it and strip it.
      if (len < 20 || (msg[0] >> 4) != 4) continue;
      size_t ihl = static_cast<size_t>(msg[0] & 0xf) * 4;
      size_t total = (static_cast<size_t>(msg[2]) << 8) | msg[3];
      if (ihl < 20 || total < ihl || total > len) continue;
      ttl = msg[8];
      msg += ihl;
      len = total - ihl;
    } else {
      for (cmsghdr* c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TTL && c->cmsg_len >= CMSG_LEN(sizeof(int))) {
          memcpy(&ttl, CMSG_DATA(c), sizeof(int));
        }
      }
    }
    if (len < 8) continue;
    Napi::Object r = Napi::Object::New(env);
    r.Set("source", Napi::Number::New(env, ntohl(from.sin_addr.s_addr)));
    r.Set("message", Napi::Buffer<uint8_t>::Copy(env, msg, len));
    r.Set("ttl", Napi::Number::New(env, ttl));
    replies.Set(count++, r);
  }
  int error = status < 0 ? status : 0;
  if (count == 0 && error == 0) return;
  if (error != 0) watch_.Stop();
  napi_value args[2] = {replies, Napi::Number::New(env, error)};
  watch_.Deliver(Value(), 2, args);
}

}  // namespace nodevmm
