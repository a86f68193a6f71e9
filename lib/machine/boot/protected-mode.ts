/**
 * Entry state for 32-bit flat protected mode with paging off: the Linux 32-bit boot protocol (ESI =
 * boot_params; EBP, EDI, EBX zero) and multiboot v1 (EAX = 0x2BADB002, EBX = info structure). CS is a flat
 * 32-bit code segment at __BOOT_CS, DS/ES/FS/GS/SS flat data at __BOOT_DS, interrupts off.
 */

import type { GuestMemory } from '../guest-memory.js';
import { BOOT_STACK_POINTER } from '../layout.js';
import { type BootCpuState, zeroGeneralRegisters } from './cpu-state.js';
import { bootSegmentRegisters, writeDescriptorTables } from './gdt.js';
import { BSP_APIC_BASE, CR0_ET, CR0_PE } from './long-mode.js';
import { bootMsrs } from './msrs.js';

export interface ProtectedModeEntry {
  eip: number;
  eax?: number;
  ebx?: number;
  esi?: number;
}

/** Writes GDT/IDT/TSS into guest memory and returns the matching CPU state. */
export function setupProtectedModeEntry(mem: GuestMemory, entry: ProtectedModeEntry): BootCpuState {
  const tables = writeDescriptorTables(mem, 'protected');
  const regs = zeroGeneralRegisters();
  regs.rip = entry.eip;
  regs.rax = entry.eax ?? 0;
  regs.rbx = entry.ebx ?? 0;
  regs.rsi = entry.esi ?? 0;
  // Neither protocol defines a stack; a valid one makes an early push or call harmless.
  regs.rsp = BOOT_STACK_POINTER;
  return {
    mode: 'protected',
    regs,
    sregs: {
      cr0: CR0_PE | CR0_ET,
      cr2: 0,
      cr3: 0,
      cr4: 0,
      efer: 0,
      ...bootSegmentRegisters(tables),
      apicBase: BSP_APIC_BASE,
    },
    msrs: bootMsrs(),
  };
}
