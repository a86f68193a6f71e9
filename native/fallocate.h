// fallocate(2) for disk image backends: punch holes (discard) and zero ranges (write-zeroes) without writing
// zero blocks. Node's fs has no binding for it.
#pragma once

#include "common.h"

namespace nodevmm {

// fallocate(fd, mode, offset, length) -> Promise<void>, run on the libuv thread pool like Node's fs calls.
// Rejects with a Node-style error (code 'EOPNOTSUPP', errno, syscall 'fallocate'). The returned function
// carries the mode bits it accepts: KEEP_SIZE, PUNCH_HOLE, ZERO_RANGE.
Napi::Function FallocateFunction(Napi::Env env);

}  // namespace nodevmm
