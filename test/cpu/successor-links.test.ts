/**
 * The run loop follows successor links between decoded instructions (keyed by RIP, valid for one code epoch) and
 * skips the fetch path's checks when it does. These guests make a link that would be wrong to follow after a
 * privilege or code-segment change and check that the CPU takes the architectural path instead: a page fault for a
 * user-mode fetch from a supervisor page, and the code at the new CS base.
 */
import { describe, expect, it } from 'vitest';
import { CS } from '../../lib/cpu/constants.js';
import { Cpu } from '../../lib/cpu/cpu.js';
import { GuestMemory } from '../../lib/machine/guest-memory.js';
import { assemble, longModeCpu, reg64 } from './harness.js';

describe('successor links', () => {
  it('a link recorded at CPL0 into a supervisor-only page is not followed at CPL3 (#PF on the fetch)', () => {
    const cpu = longModeCpu(assemble('mov rax, 0x400000\njmp rax', 64, 0x100000));
    cpu.memory.write(0x400000, assemble('mov ebx, 7\nhlt', 64, 0x400000));
    // The 2 MiB page at 0x400000 becomes supervisor-only (PD entry 2 without U/S).
    cpu.memory.writeU32(0x3000 + 2 * 8, 0x400000 | 0x83);
    cpu.flushTlb(true);
    // Twice at CPL0: the first pass records the JMP's taken link, the second follows it.
    for (let pass = 0; pass < 2; pass++) {
      cpu.rip = 0x100000; cpu.setReg(3, 8, 0, 0); cpu.halted = false;
      expect(cpu.run({ maxInstructions: 100 }).reason).toBe('hlt');
      expect(reg64(cpu, 3)).toBe(7n);
    }
    cpu.setCpl(3);
    cpu.exceptionsToHost = true;
    cpu.rip = 0x100000; cpu.setReg(3, 8, 0, 0); cpu.halted = false;
    const stop = cpu.run({ maxInstructions: 100 });
    expect(stop).toEqual({ reason: 'exception', vector: 14, errorCode: 0x5 }); // present, user, read (no NX: I/D clear)
    expect(cpu.rip).toBe(0x400000);
    expect(cpu.cr2).toBe(0x400000);
    expect(reg64(cpu, 3)).toBe(0n);
  });

  it('after a CS base change, an indirect jump to the same offset runs the code at the new linear address', () => {
    const mem = GuestMemory.ofSize(1 << 20);
    mem.write(0x1000, assemble('jmp eax', 32, 0x1000));
    mem.write(0x3000, assemble('mov ebx, 1\nhlt', 32, 0x3000));
    mem.write(0x3800, assemble('mov ebx, 2\nhlt', 32, 0x3800));
    const cpu = new Cpu({ memory: mem, mode: 'protected32' });
    const runFrom = (csBase: number): number => {
      // What loading CS does: new hidden base, then the mode update.
      cpu.segBase[CS] = csBase;
      cpu.updateMode();
      cpu.rip = 0x1000 - csBase; // the JMP at linear 0x1000 either way
      cpu.lo[0] = 0x3000; cpu.lo[3] = 0; cpu.halted = false;
      expect(cpu.run({ maxInstructions: 100 }).reason).toBe('hlt');
      return cpu.lo[3]!;
    };
    expect(runFrom(0)).toBe(1);
    expect(runFrom(0)).toBe(1); // the JMP's link to offset 0x3000 (linear 0x3000) is in use now
    expect(runFrom(0x800)).toBe(2); // offset 0x3000 is linear 0x3800 with this base
    expect(runFrom(0)).toBe(1);
  });
});
