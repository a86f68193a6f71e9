// Decoder regressions found by the KVM differential run (lib/cpu/diff): 0F 0D needs a memory operand; the CPU
// (AMD EPYC, measured natively at CPL3) runs LFENCE/MFENCE/SFENCE with any ModRM.rm, and, having no WAITPKG (nor does the interpreter's CPUID),
// runs 66 0F AE F0 (TPAUSE on WAITPKG parts) as MFENCE.
import { describe, expect, it } from 'vitest';
import { decode, DECODE_UD, Insn } from '../../lib/cpu/decoder/decode.js';

function dec(bytes: number[], mode = 64): Insn {
  return decode((i) => bytes[i] ?? 0x90, mode, new Insn());
}

describe('0F AE fences', () => {
  it('accept every register ModRM.rm', () => {
    for (let rm = 0; rm < 8; rm++) {
      expect(dec([0x0f, 0xae, 0xe8 + rm]).mnemonic).toBe('lfence');
      expect(dec([0x0f, 0xae, 0xf0 + rm]).mnemonic).toBe('mfence');
      expect(dec([0x0f, 0xae, 0xf8 + rm]).mnemonic).toBe('sfence');
    }
  });
  it('66 0F AE F0..F7 is MFENCE (no WAITPKG), 4 bytes long', () => {
    for (let rm = 0; rm < 8; rm++) {
      const i = dec([0x66, 0x0f, 0xae, 0xf0 + rm]);
      expect([i.mnemonic, i.len, i.error]).toEqual(['mfence', 4, 0]);
    }
  });
  it("0F 0D with a register operand is #UD (memory forms are prefetch hints)", () => {
    expect(dec([0x0f, 0x0d, 0xc8]).error).toBe(DECODE_UD);
    expect(dec([0x0f, 0x0d, 0xdd]).error).toBe(DECODE_UD);
    expect(dec([0x66, 0x41, 0x0f, 0x0d, 0xff]).error).toBe(DECODE_UD);
    expect(dec([0x0f, 0x0d, 0x08]).mnemonic).toBe("prefetchw");
    expect(dec([0x0f, 0x0d, 0x00]).mnemonic).toBe("nop");
  });
  it('prefixed forms with their own meaning keep it', () => {
    expect(dec([0xf3, 0x48, 0x0f, 0xae, 0xe8]).mnemonic).toBe('incsspq');
    expect(dec([0xf3, 0x0f, 0xae, 0xc0]).mnemonic).toBe('rdfsbase');
    expect(dec([0x66, 0x0f, 0xae, 0x38]).mnemonic).toBe('clflushopt');
    expect(dec([0x0f, 0xae, 0x38]).mnemonic).toBe('clflush');
    expect(dec([0x0f, 0xae, 0xc0]).error).toBe(DECODE_UD); // FXSAVE needs a memory operand
  });
});
