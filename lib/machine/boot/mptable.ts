/**
 * Intel MultiProcessor Specification 1.4 tables. Without ACPI this is how a guest learns how many CPUs it
 * has, where the IOAPIC is and how ISA interrupts reach it.
 *
 * The floating pointer ("_MP_") goes at EBDA_START (0x9fc00), which is both the first KiB of the EBDA and the
 * last KiB of base memory, two of the places Linux scans. The configuration table ("PCMP") follows it; with
 * many CPUs it runs past 0xa0000, which is fine: the e820 map reserves everything up to 1 MiB and the region
 * is backed by RAM.
 *
 * With a PCI bus, every slot's INTA# gets an I/O interrupt assignment entry (source bus = PCI bus 0, source IRQ =
 * device << 2 | (pin - 1), level-triggered, active-low) naming the IOAPIC pin lib/pci/intx-routing.ts wires it
 * to, so Linux finds a PCI device's IRQ without ACPI when it does not use MSI-X ("PCI->APIC IRQ transform").
 */

import type { GuestMemory } from '../guest-memory.js';
import { HIGH_MEMORY_START, IOAPIC_ADDR, LAPIC_ADDR, MPTABLE_ADDR } from '../layout.js';
import { PCI_SLOTS } from '../../pci/constants.js';
import { pciIntxGsi } from '../../pci/intx-routing.js';

export const MP_FLOATING_POINTER_SIZE = 16;
export const MP_CONFIG_HEADER_SIZE = 44;
export const MP_SPEC_REV_1_4 = 4;

export const MP_ENTRY_PROCESSOR = 0;
export const MP_ENTRY_BUS = 1;
export const MP_ENTRY_IOAPIC = 2;
export const MP_ENTRY_IO_INTERRUPT = 3;
export const MP_ENTRY_LOCAL_INTERRUPT = 4;
export const MP_PROCESSOR_ENTRY_SIZE = 20;
export const MP_SMALL_ENTRY_SIZE = 8;

export const MP_INT_TYPE_INT = 0;
export const MP_INT_TYPE_NMI = 1;
export const MP_INT_TYPE_EXTINT = 3;

/** I/O interrupt entry flags (MP spec 1.4 §4.3.4): polarity bits 1:0, trigger mode bits 3:2; 0 = conforms to bus. */
export const MP_IRQ_POLARITY_ACTIVE_HIGH = 0x1;
export const MP_IRQ_POLARITY_ACTIVE_LOW = 0x3;
export const MP_IRQ_TRIGGER_EDGE = 0x4;
export const MP_IRQ_TRIGGER_LEVEL = 0xc;
/** PCI bus number of the bus we announce (its MP bus ID is the same number). */
export const MP_PCI_BUS_ID = 0;
/** Slots whose INTA# is announced: all but 0, the host bridge (which has no interrupt pin). */
export const MP_PCI_FIRST_SLOT = 1;

export const MP_CPU_ENABLED = 1;
export const MP_CPU_BSP = 2;

/** xAPIC (integrated local APIC) version; Linux skips legacy IOAPIC-ID fixups for it. */
export const LAPIC_VERSION = 0x14;
/** 82093AA-compatible IOAPIC version register value. */
export const IOAPIC_VERSION = 0x11;
/** CPUID signature written into processor entries: family 6. */
export const MP_CPU_SIGNATURE = 0x600;
/** CPUID.1:EDX features written into processor entries: FPU and APIC. */
export const MP_CPU_FEATURES = (1 << 0) | (1 << 9);
/** All local APICs, in a local interrupt entry. */
export const MP_ALL_LAPICS = 0xff;

export interface MpTableOptions {
  cpus: number;
  /**
   * Add a "PCI   " bus (bus 0; ISA then becomes bus 1, because MP bus IDs of PCI buses are PCI bus numbers) and
   * an INTA# assignment for every slot 1..31 (see pciIntxGsi).
   */
  pci?: boolean;
  /**
   * Route ISA IRQ 0 (the PIT) to IOAPIC pin 2, the PC convention (default true). The interrupt controller
   * must match: for KVM's in-kernel IOAPIC that means GSI routing 0 → pin 2, as QEMU sets up.
   */
  irq0ToPin2?: boolean;
}

export interface MpTableInfo {
  floatingPointerAddress: number;
  configTableAddress: number;
  configTableLength: number;
  ioapicId: number;
  isaBusId: number;
  /** MP bus ID of the PCI bus, when there is one. */
  pciBusId?: number;
  entryCount: number;
}

export function mpChecksum(bytes: Uint8Array): number {
  let sum = 0;
  for (const b of bytes) sum = (sum + b) & 0xff;
  return (0x100 - sum) & 0xff;
}

function ascii(dst: Uint8Array, offset: number, text: string, width: number): void {
  for (let i = 0; i < width; i++) dst[offset + i] = i < text.length ? text.charCodeAt(i) : 0x20;
}

/** Builds both structures; the floating pointer is placed at `address`, the config table right after it. */
export function buildMpTable(options: MpTableOptions, address = MPTABLE_ADDR): { bytes: Uint8Array; info: MpTableInfo } {
  const { cpus } = options;
  if (!Number.isInteger(cpus) || cpus < 1 || cpus > 254) throw new RangeError(`MP table: ${cpus} CPUs (1..254)`);
  const pci = options.pci ?? false;
  const irq0ToPin2 = options.irq0ToPin2 ?? true;
  const isaBusId = pci ? 1 : 0;
  const ioapicId = cpus;
  // ISA IRQ 2 is the 8259 cascade; when IRQ 0 takes IOAPIC pin 2 it gets no entry of its own.
  const isaIrqs = [...Array(16).keys()].filter((irq) => !(irq0ToPin2 && irq === 2));
  const entries: Uint8Array[] = [];
  const small = (): [Uint8Array, DataView] => {
    const e = new Uint8Array(MP_SMALL_ENTRY_SIZE);
    return [e, new DataView(e.buffer)];
  };
  for (let id = 0; id < cpus; id++) {
    const e = new Uint8Array(MP_PROCESSOR_ENTRY_SIZE);
    const dv = new DataView(e.buffer);
    e[0] = MP_ENTRY_PROCESSOR;
    e[1] = id;
    e[2] = LAPIC_VERSION;
    e[3] = MP_CPU_ENABLED | (id === 0 ? MP_CPU_BSP : 0);
    dv.setUint32(4, MP_CPU_SIGNATURE, true);
    dv.setUint32(8, MP_CPU_FEATURES, true);
    entries.push(e);
  }
  const buses: [number, string][] = pci ? [[MP_PCI_BUS_ID, 'PCI'], [isaBusId, 'ISA']] : [[isaBusId, 'ISA']];
  for (const [id, name] of buses) {
    const [e] = small();
    e[0] = MP_ENTRY_BUS;
    e[1] = id;
    ascii(e, 2, name, 6);
    entries.push(e);
  }
  {
    const [e, dv] = small();
    e[0] = MP_ENTRY_IOAPIC;
    e[1] = ioapicId;
    e[2] = IOAPIC_VERSION;
    e[3] = 1; // enabled
    dv.setUint32(4, IOAPIC_ADDR, true);
    entries.push(e);
  }
  for (const irq of isaIrqs) {
    const [e] = small();
    e[0] = MP_ENTRY_IO_INTERRUPT;
    e[1] = MP_INT_TYPE_INT;
    // flags (bytes 2-3) 0: polarity and trigger mode conform to the ISA bus (active high, edge).
    e[4] = isaBusId;
    e[5] = irq;
    e[6] = ioapicId;
    e[7] = irq0ToPin2 && irq === 0 ? 2 : irq;
    entries.push(e);
  }
  if (pci) {
    const pin = 1; // INTA#: every function we build is single-function and uses INTA# only
    for (let device = MP_PCI_FIRST_SLOT; device < PCI_SLOTS; device++) {
      const [e] = small();
      e[0] = MP_ENTRY_IO_INTERRUPT;
      e[1] = MP_INT_TYPE_INT;
      // Spelled out rather than "conforms to bus" (which means the same for PCI): level, active-low.
      e[2] = MP_IRQ_POLARITY_ACTIVE_LOW | MP_IRQ_TRIGGER_LEVEL;
      e[4] = MP_PCI_BUS_ID;
      e[5] = (device << 2) | (pin - 1);
      e[6] = ioapicId;
      e[7] = pciIntxGsi(device, pin);
      entries.push(e);
    }
  }
  for (const [type, lint] of [[MP_INT_TYPE_EXTINT, 0], [MP_INT_TYPE_NMI, 1]] as const) {
    const [e] = small();
    e[0] = MP_ENTRY_LOCAL_INTERRUPT;
    e[1] = type;
    e[4] = isaBusId;
    e[5] = 0;
    e[6] = MP_ALL_LAPICS;
    e[7] = lint;
    entries.push(e);
  }

  const configAddress = address + MP_FLOATING_POINTER_SIZE;
  const configLength = MP_CONFIG_HEADER_SIZE + entries.reduce((n, e) => n + e.length, 0);
  const bytes = new Uint8Array(MP_FLOATING_POINTER_SIZE + configLength);
  const dv = new DataView(bytes.buffer);

  const cfg = bytes.subarray(MP_FLOATING_POINTER_SIZE);
  const cdv = new DataView(cfg.buffer, cfg.byteOffset, cfg.byteLength);
  ascii(cfg, 0, 'PCMP', 4);
  cdv.setUint16(4, configLength, true);
  cfg[6] = MP_SPEC_REV_1_4;
  ascii(cfg, 8, 'NODEVMM', 8);
  ascii(cfg, 16, 'nodevmm', 12);
  cdv.setUint16(34, entries.length, true);
  cdv.setUint32(36, LAPIC_ADDR, true);
  let off = MP_CONFIG_HEADER_SIZE;
  for (const e of entries) {
    cfg.set(e, off);
    off += e.length;
  }
  cfg[7] = mpChecksum(cfg);

  ascii(bytes, 0, '_MP_', 4);
  dv.setUint32(4, configAddress, true);
  bytes[8] = 1; // length in 16-byte units
  bytes[9] = MP_SPEC_REV_1_4;
  // feature byte 1 = 0: a configuration table is present; byte 2 bit 7 clear: virtual wire mode, no IMCR.
  bytes[10] = mpChecksum(bytes.subarray(0, MP_FLOATING_POINTER_SIZE));

  return {
    bytes,
    info: {
      floatingPointerAddress: address,
      configTableAddress: configAddress,
      configTableLength: configLength,
      ioapicId,
      isaBusId,
      ...(pci ? { pciBusId: MP_PCI_BUS_ID } : {}),
      entryCount: entries.length,
    },
  };
}

/** Writes the MP tables at MPTABLE_ADDR. */
export function writeMpTable(mem: GuestMemory, options: MpTableOptions): MpTableInfo {
  const { bytes, info } = buildMpTable(options);
  if (info.floatingPointerAddress + bytes.length > HIGH_MEMORY_START) {
    throw new RangeError('MP table does not fit below 1 MiB');
  }
  mem.write(info.floatingPointerAddress, bytes);
  return info;
}
