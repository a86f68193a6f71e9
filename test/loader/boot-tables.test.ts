import { describe, expect, it } from 'vitest';
import { GuestMemory } from '../../lib/machine/guest-memory.js';
import { decodeDescriptor, encodeDescriptor, buildBootGdt, BOOT_CS_SELECTOR, BOOT_DS_SELECTOR, BOOT_TSS_SELECTOR, ALT_CS_SELECTOR } from '../../lib/machine/boot/gdt.js';
import { setupLongModeEntry, CR0_PE, CR0_PG, CR4_PAE, EFER_LMA, EFER_LME } from '../../lib/machine/boot/long-mode.js';
import { setupProtectedModeEntry } from '../../lib/machine/boot/protected-mode.js';
import { translateLinear, writeIdentityPageTables } from '../../lib/machine/boot/page-tables.js';
import { buildMpTable, writeMpTable } from '../../lib/machine/boot/mptable.js';
import { bootMsrs, MSR_IA32_MISC_ENABLE, MSR_IA32_PAT } from '../../lib/machine/boot/msrs.js';
import type { BootCpuState, SegmentState } from '../../lib/machine/boot/cpu-state.js';
import { BOOT_GDT_ADDR, BOOT_TSS_ADDR, GiB, MiB, MPTABLE_ADDR, PML4_ADDR } from '../../lib/machine/layout.js';

/** Reads the descriptor a selector refers to from guest memory, as a segment load would. */
function loadFromGdt(mem: GuestMemory, state: BootCpuState, seg: SegmentState, system = false): SegmentState {
  expect(seg.selector & 7).toBe(0); // GDT, RPL 0
  expect(seg.selector + (system && state.mode === 'long' ? 15 : 7)).toBeLessThanOrEqual(state.sregs.gdt.limit);
  return decodeDescriptor(mem.read(state.sregs.gdt.base + seg.selector, system && state.mode === 'long' ? 16 : 8), seg.selector, system && state.mode === 'long');
}

describe('GDT', () => {
  it('encodes and decodes descriptors symmetrically', () => {
    const g = buildBootGdt('long');
    for (const seg of [g.cs, g.ds, g.altCs]) expect(decodeDescriptor(encodeDescriptor(seg), seg.selector)).toEqual(seg);
    expect(decodeDescriptor(encodeDescriptor(g.tr, true), g.tr.selector, true)).toEqual(g.tr);
    // A well-known encoding: flat 64-bit code, accessed = 0x00af9b000000ffff.
    expect(new DataView(encodeDescriptor(g.cs).buffer).getBigUint64(0, true)).toBe(0x00af9b000000ffffn);
    expect(new DataView(encodeDescriptor(g.ds).buffer).getBigUint64(0, true)).toBe(0x00cf93000000ffffn);
    expect(new DataView(encodeDescriptor(g.altCs).buffer).getBigUint64(0, true)).toBe(0x00cf9b000000ffffn);
  });

  it.each(['long', 'protected'] as const)('the GDT written for %s mode matches the hidden segment state', (mode) => {
    const mem = GuestMemory.ofSize(16 * MiB);
    const state = mode === 'long'
      ? setupLongModeEntry(mem, { rip: 0x100200, rsi: 0x7000, identityMapBytes: 16 * MiB })
      : setupProtectedModeEntry(mem, { eip: 0x100000, esi: 0x7000 });
    const s = state.sregs;
    expect(s.gdt.base).toBe(BOOT_GDT_ADDR);
    expect(mem.read(BOOT_GDT_ADDR, 8)).toEqual(new Uint8Array(8)); // null descriptor
    expect(s.cs.selector).toBe(BOOT_CS_SELECTOR);
    for (const r of [s.ds, s.es, s.fs, s.gs, s.ss]) expect(r.selector).toBe(BOOT_DS_SELECTOR);
    for (const r of [s.cs, s.ds, s.es, s.fs, s.gs, s.ss]) expect(loadFromGdt(mem, state, r)).toEqual(r);
    expect(s.tr.selector).toBe(BOOT_TSS_SELECTOR);
    expect(loadFromGdt(mem, state, s.tr, true)).toEqual(s.tr);
    expect(s.tr).toMatchObject({ base: BOOT_TSS_ADDR, limit: 0x67, type: 0xb, s: false, present: true });
    expect(s.ldt.unusable).toBe(true);
    expect(s.cs).toMatchObject({ base: 0, limit: 0xffffffff, type: 0xb, s: true, present: true, dpl: 0, g: true });
    expect(s.ds).toMatchObject({ base: 0, limit: 0xffffffff, type: 0x3, db: true, l: false });
    if (mode === 'long') {
      expect(s.cs.l).toBe(true);
      expect(s.cs.db).toBe(false);
      expect(decodeDescriptor(mem.read(BOOT_GDT_ADDR + ALT_CS_SELECTOR, 8), 8)).toMatchObject({ l: false, db: true });
    } else {
      expect(s.cs.l).toBe(false);
      expect(s.cs.db).toBe(true);
    }
  });
});

describe('long-mode and protected-mode entry state', () => {
  it('long mode: paging on with PAE, LME|LMA, RSI = boot_params, interrupts off', () => {
    const mem = GuestMemory.ofSize(16 * MiB);
    const st = setupLongModeEntry(mem, { rip: 0x1000200, rsi: 0x7000, identityMapBytes: 16 * MiB });
    expect(st.mode).toBe('long');
    expect(st.regs.rip).toBe(0x1000200);
    expect(st.regs.rsi).toBe(0x7000);
    expect(st.regs.rflags).toBe(2);
    expect(st.regs.rsp % 16).toBe(0);
    expect(st.sregs.cr0 & CR0_PE).toBe(CR0_PE);
    expect((st.sregs.cr0 & CR0_PG) >>> 0).toBe(CR0_PG);
    expect(st.sregs.cr4 & CR4_PAE).toBe(CR4_PAE);
    expect(st.sregs.efer).toBe(EFER_LME | EFER_LMA);
    expect(st.sregs.cr3).toBe(PML4_ADDR);
    expect(st.sregs.apicBase).toBe(0xfee00900);
    // The stack is identity mapped and writable.
    expect(translateLinear(mem, st.sregs.cr3, st.regs.rsp - 8)).toBe(st.regs.rsp - 8);
  });

  it('protected mode: PE only, no paging, registers per the 32-bit protocol / multiboot', () => {
    const mem = GuestMemory.ofSize(16 * MiB);
    const st = setupProtectedModeEntry(mem, { eip: 0x100000, eax: 0x2badb002, ebx: 0x7000 });
    expect(st.mode).toBe('protected');
    expect(st.sregs.cr0 & 0x80000001).toBe(1);
    expect(st.sregs.efer).toBe(0);
    expect(st.sregs.cr4).toBe(0);
    expect(st.regs).toMatchObject({ rip: 0x100000, rax: 0x2badb002, rbx: 0x7000, rsi: 0, rdi: 0, rbp: 0, rflags: 2 });
  });
});

describe('identity page tables', () => {
  it('maps [0, RAM) 1:1 with 2 MiB pages and nothing above', () => {
    const mem = GuestMemory.ofSize(64 * MiB);
    const map = writeIdentityPageTables(mem, 64 * MiB);
    expect(map).toEqual({ cr3: PML4_ADDR, mappedBytes: 64 * MiB });
    for (const a of [0, 0x7000, 0x9ff8, 0x100000, 0x1000200, 0x2345678, 64 * MiB - 1]) {
      expect(translateLinear(mem, map.cr3, a)).toBe(a);
    }
    expect(translateLinear(mem, map.cr3, 64 * MiB)).toBeUndefined();
    expect(translateLinear(mem, map.cr3, 0xfee00000)).toBeUndefined();
    // PDE 0: 2 MiB page, present, writable
    expect(mem.readU64(0xb000)).toBe(0x83n);
    expect(mem.readU64(0xb008)).toBe(0x200083n);
  });

  it('spans several page directories for multi-GiB low RAM, leaving the MMIO hole unmapped', () => {
    const mem = GuestMemory.ofSize(1 * MiB); // the tables live below 1 MiB; the mapped RAM need not exist here
    const low = 0xd0000000;
    const map = writeIdentityPageTables(mem, low);
    expect(map.mappedBytes).toBe(low);
    for (const a of [1 * GiB - 1, 1 * GiB, 2 * GiB + 12345, low - 1]) expect(translateLinear(mem, map.cr3, a)).toBe(a);
    expect(translateLinear(mem, map.cr3, low)).toBeUndefined();
    expect(translateLinear(mem, map.cr3, 0xfec00000)).toBeUndefined();
  });

  it('rounds a RAM size that is not a multiple of 2 MiB up', () => {
    const mem = GuestMemory.ofSize(17 * MiB);
    expect(writeIdentityPageTables(mem, 17 * MiB).mappedBytes).toBe(18 * MiB);
    expect(translateLinear(mem, PML4_ADDR, 17 * MiB - 1)).toBe(17 * MiB - 1);
  });
});

/** Parses the MP tables from guest memory the way an OS does: scan, check, walk entries. */
function parseMpTables(mem: GuestMemory) {
  let fp = -1;
  for (let a = 0x9fc00; a < 0xa0000; a += 16) if (new TextDecoder().decode(mem.read(a, 4)) === '_MP_') { fp = a; break; }
  expect(fp).toBeGreaterThanOrEqual(0);
  const sum = (b: Uint8Array) => b.reduce((n, x) => (n + x) & 0xff, 0);
  expect(sum(mem.read(fp, 16))).toBe(0);
  expect(mem.readU8(fp + 8)).toBe(1);
  expect(mem.readU8(fp + 9)).toBe(4);
  expect(mem.readU8(fp + 11)).toBe(0);
  const cfg = mem.readU32(fp + 4);
  expect(new TextDecoder().decode(mem.read(cfg, 4))).toBe('PCMP');
  const len = mem.readU16(cfg + 4);
  expect(sum(mem.read(cfg, len))).toBe(0);
  expect(mem.readU32(cfg + 36)).toBe(0xfee00000);
  const count = mem.readU16(cfg + 34);
  const cpus: { id: number; flags: number; version: number }[] = [];
  const buses: { id: number; type: string }[] = [];
  const ioapics: { id: number; version: number; flags: number; addr: number }[] = [];
  const irqs: { type: number; bus: number; irq: number; apic: number; pin: number }[] = [];
  const lints: { type: number; apic: number; lint: number }[] = [];
  let p = cfg + 44;
  for (let i = 0; i < count; i++) {
    const t = mem.readU8(p);
    if (t === 0) { cpus.push({ id: mem.readU8(p + 1), version: mem.readU8(p + 2), flags: mem.readU8(p + 3) }); p += 20; continue; }
    if (t === 1) buses.push({ id: mem.readU8(p + 1), type: new TextDecoder().decode(mem.read(p + 2, 6)) });
    else if (t === 2) ioapics.push({ id: mem.readU8(p + 1), version: mem.readU8(p + 2), flags: mem.readU8(p + 3), addr: mem.readU32(p + 4) });
    else if (t === 3) irqs.push({ type: mem.readU8(p + 1), bus: mem.readU8(p + 4), irq: mem.readU8(p + 5), apic: mem.readU8(p + 6), pin: mem.readU8(p + 7) });
    else if (t === 4) lints.push({ type: mem.readU8(p + 1), apic: mem.readU8(p + 6), lint: mem.readU8(p + 7) });
    else throw new Error(`unknown MP entry type ${t}`);
    p += 8;
  }
  expect(p - cfg).toBe(len);
  return { fp, cfg, cpus, buses, ioapics, irqs, lints };
}

describe('MP table', () => {
  it.each([1, 4, 254])('describes %i vCPUs with valid checksums', (n) => {
    const mem = GuestMemory.ofSize(16 * MiB);
    const info = writeMpTable(mem, { cpus: n });
    const t = parseMpTables(mem);
    expect(t.fp).toBe(MPTABLE_ADDR);
    expect(info.configTableAddress).toBe(t.cfg);
    expect(t.cpus.map((c) => c.id)).toEqual([...Array(n).keys()]);
    expect(t.cpus[0]!.flags).toBe(3); // enabled + BSP
    for (const c of t.cpus.slice(1)) expect(c.flags).toBe(1);
    expect(t.cpus.every((c) => c.version === 0x14)).toBe(true);
    expect(t.buses).toEqual([{ id: 0, type: 'ISA   ' }]);
    expect(t.ioapics).toEqual([{ id: n, version: 0x11, flags: 1, addr: 0xfec00000 }]);
    // ISA IRQ 0 → pin 2; IRQ 2 (cascade) has no entry; the rest identity.
    const byIrq = new Map(t.irqs.map((i) => [i.irq, i]));
    expect(byIrq.get(0)).toMatchObject({ type: 0, bus: 0, apic: n, pin: 2 });
    expect(byIrq.has(2)).toBe(false);
    for (const irq of [1, 3, 4, 8, 12, 14, 15]) expect(byIrq.get(irq)).toMatchObject({ pin: irq, apic: n });
    expect(t.irqs).toHaveLength(15);
    expect(t.lints).toEqual([{ type: 3, apic: 0xff, lint: 0 }, { type: 1, apic: 0xff, lint: 1 }]);
  });

  it('adds a PCI bus as bus 0 (ISA becomes bus 1) and can keep IRQ 0 on pin 0', () => {
    const mem = GuestMemory.ofSize(16 * MiB);
    writeMpTable(mem, { cpus: 2, pci: true, irq0ToPin2: false });
    const t = parseMpTables(mem);
    expect(t.buses).toEqual([{ id: 0, type: 'PCI   ' }, { id: 1, type: 'ISA   ' }]);
    const isa = t.irqs.filter((i) => i.bus === 1);
    expect(isa).toHaveLength(16);
    expect(isa.every((i) => i.pin === i.irq)).toBe(true);
    // INTA# of PCI slots 1-31, source IRQ (device << 2) | 0 (see test/pci/mptable-intx.test.ts for the routing).
    const pci = t.irqs.filter((i) => i.bus === 0);
    expect(pci.map((i) => i.irq)).toEqual(Array.from({ length: 31 }, (_, k) => (k + 1) << 2));
  });

  it('refuses impossible CPU counts', () => {
    expect(() => buildMpTable({ cpus: 0 })).toThrow(/1\.\.254/);
    expect(() => buildMpTable({ cpus: 255 })).toThrow(/1\.\.254/);
  });
});

describe('boot MSRs', () => {
  it('enables fast strings and sets the power-on PAT', () => {
    const m = new Map(bootMsrs().map((x) => [x.index, x.value]));
    expect(m.get(MSR_IA32_MISC_ENABLE)! & 1n).toBe(1n);
    expect(m.get(MSR_IA32_PAT)).toBe(0x0007040600070406n);
    expect(m.get(0x174)).toBe(0n);
  });
});
