// FNSTENV / FLDENV / FNSAVE / FRSTOR memory images (Intel SDM vol. 1, 8.1.10 and figures 8-9 .. 8-12).
// The caller reads/writes guest memory: it passes a Uint8Array holding (or receiving) the image.

import type { X87 } from './x87.js';

/** Operand size and mode of the environment image. */
export interface EnvFormat {
  /** 32-bit operand size (28-byte environment) vs 16-bit (14-byte). */
  size32: boolean;
  /** Protected/long mode layout (selectors) vs real/virtual-8086 layout (20-bit linear pointers). */
  protectedMode: boolean;
}

export function envSize(f: EnvFormat): number {
  return f.size32 ? 28 : 14;
}
export function saveSize(f: EnvFormat): number {
  return envSize(f) + 80;
}

function w16(b: Uint8Array, o: number, v: number): void {
  b[o] = v & 0xff;
  b[o + 1] = (v >>> 8) & 0xff;
}
function w32(b: Uint8Array, o: number, v: number): void {
  w16(b, o, v & 0xffff);
  w16(b, o + 2, (v >>> 16) & 0xffff);
}
function r16(b: Uint8Array, o: number): number {
  return b[o]! | (b[o + 1]! << 8);
}
function r32(b: Uint8Array, o: number): number {
  return (r16(b, o) | (r16(b, o + 2) << 16)) >>> 0;
}

function need(b: Uint8Array, o: number, n: number, what: string): void {
  if (!Number.isInteger(o) || o < 0 || o + n > b.length) {
    throw new RangeError(`${what}: buffer of ${b.length} bytes cannot hold ${n} bytes at offset ${o}`);
  }
}

/** Writes the environment (without the masking side effect). */
function storeEnv(x: X87, b: Uint8Array, o: number, f: EnvFormat): void {
  const fip = x.fip % 4294967296;
  const fdp = x.fdp % 4294967296;
  if (f.size32) {
    // Reserved upper halves are stored as ones, as Intel processors do.
    w32(b, o, 0xffff0000 | x.cw);
    w32(b, o + 4, 0xffff0000 | x.getSw());
    w32(b, o + 8, 0xffff0000 | x.fullTagWord());
    if (f.protectedMode) {
      w32(b, o + 12, fip);
      w32(b, o + 16, ((x.fop & 0x7ff) << 16) | (x.fcs & 0xffff));
      w32(b, o + 20, fdp);
      w32(b, o + 24, 0xffff0000 | (x.fds & 0xffff));
    } else {
      w32(b, o + 12, 0xffff0000 | (fip & 0xffff));
      w32(b, o + 16, ((fip >>> 16) << 12) | (x.fop & 0x7ff));
      w32(b, o + 20, 0xffff0000 | (fdp & 0xffff));
      w32(b, o + 24, (fdp >>> 16) << 12);
    }
  } else {
    w16(b, o, x.cw);
    w16(b, o + 2, x.getSw());
    w16(b, o + 4, x.fullTagWord());
    if (f.protectedMode) {
      w16(b, o + 6, fip & 0xffff);
      w16(b, o + 8, x.fcs & 0xffff);
      w16(b, o + 10, fdp & 0xffff);
      w16(b, o + 12, x.fds & 0xffff);
    } else {
      w16(b, o + 6, fip & 0xffff);
      w16(b, o + 8, (((fip >>> 16) & 0xf) << 12) | (x.fop & 0x7ff));
      w16(b, o + 10, fdp & 0xffff);
      w16(b, o + 12, ((fdp >>> 16) & 0xf) << 12);
    }
  }
}

function loadEnv(x: X87, b: Uint8Array, o: number, f: EnvFormat): void {
  if (f.size32) {
    x.fldcw(r16(b, o));
    x.setSw(r16(b, o + 4));
    x.setFullTagWord(r16(b, o + 8));
    if (f.protectedMode) {
      x.fip = r32(b, o + 12);
      const w = r32(b, o + 16);
      x.fcs = w & 0xffff;
      x.fop = (w >>> 16) & 0x7ff;
      x.fdp = r32(b, o + 20);
      x.fds = r16(b, o + 24);
    } else {
      const w = r32(b, o + 16);
      x.fip = ((((w >>> 12) & 0xffff) << 16) | r16(b, o + 12)) >>> 0;
      x.fop = w & 0x7ff;
      x.fdp = ((((r32(b, o + 24) >>> 12) & 0xffff) << 16) | r16(b, o + 20)) >>> 0;
      x.fcs = 0;
      x.fds = 0;
    }
  } else {
    x.fldcw(r16(b, o));
    x.setSw(r16(b, o + 2));
    x.setFullTagWord(r16(b, o + 4));
    if (f.protectedMode) {
      x.fip = r16(b, o + 6);
      x.fcs = r16(b, o + 8);
      x.fdp = r16(b, o + 10);
      x.fds = r16(b, o + 12);
    } else {
      const w = r16(b, o + 8);
      x.fip = (((w >>> 12) & 0xf) << 16) | r16(b, o + 6);
      x.fop = w & 0x7ff;
      x.fdp = (((r16(b, o + 12) >>> 12) & 0xf) << 16) | r16(b, o + 10);
    }
  }
  // The loaded status word may carry unmasked exception flags: ES/B follow them.
  if (x.sw & ~x.cw & 0x3f) x.sw |= 0x8080;
  else x.sw &= ~0x8080;
}

/** FNSTENV: stores the environment, then masks all exceptions. */
export function fnstenv(x: X87, b: Uint8Array, o: number, f: EnvFormat): void {
  need(b, o, envSize(f), 'FNSTENV image');
  storeEnv(x, b, o, f);
  x.cw |= 0x3f;
}

/** FLDENV. */
export function fldenv(x: X87, b: Uint8Array, o: number, f: EnvFormat): void {
  need(b, o, envSize(f), 'FLDENV image');
  loadEnv(x, b, o, f);
}

/** FNSAVE: environment + ST0..ST7 (10 bytes each, stack order), then FNINIT. */
export function fnsave(x: X87, b: Uint8Array, o: number, f: EnvFormat): void {
  need(b, o, saveSize(f), 'FNSAVE image');
  storeEnv(x, b, o, f);
  let p = o + envSize(f);
  for (let i = 0; i < 8; i++, p += 10) storeReg80(x, i, b, p);
  x.fninit();
}

/** FRSTOR. */
export function frstor(x: X87, b: Uint8Array, o: number, f: EnvFormat): void {
  need(b, o, saveSize(f), 'FRSTOR image');
  let p = o + envSize(f);
  // Registers are in stack order relative to the TOP being loaded, so load the environment first.
  loadEnv(x, b, o, f);
  for (let i = 0; i < 8; i++, p += 10) loadReg80(x, i, b, p);
}

/** Writes ST(i) as 10 bytes. */
export function storeReg80(x: X87, i: number, b: Uint8Array, p: number): void {
  const r = x.phys(i) * 4;
  w32(b, p, x.regs[r]!);
  w32(b, p + 4, x.regs[r + 1]!);
  w16(b, p + 8, x.regs[r + 2]!);
}
/** Reads 10 bytes into ST(i) (tags are not changed). */
export function loadReg80(x: X87, i: number, b: Uint8Array, p: number): void {
  const r = x.phys(i) * 4;
  x.regs[r] = r32(b, p);
  x.regs[r + 1] = r32(b, p + 4);
  x.regs[r + 2] = r16(b, p + 8);
}
