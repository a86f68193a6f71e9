/**
 * Entry state for the Linux 64-bit boot protocol: long mode with the identity map active, CS = __BOOT_CS
 * (64-bit), DS/ES/SS = __BOOT_DS, interrupts off, RSI = boot_params.
 */

import type { GuestMemory } from '../guest-memory.js';
import { BOOT_STACK_POINTER, LAPIC_ADDR } from '../layout.js';
import { type BootCpuState, zeroGeneralRegisters } from './cpu-state.js';
import { bootSegmentRegisters, writeDescriptorTables } from './gdt.js';
import { bootMsrs, APIC_BASE_BSP, APIC_BASE_ENABLE } from './msrs.js';
import { writeIdentityPageTables } from './page-tables.js';

export const CR0_PE = 1 << 0;
export const CR0_MP = 1 << 1;
export const CR0_ET = 1 << 4;
export const CR0_NE = 1 << 5;
export const CR0_PG = 0x8000_0000;
export const CR4_PAE = 1 << 5;
export const EFER_SCE = 1 << 0;
export const EFER_LME = 1 << 8;
export const EFER_LMA = 1 << 10;

export const BSP_APIC_BASE = (LAPIC_ADDR | APIC_BASE_ENABLE | APIC_BASE_BSP) >>> 0;

export interface LongModeEntry {
  rip: number;
  /** RSI at entry: boot_params for Linux. */
  rsi: number;
  /** Bytes of low memory to identity-map (all RAM below the MMIO hole). */
  identityMapBytes: number;
}

/** Writes GDT/IDT/TSS and page tables into guest memory and returns the matching CPU state. */
export function setupLongModeEntry(mem: GuestMemory, entry: LongModeEntry): BootCpuState {
  const tables = writeDescriptorTables(mem, 'long');
  const map = writeIdentityPageTables(mem, entry.identityMapBytes);
  const regs = zeroGeneralRegisters();
  regs.rip = entry.rip;
  regs.rsi = entry.rsi;
  regs.rsp = BOOT_STACK_POINTER;
  regs.rbp = BOOT_STACK_POINTER;
  return {
    mode: 'long',
    regs,
    sregs: {
      // NE: native x87 error reporting, what every modern kernel runs with; ET is hard-wired to 1.
      cr0: (CR0_PE | CR0_ET | CR0_NE | CR0_PG) >>> 0,
      cr2: 0,
      cr3: map.cr3,
      cr4: CR4_PAE,
      efer: EFER_LME | EFER_LMA,
      ...bootSegmentRegisters(tables),
      apicBase: BSP_APIC_BASE,
    },
    msrs: bootMsrs(),
  };
}
