/**
 * IMUL r, r/m (32 and 64 bits) is computed with Numbers (16-bit pieces, no BigInt). Checked here against BigInt
 * arithmetic on edge operands (0, ±1, powers of two around the sign and word boundaries, extremes) and random ones:
 * the truncated result, and CF/OF set exactly when the signed product does not fit the operand size.
 */
import { describe, expect, it } from 'vitest';
import { getRegister } from '../../lib/cpu/index.js';
import { assemble, longModeCpu, reg64 } from './harness.js';

const CF = 1n, OF = 1n << 11n;

function edgeValues(bits: 32 | 64): bigint[] {
  const out = new Set<bigint>([0n, 1n, -1n, 2n, -2n, 3n, 0x7fffn, 0x8000n, 0xffffn, 0x10000n, -0x8000n, -0x10000n]);
  for (const p of [15n, 16n, 17n, 30n, 31n, 32n, 33n, 47n, 48n, 62n, 63n]) {
    if (p >= BigInt(bits)) continue;
    out.add(1n << p); out.add((1n << p) - 1n); out.add(-(1n << p)); out.add(-(1n << p) + 1n); out.add((1n << p) + 1n);
  }
  let x = 0x9e3779b97f4a7c15n;
  for (let k = 0; k < 24; k++) {
    x = (x * 6364136223846793005n + 1442695040888963407n) & ((1n << 64n) - 1n);
    out.add(BigInt.asIntN(bits, x >> BigInt(k % 40)));
  }
  return [...out].map((v) => BigInt.asIntN(bits, v));
}

describe('IMUL two-operand without BigInt', () => {
  for (const bits of [32, 64] as const) {
    it(`imul ${bits === 64 ? 'rax, rbx' : 'eax, ebx'}: result and CF/OF match BigInt`, () => {
      const cpu = longModeCpu(assemble(bits === 64 ? 'imul rax, rbx' : 'imul eax, ebx', 64, 0x100000));
      const values = edgeValues(bits);
      let checked = 0;
      for (const a of values) {
        for (const b of values) {
          const ua = BigInt.asUintN(64, a), ub = BigInt.asUintN(64, b);
          cpu.setReg(0, 8, Number(ua & 0xffffffffn) | 0, Number(ua >> 32n) | 0);
          cpu.setReg(3, 8, Number(ub & 0xffffffffn) | 0, Number(ub >> 32n) | 0);
          cpu.rip = 0x100000;
          cpu.step();
          const full = a * b;
          const want = BigInt.asUintN(bits, full); // a 32-bit result is zero-extended into RAX
          const overflow = BigInt.asIntN(bits, full) !== full;
          const flags = BigInt(getRegister(cpu, 'rflags'));
          const got = reg64(cpu, 0);
          if (got !== want || ((flags & CF) !== 0n) !== overflow || ((flags & OF) !== 0n) !== overflow) {
            expect({ a, b, rax: got, cf: (flags & CF) !== 0n, of: (flags & OF) !== 0n }).toEqual({ a, b, rax: want, cf: overflow, of: overflow });
          }
          checked++;
        }
      }
      expect(checked).toBe(values.length ** 2);
    });
  }
});
