/** The TypeScript-interpreter accelerator (`--accel interp`; lib/accel/select.ts loads createAccelerator). */
export { createAccelerator, InterpAccelerator, type InterpAcceleratorOptions, type InterpTimeSource } from './interp-accelerator.js';
export { GuestClock, type GuestTimeMode } from './guest-time.js';
export { interpCpuidFilter, type InterpCpuidPlatform } from './cpuid.js';
export { SLICE_INSTRUCTIONS, YIELD_MS } from './vcpu-scheduler.js';
