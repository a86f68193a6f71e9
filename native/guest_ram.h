// GuestRam: anonymous memory that backs guest physical RAM, shared zero-copy with JS as an external ArrayBuffer.
//
// Lifetime: the mapping is reference counted (std::shared_ptr). The ArrayBuffer's finalizer holds one
// reference and every KVM memory slot that points into it holds another, so the address range stays
// mapped while any JS view or memslot exists — a closed VM can never leave a dangling ArrayBuffer.
// close() releases the RAM *contents* immediately by mapping fresh zero pages over the same range
// (MAP_FIXED): JS views stay valid (they read zeros) and the address space is returned on GC.
#pragma once

#include <memory>

#include "common.h"

namespace nodevmm {

// Largest single RAM block: what one JS ArrayBuffer can cover in Node 20.
constexpr uint64_t kMaxGuestRamBlock = 1ull << 32;

struct RamMapping {
  RamMapping(void* a, size_t s) : addr(a), size(s) {}
  ~RamMapping();
  RamMapping(const RamMapping&) = delete;
  RamMapping& operator=(const RamMapping&) = delete;
  // Replace the contents by fresh demand-zero pages (frees the RSS, keeps the range mapped).
  void Discard();

  void* addr;
  size_t size;
};

class GuestRam : public Napi::ObjectWrap<GuestRam> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit GuestRam(const Napi::CallbackInfo& info);

  // The mapping, for a VM memslot; throws if closed.
  std::shared_ptr<RamMapping> Mapping(Napi::Env env) const;

 private:
  Napi::Value Size(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  std::shared_ptr<RamMapping> mapping_;
  bool closed_ = false;
};

}  // namespace nodevmm
