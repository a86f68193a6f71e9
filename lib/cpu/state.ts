/**
 * CPU state import/export in a shape that maps 1:1 onto KVM's kvm_regs / kvm_sregs / kvm_fpu (+ the MSRs the
 * interpreter implements), and stepExternal(): run exactly one instruction on an external state (used to complete
 * instructions KVM's in-kernel emulator cannot).
 */
import type { Bus } from '../machine/bus.js';
import type { GuestMemory } from '../machine/guest-memory.js';
import {
  CS, DS, ES, FS, GS, LDTR, MSR_CSTAR, MSR_EFER, MSR_FS_BASE, MSR_GS_BASE, MSR_KERNEL_GS_BASE, MSR_LSTAR, MSR_MISC_ENABLE,
  MSR_PAT, MSR_SFMASK, MSR_STAR, MSR_SYSENTER_CS, MSR_SYSENTER_EIP, MSR_SYSENTER_ESP, MSR_TSC, MSR_TSC_AUX, SA_DB, SA_G, SA_L,
  SA_P, SA_S, SA_UNUSABLE, SS, TR,
} from './constants.js';
import { Cpu, type StopReason } from './cpu.js';
import { readMsr, writeMsr } from './exec/system.js';
import { numberToU64 } from './msr.js';
import { fromKvmFpu, toKvmFpu, type KvmFpu } from './simd/index.js';

/** struct kvm_segment. */
export interface SegmentState {
  base: bigint;
  limit: number;
  selector: number;
  type: number;
  present: number;
  dpl: number;
  db: number;
  s: number;
  l: number;
  g: number;
  avl: number;
  unusable: number;
}

/** struct kvm_regs. */
export interface RegsState {
  rax: bigint; rbx: bigint; rcx: bigint; rdx: bigint; rsi: bigint; rdi: bigint; rsp: bigint; rbp: bigint;
  r8: bigint; r9: bigint; r10: bigint; r11: bigint; r12: bigint; r13: bigint; r14: bigint; r15: bigint;
  rip: bigint; rflags: bigint;
}

/** struct kvm_sregs (interrupt_bitmap omitted: pending external interrupts stay in the interrupt controller). */
export interface SregsState {
  cs: SegmentState; ds: SegmentState; es: SegmentState; fs: SegmentState; gs: SegmentState; ss: SegmentState;
  tr: SegmentState; ldt: SegmentState;
  gdt: { base: bigint; limit: number };
  idt: { base: bigint; limit: number };
  cr0: bigint; cr2: bigint; cr3: bigint; cr4: bigint; cr8: bigint;
  efer: bigint;
  apicBase: bigint;
}

export interface CpuState {
  regs: RegsState;
  sregs: SregsState;
  fpu: KvmFpu;
  /** MSR index → value, for the MSRs in STATE_MSRS (KVM_GET_MSRS / KVM_SET_MSRS). */
  msrs: Map<number, bigint>;
  /** DR0-DR3, DR6, DR7. */
  debugRegs: bigint[];
  halted: boolean;
  /** STI / MOV SS interrupt shadow (kvm_vcpu_events.interrupt.shadow). */
  interruptShadow: boolean;
  nmiPending: boolean;
}

/** MSRs carried in CpuState.msrs. */
export const STATE_MSRS = [MSR_SYSENTER_CS, MSR_SYSENTER_ESP, MSR_SYSENTER_EIP, MSR_STAR, MSR_LSTAR, MSR_CSTAR, MSR_SFMASK,
  MSR_KERNEL_GS_BASE, MSR_TSC_AUX, MSR_PAT, MSR_MISC_ENABLE, MSR_TSC] as const;

const GPR = ['rax', 'rcx', 'rdx', 'rbx', 'rsp', 'rbp', 'rsi', 'rdi', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15'] as const;

function u64(lo: number, hi: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}

function segOut(cpu: Cpu, s: number): SegmentState {
  const a = cpu.segAttr[s]!;
  return {
    base: numberToU64(cpu.segBase[s]!), limit: cpu.segLimit[s]! >>> 0, selector: cpu.segSel[s]!, type: a & 0xf,
    present: (a >> 7) & 1, dpl: (a >> 5) & 3, db: (a >> 14) & 1, s: (a >> 4) & 1, l: (a >> 13) & 1, g: (a >> 15) & 1,
    avl: (a >> 12) & 1, unusable: (a & SA_UNUSABLE) !== 0 ? 1 : 0,
  };
}

function segIn(cpu: Cpu, s: number, v: SegmentState, field: string): void {
  if (!Number.isInteger(v.selector) || v.selector < 0 || v.selector > 0xffff) throw new RangeError(`CpuState.sregs.${field}.selector: ${v.selector} is not a 16-bit selector`);
  cpu.segSel[s] = v.selector;
  cpu.segBase[s] = Number(BigInt.asIntN(64, v.base));
  cpu.segLimit[s] = v.limit >>> 0;
  cpu.segAttr[s] = (v.type & 0xf) | (v.s ? SA_S : 0) | ((v.dpl & 3) << 5) | (v.present ? SA_P : 0) | (v.avl ? 1 << 12 : 0) |
    (v.l ? SA_L : 0) | (v.db ? SA_DB : 0) | (v.g ? SA_G : 0) | (v.unusable ? SA_UNUSABLE : 0);
}

/** kvm_regs from the interpreter's registers. */
export function exportRegs(cpu: Cpu): RegsState {
  const r = {} as RegsState;
  GPR.forEach((n, k) => { r[n] = u64(cpu.lo[k]!, cpu.hi[k]!); });
  r.rip = numberToU64(cpu.rip);
  r.rflags = BigInt(cpu.getFlags() >>> 0);
  return r;
}

/** kvm_sregs (without interrupt_bitmap) from the interpreter's segment, descriptor-table and control registers. */
export function exportSregs(cpu: Cpu): SregsState {
  return {
    cs: segOut(cpu, CS), ds: segOut(cpu, DS), es: segOut(cpu, ES), fs: segOut(cpu, FS), gs: segOut(cpu, GS), ss: segOut(cpu, SS),
    tr: segOut(cpu, TR), ldt: segOut(cpu, LDTR),
    gdt: { base: numberToU64(cpu.gdtBase), limit: cpu.gdtLimit }, idt: { base: numberToU64(cpu.idtBase), limit: cpu.idtLimit },
    cr0: BigInt(cpu.cr0 >>> 0), cr2: numberToU64(cpu.cr2), cr3: BigInt(cpu.cr3), cr4: BigInt(cpu.cr4 >>> 0), cr8: BigInt(cpu.cr8),
    efer: BigInt(cpu.efer >>> 0), apicBase: cpu.msr.apicBase ?? 0n,
  };
}

/** The STATE_MSRS the interpreter implements; `skip` leaves some out (e.g. MSR_TSC, which reads the clock). */
export function exportMsrs(cpu: Cpu, skip: readonly number[] = []): Map<number, bigint> {
  const msrs = new Map<number, bigint>();
  for (const m of STATE_MSRS) {
    if (skip.includes(m)) continue;
    const v = readMsr(cpu, m);
    if (v !== undefined) msrs.set(m, v);
  }
  return msrs;
}

export function exportState(cpu: Cpu): CpuState {
  return {
    regs: exportRegs(cpu),
    sregs: exportSregs(cpu),
    fpu: toKvmFpu(cpu.simd),
    msrs: exportMsrs(cpu),
    debugRegs: [0, 1, 2, 3, 6, 7].map((k) => numberToU64(cpu.dr[k]!)),
    halted: cpu.halted, interruptShadow: cpu.shadow, nmiPending: cpu.nmiPending,
  };
}

/** kvm_regs → the interpreter's general registers, RIP and RFLAGS (call importSregs first: RIP depends on the mode). */
export function importRegs(cpu: Cpu, regs: RegsState): void {
  GPR.forEach((n, k) => {
    const v = regs[n];
    if (typeof v !== 'bigint') throw new TypeError(`CpuState.regs.${n}: expected a bigint`);
    cpu.lo[k] = Number(BigInt.asIntN(32, v)); cpu.hi[k] = Number(BigInt.asIntN(32, v >> 32n));
  });
  cpu.setFlags(Number(regs.rflags & 0xffffffffn));
  cpu.rip = Number(BigInt.asIntN(64, regs.rip));
  if (cpu.mode !== 64) cpu.rip = Number(regs.rip & 0xffffffffn);
}

/** kvm_sregs → segment, descriptor-table and control registers, EFER, APIC base; sets CPL and the mode. */
export function importSregs(cpu: Cpu, sr: SregsState): void {
  cpu.cr0 = Number(BigInt.asIntN(32, sr.cr0)); cpu.cr2 = Number(BigInt.asIntN(64, sr.cr2)); cpu.cr3 = Number(BigInt.asUintN(52, sr.cr3));
  cpu.cr4 = Number(sr.cr4 & 0xffffffffn); cpu.cr8 = Number(sr.cr8 & 15n); cpu.efer = Number(sr.efer & 0xffffffffn);
  if (cpu.msr.apicBase !== undefined) cpu.msr.apicBase = sr.apicBase;
  segIn(cpu, CS, sr.cs, 'cs'); segIn(cpu, DS, sr.ds, 'ds'); segIn(cpu, ES, sr.es, 'es'); segIn(cpu, FS, sr.fs, 'fs');
  segIn(cpu, GS, sr.gs, 'gs'); segIn(cpu, SS, sr.ss, 'ss'); segIn(cpu, TR, sr.tr, 'tr'); segIn(cpu, LDTR, sr.ldt, 'ldt');
  cpu.gdtBase = Number(BigInt.asIntN(64, sr.gdt.base)); cpu.gdtLimit = sr.gdt.limit & 0xffff;
  cpu.idtBase = Number(BigInt.asIntN(64, sr.idt.base)); cpu.idtLimit = sr.idt.limit & 0xffff;
  // CPL is the DPL of SS (as KVM defines it), 0 in real mode.
  cpu.setCpl(cpu.cr0 & 1 ? sr.ss.dpl & 3 : 0);
  cpu.updateMode();
}

/** MSR values → the interpreter (EFER and FS/GS base are not taken from here: they are part of kvm_sregs). */
export function importMsrs(cpu: Cpu, msrs: ReadonlyMap<number, bigint>): void {
  for (const [k, v] of msrs) if (k !== MSR_EFER && k !== MSR_FS_BASE && k !== MSR_GS_BASE && !writeMsr(cpu, k, v)) throw new RangeError(`CpuState.msrs: MSR 0x${k.toString(16)} value 0x${v.toString(16)} rejected`);
}

export function importState(cpu: Cpu, s: CpuState): void {
  importSregs(cpu, s.sregs);
  importRegs(cpu, s.regs);
  fromKvmFpu(cpu.simd, s.fpu);
  importMsrs(cpu, s.msrs);
  [0, 1, 2, 3, 6, 7].forEach((k, j) => { const v = s.debugRegs[j]; if (v !== undefined) cpu.dr[k] = Number(BigInt.asIntN(64, v)); });
  cpu.halted = s.halted; cpu.shadow = s.interruptShadow; cpu.nmiPending = s.nmiPending;
  cpu.updateMode();
  cpu.invalidateAll();
}

export interface StepExternalOptions {
  pio?: Bus;
  mmio?: Bus;
  /** TSC value source (KVM: the vCPU's TSC). */
  tsc?: () => bigint;
  /**
   * The external CPU's CPUID (KVM: the vCPU's CPUID table): CPUID and feature-gated instructions (CLAC/STAC
   * need SMAP) follow it instead of the interpreter's own. Undefined for a leaf: the interpreter's value.
   */
  cpuid?: (leaf: number, subleaf: number) => [number, number, number, number] | undefined;
}

/**
 * Execute exactly one instruction (or deliver the exception it raises) on `state` against `memory`, returning the
 * new state. Guest memory is modified in place.
 */
export function stepExternal(state: CpuState, memory: GuestMemory, opts: StepExternalOptions = {}): { state: CpuState; stop: StopReason } {
  const cpu = new Cpu({ memory, pio: opts.pio, mmio: opts.mmio, tsc: opts.tsc, apicBase: state.sregs.apicBase });
  const external = opts.cpuid;
  if (external) cpu.cpuidFilter = (leaf, subleaf, builtIn) => external(leaf, subleaf) ?? builtIn;
  importState(cpu, state);
  cpu.halted = false;
  const stop = cpu.step();
  return { state: exportState(cpu), stop };
}
