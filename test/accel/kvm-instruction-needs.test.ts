/**
 * instructionNeeds(): which instructions make a failed-emulation completion fetch the FPU/SSE state or the MSRs.
 * Misclassifying one as plain would run it on stale state, so the allow-lists are checked from both sides
 * (test/kvm/emulation-completer.test.ts checks the effect on a real vCPU).
 */
import { describe, expect, it } from 'vitest';
import { instructionNeeds } from '../../lib/accel/kvm/instruction-needs.js';

const PLAIN = { fpu: false, msrs: false };
const FPU = { fpu: true, msrs: false };
const MSRS = { fpu: false, msrs: true };
const BOTH = { fpu: true, msrs: true };

const needs = (bytes: number[], longMode = true): ReturnType<typeof instructionNeeds> => instructionNeeds(Uint8Array.from(bytes), longMode);

describe('instructionNeeds', () => {
  it.each([
    ['popcnt rax, rcx', [0xf3, 0x48, 0x0f, 0xb8, 0xc1]],
    ['clac', [0x0f, 0x01, 0xca]],
    ['int3', [0xcc]],
    ['lock cmpxchg16b [rdi]', [0xf0, 0x48, 0x0f, 0xc7, 0x0f]],
    ['movbe eax, [rdi]', [0x0f, 0x38, 0xf0, 0x07]],
    ['crc32 eax, ecx', [0xf2, 0x0f, 0x38, 0xf1, 0xc1]],
    ['lfence', [0x0f, 0xae, 0xe8]],
    ['clflush [rax]', [0x0f, 0xae, 0x38]],
    ['wrfsbase rax', [0xf3, 0x48, 0x0f, 0xae, 0xd0]],
    ['rdtsc', [0x0f, 0x31]],
    ['cpuid', [0x0f, 0xa2]],
    ['mov cr4, rax', [0x0f, 0x22, 0xe0]],
    ['xgetbv', [0x0f, 0x01, 0xd0]],
    ['rdrand eax', [0x0f, 0xc7, 0xf0]],
    ['bswap eax', [0x0f, 0xc8]],
    ['cs-prefixed nop', [0x2e, 0x0f, 0x1f, 0x84, 0, 0, 0, 0, 0]],
    ['32-bit: inc eax (0x40 is not REX)', [0x40], false],
  ] as Array<[string, number[], boolean?]>)('%s: plain', (_n, bytes, longMode) => {
    expect(needs(bytes, longMode ?? true)).toEqual(PLAIN);
  });

  it.each([
    ['pxor xmm0, xmm1', [0x66, 0x0f, 0xef, 0xc1]],
    ['movaps xmm0, [rax]', [0x0f, 0x28, 0x00]],
    ['movq xmm0, rax', [0x66, 0x48, 0x0f, 0x6e, 0xc0]],
    ['pshufb xmm0, xmm1', [0x66, 0x0f, 0x38, 0x00, 0xc1]],
    ['pclmulqdq', [0x66, 0x0f, 0x3a, 0x44, 0xc1, 0x00]],
    ['fld1', [0xd9, 0xe8]],
    ['fwait', [0x9b]],
    ['emms', [0x0f, 0x77]],
    ['fxsave [rax]', [0x0f, 0xae, 0x00]],
    ['xrstor [rax]', [0x0f, 0xae, 0x28]],
    ['xsaves [rax]', [0x0f, 0xc7, 0x28]],
    ['ldmxcsr [rax]', [0x0f, 0xae, 0x10]],
    ['vpxor (VEX C5)', [0xc5, 0xf1, 0xef, 0xc2]],
    ['VEX C4', [0xc4, 0xe2, 0x79, 0x00, 0xc1]],
    ['EVEX 62', [0x62, 0xf1, 0x7d, 0x48, 0xef, 0xc0]],
  ])('%s: FPU/SSE state', (_n, bytes) => {
    expect(needs(bytes)).toEqual(FPU);
  });

  it.each([
    ['wrmsr', [0x0f, 0x30]],
    ['rdmsr', [0x0f, 0x32]],
    ['syscall', [0x0f, 0x05]],
    ['sysret', [0x48, 0x0f, 0x07]],
    ['sysenter', [0x0f, 0x34]],
    ['sysexit', [0x0f, 0x35]],
    ['swapgs', [0x0f, 0x01, 0xf8]],
    ['rdtscp', [0x0f, 0x01, 0xf9]],
    ['rdpid rax', [0xf3, 0x0f, 0xc7, 0xf8]],
  ])('%s: MSRs', (_n, bytes) => {
    expect(needs(bytes)).toEqual(MSRS);
  });

  it.each([
    ['nothing', []],
    ['only prefixes', [0x66, 0xf3]],
    ['0F alone', [0x0f]],
    ['0F 01 without ModRM', [0x0f, 0x01]],
    ['0F AE without ModRM', [0x0f, 0xae]],
  ])('%s (cannot tell): both', (_n, bytes) => {
    expect(needs(bytes)).toEqual(BOTH);
  });

  it('every 0F opcode off the allow-lists needs the FPU state (no plain default)', () => {
    const plain = new Set<number>();
    for (let op = 0; op < 256; op++) {
      if (op === 0x01 || op === 0x38 || op === 0xae || op === 0xc7) continue; // decided by ModRM / third byte
      const r = needs([0x0f, op, 0xc0, 0x00]);
      if (!r.fpu && !r.msrs) plain.add(op);
    }
    // SSE/MMX/3DNow! ranges must not be in the plain set.
    for (const op of [0x0e, 0x0f, 0x10, 0x17, 0x28, 0x2f, 0x50, 0x6f, 0x77, 0x7f, 0xc2, 0xc6, 0xd0, 0xef, 0xff]) expect(plain.has(op)).toBe(false);
    expect(plain.size).toBeGreaterThan(100);
  });
});
