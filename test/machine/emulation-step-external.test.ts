/**
 * lib/cpu stepExternal as the KVM accelerator uses it to complete failed emulations: with the vCPU's CPUID
 * passed in, feature-gated instructions follow that CPUID rather than the interpreter's own CPU model.
 * CLAC/STAC are the case in point: the interpreter's CPUID has no SMAP (they raise #UD there), but a KVM guest
 * whose CPUID has SMAP may execute them, and completing one must set/clear RFLAGS.AC.
 */
import { describe, expect, it } from 'vitest';
import { Cpu, exportState, stepExternal } from '../../lib/cpu/index.js';
import { GuestMemory } from '../../lib/machine/guest-memory.js';

const CODE = 0x1000;
const AC = 1n << 18n;
const SMAP = 1 << 20;

function setup(bytes: number[], rflags: bigint) {
  const memory = new GuestMemory([{ guestAddress: 0, bytes: new Uint8Array(0x10000) }]);
  memory.regions[0]!.bytes.set(bytes, CODE);
  const cpu = new Cpu({ memory, mode: 'protected32' }); // flat 32-bit, CPL0, no IDT: an exception ends in shutdown
  const state = exportState(cpu);
  state.regs.rip = BigInt(CODE);
  state.regs.rflags = rflags;
  return { memory, state };
}

/** A CPUID table with leaf 7 EBX as given (other leaves: the interpreter's own). */
const leaf7 = (ebx: number) => (leaf: number, subleaf: number): [number, number, number, number] | undefined =>
  leaf === 7 && subleaf === 0 ? [0, ebx, 0, 0] : undefined;

describe('stepExternal honours the external CPUID', () => {
  it('runs stac and clac when that CPUID has SMAP', () => {
    const stac = setup([0x0f, 0x01, 0xcb], 2n);
    const a = stepExternal(stac.state, stac.memory, { cpuid: leaf7(SMAP) });
    expect(a.stop.reason).not.toBe('shutdown');
    expect(a.state.regs.rflags & AC).toBe(AC);
    expect(a.state.regs.rip).toBe(BigInt(CODE + 3));

    const clac = setup([0x0f, 0x01, 0xca], 2n | AC);
    const b = stepExternal(clac.state, clac.memory, { cpuid: leaf7(SMAP) });
    expect(b.state.regs.rflags & AC).toBe(0n);
    expect(b.state.regs.rip).toBe(BigInt(CODE + 3));
  });

  it('raises #UD for them without SMAP (the interpreter\'s own CPUID, or an external one lacking it)', () => {
    for (const cpuid of [undefined, leaf7(0)]) {
      const s = setup([0x0f, 0x01, 0xcb], 2n);
      const r = stepExternal(s.state, s.memory, cpuid ? { cpuid } : {});
      // No IDT here: #UD escalates to a triple fault, reported as shutdown with the first fault's vector (6).
      expect(r.stop.reason).toBe('shutdown');
      expect(r.stop.reason === 'shutdown' ? r.stop.detail : '').toMatch(/vector 6/);
    }
  });

  it('CPUID itself reports the external table', () => {
    const s = setup([0x0f, 0xa2], 2n); // cpuid
    s.state.regs.rax = 7n;
    s.state.regs.rcx = 0n;
    const r = stepExternal(s.state, s.memory, { cpuid: leaf7(SMAP | 1) });
    expect(r.state.regs.rbx).toBe(BigInt(SMAP | 1));
  });
});
