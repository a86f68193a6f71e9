/**
 * System-mode behaviour with small assembled guests: mode switches, paging faults with CR2/error codes, IDT delivery
 * in real, protected and long mode, privilege changes through the TSS, SYSCALL/SYSRET, external interrupts waking
 * HLT, and triple-fault shutdown.
 */
import { describe, expect, it } from 'vitest';
import { Cpu } from '../../lib/cpu/cpu.js';
import { GuestMemory } from '../../lib/machine/guest-memory.js';
import type { CpuInterruptSource } from '../../lib/machine/irq.js';
import { assemble, identityMap, reg64 } from './harness.js';
import { GUESTS, ORG } from './system-guests.js';

function realModeCpu(src: string, memSize = 8 << 20): Cpu {
  const mem = GuestMemory.ofSize(memSize);
  mem.write(ORG, assemble(src, 16, ORG));
  const cpu = new Cpu({ memory: mem });
  // Start at 0000:8000 instead of the reset vector.
  cpu.segSel[1] = 0; cpu.segBase[1] = 0; cpu.rip = ORG;
  return cpu;
}

function longCpu(src: string): Cpu {
  const mem = GuestMemory.ofSize(16 << 20);
  identityMap(mem);
  mem.write(ORG, assemble(src, 16, ORG));
  const cpu = new Cpu({ memory: mem });
  cpu.segSel[1] = 0; cpu.segBase[1] = 0; cpu.rip = ORG;
  return cpu;
}

describe('system mode', () => {
  it('switches real → protected → long mode', () => {
    const cpu = longCpu(GUESTS.modeSwitch);
    const r = cpu.run({ maxInstructions: 10_000 });
    expect(r.reason).toBe('hlt');
    expect(cpu.mode).toBe(64);
    expect(cpu.longMode).toBe(true);
    expect(cpu.segSel[1]).toBe(0x18);
    expect(cpu.memory.readU64(0x9f000)).toBe(0x1122334455667788n);
  });

  it('delivers a real-mode software interrupt through the IVT and returns with IRET', () => {
    const cpu = realModeCpu(GUESTS.realModeIvt);
    expect(cpu.run({ maxInstructions: 1000 }).reason).toBe('hlt');
    expect(cpu.lo[3]! & 0xffff).toBe(15);
    expect(cpu.lo[1]! & 0xffff).toBe(0x4242);
    expect(cpu.lo[4]! & 0xffff).toBe(0x7000);
  });

  it('raises #PF with CR2 and error code for a not-present page and for a read-only page with CR0.WP', () => {
    const cpu = longCpu(GUESTS.pageFault);
    expect(cpu.run({ maxInstructions: 100_000 }).reason).toBe('hlt');
    expect(reg64(cpu, 12)).toBe(2n);
    expect(reg64(cpu, 8)).toBe(0x600123n);
    expect(reg64(cpu, 9)).toBe(0n); // not present, read, supervisor
    expect(reg64(cpu, 10)).toBe(0x800010n);
    expect(reg64(cpu, 11)).toBe(3n); // present | write
  });

  it('enters CPL3 with IRETQ, round-trips SYSCALL/SYSRET, and takes #GP from CPL3 on the TSS RSP0 stack', () => {
    const cpu = longCpu(GUESTS.cpl3Syscall);
    const r = cpu.run({ maxInstructions: 100_000 });
    expect(r.reason).toBe('hlt');
    expect(reg64(cpu, 13)).toBe(107n);
    expect(reg64(cpu, 15)).toBe(0x40000n);
    expect(reg64(cpu, 3) & 0x200n).toBe(0x200n);
    expect(reg64(cpu, 8)).toBe(0x2bn);
    expect(reg64(cpu, 9)).toBe(0n);
    expect(reg64(cpu, 10)).toBe(0x40000n);
    expect(reg64(cpu, 11)).toBe(0x60000n - 40n); // RSP0 minus SS, RSP, RFLAGS, CS, RIP (error code popped)
    expect(cpu.cpl).toBe(0);
  });

  it('uses the IST stack and reports #UD, #DE, #BP (trap: RIP after INT3)', () => {
    const cpu = longCpu(GUESTS.istExceptions);
    expect(cpu.run({ maxInstructions: 100_000 }).reason).toBe('hlt');
    expect(reg64(cpu, 12)).toBe(3n);
    expect(reg64(cpu, 8)).toBe(0x50000n - 40n);
    const divAt = reg64(cpu, 9);
    expect(cpu.memory.readU8(Number(divAt))).toBe(0xf7); // RIP of the faulting DIV
    expect(reg64(cpu, 10)).toBe(BigInt(cpu.rip - 1)); // INT3 pushes the address after itself (the HLT; RIP is now past it)
  });

  it('wakes from HLT on an external interrupt and delivers it through the IDT', () => {
    let pending = false;
    const src: CpuInterruptSource = { hasInterrupt: () => pending, acknowledge: () => { pending = false; return 0x40; } };
    const cpu = longCpu(GUESTS.hltWake);
    cpu.interrupts = src;
    expect(cpu.run({ maxInstructions: 100_000 }).reason).toBe('hlt');
    expect(reg64(cpu, 12)).toBe(0n);
    pending = true;
    expect(cpu.run({ maxInstructions: 100_000 }).reason).toBe('hlt');
    expect(reg64(cpu, 12)).toBe(1n);
    expect(reg64(cpu, 13)).toBe(0x99n);
  });

  it('STI; HLT with an interrupt already pending takes it instead of stopping', () => {
    let pending = true;
    const src: CpuInterruptSource = { hasInterrupt: () => pending, acknowledge: () => { pending = false; return 0x41; } };
    const cpu = longCpu(GUESTS.stiHltPending);
    cpu.interrupts = src;
    expect(cpu.run({ maxInstructions: 100_000 }).reason).toBe('hlt');
    expect(reg64(cpu, 12)).toBe(1n);
    expect(reg64(cpu, 13)).toBe(0x77n);
  });

  it('32-bit protected mode: 2-level paging with a 4 MiB page, #PF error code and 32-bit interrupt gate', () => {
    const cpu = longCpu(GUESTS.paging32);
    expect(cpu.run({ maxInstructions: 100_000 }).reason).toBe('hlt');
    expect(cpu.mode).toBe(32);
    expect(cpu.lo[3]).toBe(0xabcd);
    expect(cpu.lo[1]! >>> 0).toBe(0x812345);
    expect(cpu.lo[2]).toBe(2); // write, not present, supervisor
    expect(cpu.lo[6]! & 0x60).toBe(0x60);
  });

  it('long mode → compatibility mode (32-bit code segment) with a far call, and back with a far return', () => {
    const cpu = longCpu(GUESTS.compatFarCall);
    expect(cpu.run({ maxInstructions: 10_000 }).reason).toBe('hlt');
    expect(cpu.mode).toBe(64);
    expect(reg64(cpu, 12)).toBe(0xcafen);
    expect(reg64(cpu, 2) & 0xffffffffn).toBe(0xcafen);
  });

  it('32-bit PAE paging: 2 MiB and 4 KiB pages, NX fetch fault with the I/D bit', () => {
    const cpu = longCpu(GUESTS.paeNx);
    expect(cpu.run({ maxInstructions: 100_000 }).reason).toBe('hlt');
    expect(cpu.lo[3]! >>> 0).toBe(0x5a5a5a5a);
    expect(cpu.lo[1]! >>> 0).toBe(0x400100);
    expect(cpu.lo[2]).toBe(0x11); // present | instruction fetch
  });

  it('reports a triple fault as a shutdown', () => {
    const cpu = longCpu(GUESTS.tripleFault);
    const r = cpu.run({ maxInstructions: 10_000 });
    expect(r.reason).toBe('shutdown');
  });

  it('CPUID reports the implemented features only and long mode', () => {
    const cpu = longCpu(GUESTS.cpuid);
    expect(cpu.run({ maxInstructions: 10_000 }).reason).toBe('hlt');
    const edx1 = Number(reg64(cpu, 8)), ecx1 = Number(reg64(cpu, 9)), ext = Number(reg64(cpu, 10));
    expect(edx1 & (1 << 26)).not.toBe(0); // SSE2
    expect(ecx1 & (1 << 26)).toBe(0); // no XSAVE
    expect(ecx1 & (1 << 28)).toBe(0); // no AVX
    expect(ext & (1 << 29)).not.toBe(0); // LM
    expect(ext & (1 << 20)).not.toBe(0); // NX
  });
});
