// Scratch lane views for integer SIMD. Operands (Uint32Array + dword offset, n = 2 dwords for MMX or 4 for XMM)
// are copied into these little-endian buffers, worked on as bytes/words/dwords, and copied back — no allocation.

if (new Uint8Array(new Uint32Array([1]).buffer)[0] !== 1) {
  throw new Error('lib/cpu/simd requires a little-endian host (typed-array lane views)');
}

function views(bytes: number) {
  const b = new ArrayBuffer(bytes);
  return {
    u8: new Uint8Array(b),
    i8: new Int8Array(b),
    u16: new Uint16Array(b),
    i16: new Int16Array(b),
    u32: new Uint32Array(b),
    i32: new Int32Array(b),
  };
}

export const A = views(32);
export const B = views(16);
export const R = views(32);

/** Loads the destination operand into A and the source into B. */
export function ld2(da: Uint32Array, d: number, sa: Uint32Array, s: number, n: number): void {
  for (let i = 0; i < n; i++) {
    A.u32[i] = da[d + i]!;
    B.u32[i] = sa[s + i]!;
  }
}
/** Loads one operand into B. */
export function ld1(sa: Uint32Array, s: number, n: number): void {
  for (let i = 0; i < n; i++) B.u32[i] = sa[s + i]!;
}
/** Stores R into the destination. */
export function stR(da: Uint32Array, d: number, n: number): void {
  for (let i = 0; i < n; i++) da[d + i] = R.u32[i]!;
}

export function satS8(v: number): number {
  return v > 127 ? 127 : v < -128 ? -128 : v;
}
export function satU8(v: number): number {
  return v > 255 ? 255 : v < 0 ? 0 : v;
}
export function satS16(v: number): number {
  return v > 32767 ? 32767 : v < -32768 ? -32768 : v;
}
export function satU16(v: number): number {
  return v > 65535 ? 65535 : v < 0 ? 0 : v;
}

/** High 32 bits of the unsigned 64-bit product a * b (a, b u32). */
export function umulhi(a: number, b: number): number {
  const al = a & 0xffff;
  const ah = a >>> 16;
  const bl = b & 0xffff;
  const bh = b >>> 16;
  const ll = al * bl;
  const lh = al * bh;
  const hl = ah * bl;
  const hh = ah * bh;
  const mid = (ll >>> 16) + (lh & 0xffff) + (hl & 0xffff);
  return (hh + Math.floor(lh / 65536) + Math.floor(hl / 65536) + Math.floor(mid / 65536)) >>> 0;
}
