// FXSAVE / FXRSTOR 512-byte images (Intel SDM vol. 2, FXSAVE, tables 3-53 .. 3-56) and conversion to/from KVM's
// `struct kvm_fpu` (KVM_GET_FPU / KVM_SET_FPU), so the VMM can move a vCPU's FPU state into the interpreter and back.

import { MXCSR_MASK, mxcsrValid, type SimdState } from './state.js';
import { loadReg80, storeReg80 } from './x87-env.js';

export const FXSAVE_SIZE = 512;

export interface FxsaveFormat {
  /** REX.W form (FXSAVE64): 64-bit FIP/FDP, no selectors. */
  rexW: boolean;
  /** XMM registers saved: 16 in 64-bit mode, 8 otherwise, 0 when CR4.OSFXSR = 0 (implementation choice). */
  xmmCount: number;
}

function w16(b: Uint8Array, o: number, v: number): void {
  b[o] = v & 0xff;
  b[o + 1] = (v >>> 8) & 0xff;
}
function w32(b: Uint8Array, o: number, v: number): void {
  w16(b, o, v & 0xffff);
  w16(b, o + 2, (v >>> 16) & 0xffff);
}
/** Writes a non-negative integer < 2^53 as a little-endian u64. */
function w64(b: Uint8Array, o: number, v: number): void {
  const hi = Math.floor(v / 4294967296);
  w32(b, o, v - hi * 4294967296);
  w32(b, o + 4, hi);
}
function r16(b: Uint8Array, o: number): number {
  return b[o]! | (b[o + 1]! << 8);
}
function r32(b: Uint8Array, o: number): number {
  return (r16(b, o) | (r16(b, o + 2) << 16)) >>> 0;
}
/** Reads a u64 as a number (exact below 2^53; higher bits are kept approximately). */
function r64(b: Uint8Array, o: number): number {
  return r32(b, o + 4) * 4294967296 + r32(b, o);
}

function need(b: Uint8Array, o: number, n: number, what: string): void {
  if (!Number.isInteger(o) || o < 0 || o + n > b.length) {
    throw new RangeError(`${what}: buffer of ${b.length} bytes cannot hold ${n} bytes at offset ${o}`);
  }
}

/** FXSAVE: writes the 512-byte image (bytes 464-511 are left untouched, as on hardware). */
export function fxsave(st: SimdState, b: Uint8Array, o: number, f: FxsaveFormat): void {
  need(b, o, FXSAVE_SIZE, 'FXSAVE image');
  const x = st.x87;
  w16(b, o, x.cw);
  w16(b, o + 2, x.getSw());
  b[o + 4] = x.ftw & 0xff;
  b[o + 5] = 0;
  w16(b, o + 6, x.fop & 0x7ff);
  if (f.rexW) {
    w64(b, o + 8, x.fip);
    w64(b, o + 16, x.fdp);
  } else {
    w32(b, o + 8, x.fip % 4294967296);
    w16(b, o + 12, x.fcs);
    w16(b, o + 14, 0);
    w32(b, o + 16, x.fdp % 4294967296);
    w16(b, o + 20, x.fds);
    w16(b, o + 22, 0);
  }
  w32(b, o + 24, st.mxcsr);
  w32(b, o + 28, MXCSR_MASK);
  for (let i = 0; i < 8; i++) {
    const p = o + 32 + 16 * i;
    storeReg80(x, i, b, p);
    for (let k = 10; k < 16; k++) b[p + k] = 0;
  }
  for (let r = 0; r < f.xmmCount; r++) {
    for (let j = 0; j < 4; j++) w32(b, o + 160 + 16 * r + 4 * j, st.xmm[r * 4 + j]!);
  }
}

/** FXRSTOR: returns false (load nothing; raise #GP(0)) when the image's MXCSR has reserved bits set. */
export function fxrstor(st: SimdState, b: Uint8Array, o: number, f: FxsaveFormat): boolean {
  need(b, o, FXSAVE_SIZE, 'FXRSTOR image');
  const mx = r32(b, o + 24);
  if (!mxcsrValid(mx)) return false;
  const x = st.x87;
  x.cw = (r16(b, o) & 0x1f3f) | 0x40;
  x.setSw(r16(b, o + 2));
  x.ftw = b[o + 4]!;
  x.fop = r16(b, o + 6) & 0x7ff;
  if (f.rexW) {
    x.fip = r64(b, o + 8);
    x.fdp = r64(b, o + 16);
    x.fcs = 0;
    x.fds = 0;
  } else {
    x.fip = r32(b, o + 8);
    x.fcs = r16(b, o + 12);
    x.fdp = r32(b, o + 16);
    x.fds = r16(b, o + 20);
  }
  if (x.sw & ~x.cw & 0x3f) x.sw |= 0x8080;
  else x.sw &= ~0x8080;
  st.mxcsr = mx;
  for (let i = 0; i < 8; i++) loadReg80(x, i, b, o + 32 + 16 * i);
  for (let r = 0; r < f.xmmCount; r++) {
    for (let j = 0; j < 4; j++) st.xmm[r * 4 + j] = r32(b, o + 160 + 16 * r + 4 * j);
  }
  return true;
}

/** `struct kvm_fpu` as plain data (KVM_GET_FPU / KVM_SET_FPU). */
export interface KvmFpu {
  /** fpr[8][16]: ST0..ST7 in stack order, 10 bytes used per 16-byte slot. */
  fpr: Uint8Array;
  fcw: number;
  fsw: number;
  /** Abridged tag byte (FXSAVE form: bit n = physical register n valid). */
  ftwx: number;
  lastOpcode: number;
  /** last_ip / last_dp as numbers (exact below 2^53). */
  lastIp: number;
  lastDp: number;
  /** xmm[16][16]. */
  xmm: Uint8Array;
  mxcsr: number;
}

/** sizeof(struct kvm_fpu) on x86-64. */
export const KVM_FPU_SIZE = 416;

export function toKvmFpu(st: SimdState): KvmFpu {
  const img = new Uint8Array(FXSAVE_SIZE);
  fxsave(st, img, 0, { rexW: true, xmmCount: 16 });
  const fpr = new Uint8Array(128);
  for (let i = 0; i < 8; i++) fpr.set(img.subarray(32 + 16 * i, 32 + 16 * i + 10), 16 * i);
  return {
    fpr,
    fcw: st.x87.cw,
    fsw: st.x87.getSw(),
    ftwx: st.x87.ftw & 0xff,
    lastOpcode: st.x87.fop,
    lastIp: st.x87.fip,
    lastDp: st.x87.fdp,
    xmm: img.slice(160, 416),
    mxcsr: st.mxcsr >>> 0,
  };
}

/**
 * Loads a kvm_fpu into the state. Throws on malformed input from the VMM (wrong array sizes, non-integer fields).
 * MXCSR bits outside this implementation's mask (e.g. AMD's MM bit 17, which the host CPU may accept) are kept as
 * they are so that a round trip through the interpreter does not change guest state; no operation here uses them.
 */
export function fromKvmFpu(st: SimdState, f: KvmFpu): void {
  if (!(f.fpr instanceof Uint8Array) || f.fpr.length !== 128) throw new TypeError('kvm_fpu.fpr: expected 128 bytes');
  if (!(f.xmm instanceof Uint8Array) || f.xmm.length !== 256) throw new TypeError('kvm_fpu.xmm: expected 256 bytes');
  for (const k of ['fcw', 'fsw', 'ftwx', 'lastOpcode', 'lastIp', 'lastDp', 'mxcsr'] as const) {
    if (!Number.isInteger(f[k]) || f[k] < 0) throw new TypeError(`kvm_fpu.${k}: expected a non-negative integer`);
  }
  const img = new Uint8Array(FXSAVE_SIZE);
  w16(img, 0, f.fcw);
  w16(img, 2, f.fsw);
  img[4] = f.ftwx & 0xff;
  w16(img, 6, f.lastOpcode);
  w64(img, 8, f.lastIp);
  w64(img, 16, f.lastDp);
  w32(img, 24, f.mxcsr & MXCSR_MASK);
  for (let i = 0; i < 8; i++) img.set(f.fpr.subarray(16 * i, 16 * i + 10), 32 + 16 * i);
  img.set(f.xmm, 160);
  // TOP must be set before the registers are placed in stack order: fxrstor loads FSW first.
  fxrstor(st, img, 0, { rexW: true, xmmCount: 16 });
  st.mxcsr = f.mxcsr >>> 0;
}

/** Serialises a KvmFpu into the 416-byte C layout (for the native ioctl wrapper). */
export function encodeKvmFpu(f: KvmFpu): Uint8Array {
  const b = new Uint8Array(KVM_FPU_SIZE);
  b.set(f.fpr, 0);
  w16(b, 128, f.fcw);
  w16(b, 130, f.fsw);
  b[132] = f.ftwx & 0xff;
  w16(b, 134, f.lastOpcode);
  w64(b, 136, f.lastIp);
  w64(b, 144, f.lastDp);
  b.set(f.xmm, 152);
  w32(b, 408, f.mxcsr);
  return b;
}

/** Parses the 416-byte C layout of struct kvm_fpu. */
export function decodeKvmFpu(b: Uint8Array): KvmFpu {
  if (b.length < KVM_FPU_SIZE) throw new RangeError(`kvm_fpu: expected ${KVM_FPU_SIZE} bytes, got ${b.length}`);
  return {
    fpr: b.slice(0, 128),
    fcw: r16(b, 128),
    fsw: r16(b, 130),
    ftwx: b[132]!,
    lastOpcode: r16(b, 134),
    lastIp: r64(b, 136),
    lastDp: r64(b, 144),
    xmm: b.slice(152, 408),
    mxcsr: r32(b, 408),
  };
}
