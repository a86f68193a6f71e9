// MMX registers alias the x87 physical registers: MMn is the 64-bit significand of physical register Rn.
// Every MMX instruction (except EMMS) sets TOP = 0 and tags all registers valid; a write to MMn sets the register's
// sign/exponent field to all ones (0xFFFF), as on hardware.

import type { X87 } from './x87.js';

/** The x87 → MMX transition performed by every MMX instruction. */
export function mmxEnter(x: X87): void {
  x.top = 0;
  x.ftw = 0xff;
}

/** Marks MMd as written (exponent field all ones). */
export function mmxMark(x: X87, d: number): void {
  x.regs[d * 4 + 2] = 0xffff;
}

/** EMMS: all tags empty. */
export function emms(x: X87): void {
  x.ftw = 0;
}
