// Offsets and sizes of the kernel structures TypeScript decodes, taken from the headers this addon was
// compiled against, so the TS layer never guesses a layout.
#pragma once

#include "common.h"

namespace nodevmm {

Napi::Object RunLayout(Napi::Env env);
Napi::Object StructSizes(Napi::Env env);

}  // namespace nodevmm
