/**
 * The initial state of the boot vCPU, described without reference to an accelerator. The KVM accelerator
 * turns it into kvm_regs/kvm_sregs/MSRs; the interpreter loads it into its register file. Segment registers
 * carry their hidden (descriptor cache) part the way kvm_segment does: limit is byte-granular (already
 * scaled by G), type is the 4-bit descriptor type.
 */

import type { BootMsr } from './msrs.js';

export interface SegmentState {
  base: number;
  /** Byte-granular limit (0xffffffff for a flat 4 GiB segment). */
  limit: number;
  selector: number;
  /** Descriptor type field (bits 40..43): 0xb = code execute/read accessed, 0x3 = data read/write accessed. */
  type: number;
  present: boolean;
  dpl: number;
  /** D/B: 32-bit default operand size (must be false for a 64-bit code segment). */
  db: boolean;
  /** S: code/data (true) or system (false) descriptor. */
  s: boolean;
  /** L: 64-bit code segment. */
  l: boolean;
  /** G: limit counted in 4 KiB units in the descriptor. */
  g: boolean;
  avl: boolean;
  /** A null selector loaded into a data segment register, or an unused LDTR. */
  unusable: boolean;
}

export interface TableRegister {
  base: number;
  /** Byte limit, i.e. size - 1. */
  limit: number;
}

export interface GeneralRegisters {
  rax: number; rbx: number; rcx: number; rdx: number;
  rsi: number; rdi: number; rsp: number; rbp: number;
  r8: number; r9: number; r10: number; r11: number;
  r12: number; r13: number; r14: number; r15: number;
  rip: number;
  rflags: number;
}

export interface SystemRegisters {
  cr0: number;
  cr2: number;
  cr3: number;
  cr4: number;
  /** IA32_EFER. */
  efer: number;
  cs: SegmentState; ds: SegmentState; es: SegmentState;
  fs: SegmentState; gs: SegmentState; ss: SegmentState;
  tr: SegmentState; ldt: SegmentState;
  gdt: TableRegister;
  idt: TableRegister;
  /** IA32_APIC_BASE: LAPIC at 0xfee00000, enabled, BSP flag for the boot CPU. */
  apicBase: number;
}

export type CpuMode = 'long' | 'protected';

export interface BootCpuState {
  mode: CpuMode;
  regs: GeneralRegisters;
  sregs: SystemRegisters;
  msrs: readonly BootMsr[];
}

/** RFLAGS with only the always-one bit 1 set: interrupts disabled, DF clear. */
export const RFLAGS_RESERVED = 0x2;

export function zeroGeneralRegisters(): GeneralRegisters {
  return {
    rax: 0, rbx: 0, rcx: 0, rdx: 0, rsi: 0, rdi: 0, rsp: 0, rbp: 0,
    r8: 0, r9: 0, r10: 0, r11: 0, r12: 0, r13: 0, r14: 0, r15: 0,
    rip: 0, rflags: RFLAGS_RESERVED,
  };
}
