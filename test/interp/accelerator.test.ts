/**
 * The interpreter accelerator with small hand-assembled guests (no Linux): power-off detection, triple fault,
 * a PIT interrupt waking a halted CPU (the scheduler sleeps and wakes), requestStop from a device callback,
 * INIT/SIPI starting an AP in real mode with its own APIC ID in CPUID, and DMA-style host writes invalidating
 * decoded code.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { InterpAccelerator } from '../../lib/accel/interp/index.js';
import type { VcpuStop } from '../../lib/accel/accelerator.js';
import { HostClock, TimerGroup } from '../../lib/devices/platform-clock.js';
import { setupProtectedModeEntry } from '../../lib/machine/boot/protected-mode.js';
import { Bus } from '../../lib/machine/bus.js';

const RAM = 2 << 20;
const CODE = 0x10_0000;
const TEST_PORT = 0xe9;

interface Rig {
  accel: InterpAccelerator;
  writes: number[];
  run(): Promise<VcpuStop>;
}

let open: InterpAccelerator[] = [];
afterEach(() => {
  for (const a of open) a.close();
  open = [];
});

/** A machine with `cpus` vCPUs, `code` at CODE (32-bit protected mode, CPL0, flat) and a test port. */
function rig(code: number[], opts: { cpus?: number; extra?: [number, number[]][]; stopOnWrite?: boolean } = {}): Rig {
  const accel = new InterpAccelerator();
  open.push(accel);
  const memory = accel.allocateMemory([{ guestAddress: 0, size: RAM }]);
  const pio = new Bus('pio');
  const mmio = new Bus('mmio');
  accel.attach({ memory, pio, mmio, clock: new HostClock(), timers: new TimerGroup() });
  const writes: number[] = [];
  pio.register(TEST_PORT, 1, {
    read: () => 0,
    write: (_o, _s, v) => {
      writes.push(v);
      if (opts.stopOnWrite ?? true) accel.requestStop();
    },
  }, 'test-port');
  memory.write(CODE, Uint8Array.from(code));
  for (const [addr, bytes] of opts.extra ?? []) memory.write(addr, Uint8Array.from(bytes));
  accel.createVcpus(opts.cpus ?? 1, setupProtectedModeEntry(memory, { eip: CODE }));
  return { accel, writes, run: () => accel.run() };
}

const u32 = (v: number): number[] => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
/** mov dword [addr], imm32 */
const movMem = (addr: number, imm: number): number[] => [0xc7, 0x05, ...u32(addr), ...u32(imm)];
/** out dx-less: mov al, imm8; out TEST_PORT, al */
const outImm = (v: number): number[] => [0xb0, v, 0xe6, TEST_PORT];

describe('InterpAccelerator', () => {
  it('reports power-off when every vCPU halts with interrupts disabled', async () => {
    const r = rig([0xfa, 0xf4]); // cli; hlt
    const stop = await r.run();
    expect(stop.kind).toBe('power-off');
  });

  it('reports a triple fault', async () => {
    // lidt [null IDT descriptor]; ud2 -> #UD cannot be delivered -> #GP -> #DF -> shutdown
    const idtr = CODE + 0x100;
    const r = rig([0x0f, 0x01, 0x1d, ...u32(idtr), 0x0f, 0x0b], { extra: [[idtr, [0, 0, 0, 0, 0, 0]]] });
    const stop = await r.run();
    expect(stop.kind).toBe('triple-fault');
  });

  it('sleeps while halted and wakes on a PIT interrupt; requestStop from a device callback ends run()', async () => {
    const idt = 0x2000;
    const handler = CODE + 0x80;
    const idtr = CODE + 0x100;
    // IDT entry 0x20: 32-bit interrupt gate to `handler` in the boot GDT's code segment (selector from CS).
    const gate = (sel: number): number[] => [handler & 0xff, (handler >> 8) & 0xff, sel & 0xff, sel >> 8, 0, 0x8e, (handler >> 16) & 0xff, handler >>> 24];
    const code = [
      0x0f, 0x01, 0x1d, ...u32(idtr), // lidt [idtr]
      // 8259 master: ICW1..ICW4 (vectors 0x20..), unmask IRQ0 only
      0xb0, 0x11, 0xe6, 0x20, 0xb0, 0x20, 0xe6, 0x21, 0xb0, 0x04, 0xe6, 0x21, 0xb0, 0x01, 0xe6, 0x21, 0xb0, 0xfe, 0xe6, 0x21,
      // PIT channel 0, mode 2, count 11932 (~10 ms)
      0xb0, 0x34, 0xe6, 0x43, 0xb0, 11932 & 0xff, 0xe6, 0x40, 0xb0, 11932 >> 8, 0xe6, 0x40,
      ...outImm(1),
      0xfb, 0xf4, 0xeb, 0xfd, // sti; hlt; jmp back to hlt
    ];
    const handlerCode = [...outImm(2), 0xb0, 0x20, 0xe6, 0x20, 0xcf]; // out 2; EOI; iret
    const accel = new InterpAccelerator();
    open.push(accel);
    const memory = accel.allocateMemory([{ guestAddress: 0, size: RAM }]);
    const pio = new Bus('pio');
    const mmio = new Bus('mmio');
    accel.attach({ memory, pio, mmio, clock: new HostClock(), timers: new TimerGroup() });
    const writes: number[] = [];
    pio.register(TEST_PORT, 1, { read: () => 0, write: (_o, _s, v) => { writes.push(v); if (v === 2) accel.requestStop(); } }, 'test-port');
    const boot = setupProtectedModeEntry(memory, { eip: CODE });
    const cs = boot.sregs.cs.selector;
    memory.write(CODE, Uint8Array.from(code));
    memory.write(handler, Uint8Array.from(handlerCode));
    memory.write(idt + 0x20 * 8, Uint8Array.from(gate(cs)));
    memory.write(idtr, Uint8Array.from([0xff, 0x07, ...u32(idt)]));
    accel.createVcpus(1, boot);
    const stop = await accel.run();
    expect(stop.kind).toBe('stopped');
    expect(writes).toEqual([1, 2]);
    expect(accel.cpus[0]!.halted).toBe(false); // the interrupt woke it before the handler ran
  });

  it('starts an AP with INIT/SIPI in real mode; CPUID reports its own APIC ID', async () => {
    const apCode = [
      0x66, 0xb8, 0x01, 0x00, 0x00, 0x00, // mov eax, 1
      0x0f, 0xa2, // cpuid
      0x66, 0xc1, 0xeb, 0x18, // shr ebx, 24
      0x88, 0xd8, // mov al, bl
      0xe6, TEST_PORT, // out TEST_PORT, al
      0xfa, 0xf4, // cli; hlt
    ];
    const bspCode = [
      0xb8, 0x01, 0x00, 0x00, 0x00, 0x0f, 0xa2, 0xc1, 0xeb, 0x18, 0x88, 0xd8, 0xe6, TEST_PORT, // BSP's APIC ID
      ...movMem(0xfee0_0310, 1 << 24), // ICR high: destination APIC ID 1
      ...movMem(0xfee0_0300, 0x4500), // INIT, assert
      ...movMem(0xfee0_0300, 0x4608), // startup IPI, vector 8 -> 0x8000
      0xfa, 0xf4, // cli; hlt
    ];
    const r = rig(bspCode, { cpus: 2, extra: [[0x8000, apCode]], stopOnWrite: false });
    const stop = await r.run();
    expect(stop.kind).toBe('power-off'); // both halted with IF=0 after reporting
    expect(r.writes).toEqual([0, 1]);
  });

  it('invalidates decoded code when the host writes guest RAM (device DMA)', async () => {
    // out TEST_PORT, [0x3000]; out TEST_PORT, 0x11 (stops the run); jmp back
    const code = [0xa0, ...u32(0x3000), 0xe6, TEST_PORT, 0xb0, 0x11, 0xe6, TEST_PORT, 0xeb, 0xf3];
    const r = rig(code, { extra: [[0x3000, [7]]], stopOnWrite: false });
    const memory = (r.accel as unknown as { memory: { write(a: number, d: Uint8Array): void } }).memory;
    let writes = 0;
    const stopAfterTwo = setInterval(() => { if (r.writes.length >= writes + 2) r.accel.requestStop(); }, 1);
    try {
      writes = 0;
      expect((await r.run()).kind).toBe('stopped');
      expect(r.writes.slice(0, 2)).toEqual([7, 0x11]); // both instructions are now decoded and cached
      // Patch "mov al, 0x11" to "mov al, 0x22" through GuestMemory, as a device's DMA would.
      memory.write(CODE + 8, Uint8Array.from([0x22]));
      writes = r.writes.length;
      expect((await r.run()).kind).toBe('stopped');
      expect(r.writes.slice(writes)).toContain(0x22);
      expect(r.writes.slice(writes)).not.toContain(0x11);
    } finally {
      clearInterval(stopAfterTwo);
    }
  });
});
