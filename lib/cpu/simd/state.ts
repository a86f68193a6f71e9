// Architectural state of the SIMD / floating-point units: XMM0-15, MXCSR and the x87 unit (which also holds the
// MMX registers, aliased onto the x87 significands exactly as on hardware).

import { X87 } from './x87.js';

// MXCSR bits (flag bits 0-5 share their positions with fp-core FE_* and with the x87 status word).
export const MXCSR_IE = 0x0001;
export const MXCSR_DE = 0x0002;
export const MXCSR_ZE = 0x0004;
export const MXCSR_OE = 0x0008;
export const MXCSR_UE = 0x0010;
export const MXCSR_PE = 0x0020;
export const MXCSR_DAZ = 0x0040;
export const MXCSR_IM = 0x0080;
export const MXCSR_DM = 0x0100;
export const MXCSR_ZM = 0x0200;
export const MXCSR_OM = 0x0400;
export const MXCSR_UM = 0x0800;
export const MXCSR_PM = 0x1000;
export const MXCSR_RC_SHIFT = 13;
export const MXCSR_FTZ = 0x8000;
/** Power-on / reset value. */
export const MXCSR_DEFAULT = 0x1f80;
/** Writable bits (FXSAVE MXCSR_MASK): everything in the low 16 bits, DAZ included. */
export const MXCSR_MASK = 0xffff;

/** Return value of an operation that detected an unmasked SIMD floating-point exception: raise #XM (or #UD when
 * CR4.OSXMMEXCPT is clear). The destination was not modified; MXCSR flags were updated. */
export const XM = -1;

/** True when LDMXCSR / FXRSTOR may load v without #GP (no reserved bit set). */
export function mxcsrValid(v: number): boolean {
  return (v & ~MXCSR_MASK) === 0;
}

/** LDMXCSR: returns false (raise #GP(0), nothing loaded) when v has reserved bits set. */
export function ldmxcsr(st: SimdState, v: number): boolean {
  if (!mxcsrValid(v >>> 0)) return false;
  st.mxcsr = v >>> 0;
  return true;
}

export class SimdState {
  /** XMM0-15, 4 little-endian dwords each: XMMn dword j is xmm[n * 4 + j]. */
  readonly xmm = new Uint32Array(16 * 4);
  mxcsr = MXCSR_DEFAULT;
  /** x87 unit; its `regs` array also holds MM0-7 (see X87). */
  readonly x87 = new X87();
  /** Integer results of operations that produce a general-register value (CVT*2SI, PEXTR*, MOVMSK*): lo, hi. */
  readonly ires = new Uint32Array(2);

  /** Processor reset / INIT state of these units. */
  reset(): void {
    this.xmm.fill(0);
    this.mxcsr = MXCSR_DEFAULT;
    this.x87.reset();
    this.ires.fill(0);
  }
}
