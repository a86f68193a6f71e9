/**
 * The x86 interpreter core: architectural state, memory access through segmentation and a software TLB, the
 * decoded-instruction cache and the run loop. Instruction semantics live in exec/*.ts, page walks in mmu.ts,
 * descriptor loads in segments.ts, interrupt delivery in interrupts.ts.
 *
 * Representation: 64-bit GPRs as two Int32Array halves; RIP and linear addresses as Numbers (in long mode in the
 * canonical signed form, so kernel addresses like 0xffffffff81000000 are -0x7f000000 and stay exact).
 */
import type { Bus } from '../machine/bus.js';
import type { GuestMemory } from '../machine/guest-memory.js';
import type { CpuInterruptSource } from '../machine/irq.js';
import {
  CR0_PE, CR0_PG, CS, DB, DF, EFER_LMA, F_IF, F_TF, GP, NMI, PF, SA_DB, SA_L, SS, SSF, T_GLOBAL, T_RAM, T_RS, T_RU, T_WS, T_WU, T_XS, T_XU, UD,
} from './constants.js';
import { type CpuidConfig } from './cpuid.js';
import './exec/index.js';
import { decode, DECODE_TOO_LONG, Insn } from './decoder/decode.js';
import { compileBlock } from './jit/block-compiler.js';
import { type Encoding } from './decoder/table.js';
import { arithFlags, LazyFlags, setArith } from './flags.js';
import { bindHandler } from './exec/registry.js';
import { deliverEvent } from './interrupts.js';
import { translate } from './mmu.js';
import { CpuMsrs } from './msr.js';
import { SimdUnit } from './simd-bridge.js';
import { SIMD_FEATURES } from './simd/index.js';

/** Thrown (as this one object) to unwind an instruction that raised an architectural exception. */
export const FAULT = { fault: true };
/** Thrown to stop at an instruction boundary on a host request (hook, triple fault). */
export class CpuStop extends Error {}

export type StopReason =
  | { reason: 'count' }
  | { reason: 'hlt' }
  | { reason: 'until' }
  | { reason: 'shutdown'; detail: string }
  | { reason: 'hook'; detail: string }
  | { reason: 'stop' }
  /** Only with `exceptionsToHost`: the instruction at RIP raised this exception (not delivered to the guest). */
  | { reason: 'exception'; vector: number; errorCode: number };

export interface CpuOptions {
  memory: GuestMemory;
  pio?: Bus;
  mmio?: Bus;
  interrupts?: CpuInterruptSource;
  /** Initial mode for standalone use: 'real' (reset state), 'protected32' (flat 32-bit, CPL0) or 'long64' (flat 64-bit CPL0, no paging set up). */
  mode?: 'real' | 'protected32' | 'long64';
  /** TSC source in cycles; default host monotonic time at TSC_HZ. */
  tsc?: () => bigint;
  /** Value of IA32_APIC_BASE reported by RDMSR, or undefined when the platform has no local APIC. */
  apicBase?: bigint;
  /**
   * Platform MSRs (the local APIC: IA32_APIC_BASE, TSC_DEADLINE): consulted first for IA32_APIC_BASE and for every
   * MSR the CPU itself does not implement. readMsr returns undefined / writeMsr false for "not mine" (→ #GP).
   */
  platformMsrs?: PlatformMsrs;
  /** Translate hot blocks into JS functions (default true unless the environment sets NODEVMM_JIT=0). */
  jit?: boolean;
}

export interface PlatformMsrs {
  readMsr(index: number): bigint | undefined;
  writeMsr(index: number, value: bigint): boolean;
}

/** Nominal TSC frequency reported in CPUID 0x15/0x16 and used by the default clock: 1 GHz. */
export const TSC_HZ = 1_000_000_000;

/**
 * Executions of a decoded instruction before a block starting there is translated. A new block runs in V8's
 * bytecode interpreter until V8 optimizes it, so a block pays off only when it then runs very often: at 20000, the
 * reference Linux boot (vmlinux, uncompressed initramfs) translated 145 lukewarm blocks and took ~15% more CPU to
 * /init than with translation off; at 200000 no block is made there, and hot loops still reach it within milliseconds.
 */
const JIT_THRESHOLD = 200_000;

/**
 * Code-epoch increment. Below it: bit 0 is set while CPL = 3 (links followed in user mode must have been recorded in
 * user mode, which cannot execute supervisor-only pages), bits 1-10 are the CPU's index among CPUs sharing a
 * decoded-code cache (so at most EPOCH_CPUS CPUs share one).
 */
const EPOCH_STEP = 2048;
const EPOCH_CPUS = 1024;
/** Epochs stay below this (a Smi on every V8 build); reaching it renumbers the successor links. */
const EPOCH_LIMIT = 0x3fffffff - EPOCH_STEP;

const TLB_BITS = 12;
const TLB_SIZE = 1 << TLB_BITS;
const TLB_MASK = TLB_SIZE - 1;

export type CodeHook = (cpu: Cpu, rip: number) => boolean | void;
export type MemHook = (cpu: Cpu, kind: 'read' | 'write', linear: number, size: number) => void;
export type EventHook = (cpu: Cpu, vector: number, errorCode: number, kind: 'exception' | 'interrupt' | 'software') => void;
export type PortHook = (cpu: Cpu, kind: 'in' | 'out', port: number, size: number, value: number) => void;

export class Cpu {
  readonly memory: GuestMemory;
  pio: Bus | undefined;
  mmio: Bus | undefined;
  interrupts: CpuInterruptSource | undefined;
  readonly tscSource: () => bigint;

  // ---- architectural state ----
  readonly lo = new Int32Array(16);
  readonly hi = new Int32Array(16);
  rip = 0;
  /** Non-arithmetic RFLAGS bits (bit 1 always set); arithmetic bits live in `lf`. */
  flags = 2;
  readonly lf = new LazyFlags();
  readonly segSel = new Uint16Array(8);
  readonly segBase = new Float64Array(8);
  readonly segLimit = new Float64Array(8);
  readonly segAttr = new Int32Array(8);
  cpl = 0;
  cr0 = 0x60000010;
  cr2 = 0;
  cr3 = 0;
  cr4 = 0;
  cr8 = 0;
  efer = 0;
  gdtBase = 0; gdtLimit = 0xffff;
  idtBase = 0; idtLimit = 0x3ff;
  readonly dr = new Float64Array(8);
  readonly msr: CpuMsrs;
  platformMsrs: PlatformMsrs | undefined;
  /** Platform view of CPUID (APIC ID, LAPIC timer features): receives the built-in result, returns what the guest sees. */
  cpuidFilter: ((leaf: number, subleaf: number, r: [number, number, number, number]) => [number, number, number, number]) | undefined;
  /** What CPUID reports (SIMD bits follow what is wired from lib/cpu/simd). */
  cpuidConfig: CpuidConfig;
  readonly simd = new SimdUnit();
  /** Decode mode: 16, 32 or 64. */
  mode = 16;
  halted = false;
  /** Interrupts are inhibited until after the instruction at this RIP boundary (STI / MOV SS). */
  shadow = false;
  nmiPending = false;
  nmiBlocked = false;
  /** XCR0 (only x87|SSE bits accepted when XSAVE is advertised; it is not, so XSETBV is #UD). */
  xcr0 = 1;

  // ---- per-instruction scratch ----
  /** RIP of the next instruction (handlers write it to branch). */
  nextRip = 0;
  /** High half of the last 64-bit value returned by a read. */
  tHi = 0;
  excVector = 0;
  excCode = -1;
  /** Set while an event is being delivered (double-fault detection). */
  delivering = -1;
  /** Description of the exception that started a #DF chain (for the triple-fault report). */
  private firstFault = '';
  icount = 0;

  // ---- TLB ----
  readonly tlbTag = new Float64Array(TLB_SIZE).fill(NaN);
  readonly tlbFlags = new Int32Array(TLB_SIZE);
  readonly tlbPhys = new Float64Array(TLB_SIZE);
  readonly tlbRegion = new Int32Array(TLB_SIZE);
  readonly tlbOff = new Int32Array(TLB_SIZE);
  /** Permission masks for the current CPL (including T_RAM for the fast path). */
  accR = T_RS | T_RAM; accW = T_WS | T_RAM; accX = T_XS | T_RAM;
  private readonly ram: Uint8Array[];
  private readonly ramDv: DataView[];

  // ---- decoded-instruction cache, keyed by physical page ----
  private icache = new Map<number, Array<Insn | undefined>>();
  /** CPUs sharing `icache` (SMP over one RAM): a write by any of them must invalidate the code for all. */
  private codePeers: readonly Cpu[] = [this];
  private lastCodePage = -1;
  private lastCodeArr: Array<Insn | undefined> = [];
  /**
   * Bumped (by EPOCH_STEP) whenever cached successor links between decoded instructions may have become stale. SMP
   * CPUs sharing the decoded-code cache differ in the low bits (their index), so that links one CPU recorded (valid
   * for its own page tables) are never followed by another; bit 0 tells user mode from supervisor mode, so a CPL
   * change switches between two sets of links instead of invalidating them (a system call no longer drops every
   * kernel link). An integer, so the links' epoch fields stay unboxed.
   */
  codeEpoch = 0;
  /** CS base and limit the current successor links were recorded with. */
  private linkCsBase = NaN;
  private linkCsLimit = NaN;

  // ---- hooks ----
  codeHooks: Array<{ begin: number; end: number; fn: CodeHook }> = [];
  memHook: MemHook | undefined;
  eventHook: EventHook | undefined;
  portHook: PortHook | undefined;
  /** Called when an encoding without a handler is executed (before #UD is raised). */
  onUnimplemented: ((cpu: Cpu, insn: Insn) => void) | undefined;
  private stopRequest: string | null = null;
  /** Report guest exceptions to the caller of run() instead of delivering them through the IDT (standalone use). */
  exceptionsToHost = false;
  /**
   * Block translator (lib/cpu/jit): a decoded instruction executed this many times starts a translated block; 0
   * turns translation off. Default from CpuOptions.jit / NODEVMM_JIT=0.
   */
  jitThreshold: number;
  /** Blocks this CPU has translated (statistics). */
  jitBlocks = 0;
  /** Set by a translated block: the fall-through address of the last instruction it executed (for successor links). */
  blockFall = 0;

  constructor(opts: CpuOptions) {
    this.memory = opts.memory;
    this.pio = opts.pio;
    this.mmio = opts.mmio;
    this.interrupts = opts.interrupts;
    this.ram = opts.memory.regions.map((r) => r.bytes);
    this.ramDv = opts.memory.regions.map((r) => new DataView(r.bytes.buffer, r.bytes.byteOffset, r.bytes.byteLength));
    const start = process.hrtime.bigint();
    this.tscSource = opts.tsc ?? (() => process.hrtime.bigint() - start);
    this.msr = new CpuMsrs(opts.apicBase);
    this.platformMsrs = opts.platformMsrs;
    const envJit = Number(process.env.NODEVMM_JIT ?? NaN);
    this.jitThreshold = (opts.jit ?? envJit !== 0) ? (envJit > 1 ? envJit : JIT_THRESHOLD) : 0;
    this.cpuidConfig = { apic: opts.apicBase !== undefined || opts.platformMsrs !== undefined, sse3: SIMD_FEATURES.sse3, ssse3: SIMD_FEATURES.ssse3, sse41: SIMD_FEATURES.sse41 };
    this.reset();
    if (opts.mode === 'protected32') this.setFlatMode(32);
    else if (opts.mode === 'long64') this.setFlatMode(64);
  }

  /** Power-on state (Intel SDM 9.1.1): real mode at F000:FFF0. */
  reset(): void {
    this.lo.fill(0); this.hi.fill(0);
    this.lo[2] = 0x600; // EDX = family/model/stepping signature
    this.flags = 2; setArith(this.lf, 0);
    for (let s = 0; s < 6; s++) { this.segSel[s] = 0; this.segBase[s] = 0; this.segLimit[s] = 0xffff; this.segAttr[s] = 0x93; }
    this.segSel[CS] = 0xf000; this.segBase[CS] = 0xffff0000; this.segAttr[CS] = 0x9b;
    this.segLimit[6] = 0xffff; this.segAttr[6] = 0x82; this.segLimit[7] = 0xffff; this.segAttr[7] = 0x8b;
    this.rip = 0xfff0;
    this.cr0 = 0x60000010; this.cr2 = 0; this.cr3 = 0; this.cr4 = 0; this.cr8 = 0; this.efer = 0;
    this.gdtBase = 0; this.gdtLimit = 0xffff; this.idtBase = 0; this.idtLimit = 0x3ff;
    this.dr.fill(0); this.dr[6] = 0xffff0ff0; this.dr[7] = 0x400;
    this.cpl = 0; this.halted = false; this.shadow = false; this.nmiPending = false; this.nmiBlocked = false;
    this.simd.reset();
    this.msr.reset();
    this.updateMode();
    this.flushTlb(true);
  }

  /** Flat CPL0 segments for standalone use: 32-bit protected mode or 64-bit long mode (no paging for 32). */
  setFlatMode(bits: 32 | 64): void {
    for (let s = 0; s < 6; s++) { this.segBase[s] = 0; this.segLimit[s] = 0xffffffff; this.segAttr[s] = 0xc093; this.segSel[s] = 0x10; }
    this.segSel[CS] = 0x08;
    this.segAttr[CS] = bits === 64 ? 0xa09b : 0xc09b;
    this.cr0 |= CR0_PE | 0x22;
    if (bits === 64) { this.efer |= 0x500; this.cr0 |= CR0_PG; this.cr4 |= 0x20; }
    this.cpl = 0;
    this.updateMode();
  }

  // ---------------------------------------------------------------- modes

  get longMode(): boolean { return (this.efer & EFER_LMA) !== 0; }

  updateMode(): void {
    const prev = this.mode;
    if ((this.efer & EFER_LMA) && (this.segAttr[CS]! & SA_L)) this.mode = 64;
    else if ((this.cr0 & CR0_PE) && (this.segAttr[CS]! & SA_DB)) this.mode = 32;
    else this.mode = 16;
    // Links are keyed by RIP, so they stay valid while the decode mode and CS base and limit stay the same (a
    // SYSCALL/SYSRET or interrupt between flat segments keeps them).
    const base = this.segBase[CS]!, limit = this.segLimit[CS]!;
    if (prev !== this.mode || base !== this.linkCsBase || limit !== this.linkCsLimit) {
      this.lastCodePage = -1;
      this.linkCsBase = base; this.linkCsLimit = limit;
      this.bumpEpoch();
    }
    this.updateAccess();
  }

  updateAccess(): void {
    const user = this.cpl === 3;
    this.codeEpoch = (this.codeEpoch & ~1) | (user ? 1 : 0);
    this.accR = (user ? T_RU : T_RS) | T_RAM;
    this.accW = (user ? T_WU : T_WS) | T_RAM;
    this.accX = (user ? T_XU : T_XS) | T_RAM;
  }

  setCpl(cpl: number): void { this.cpl = cpl; this.updateAccess(); }

  get paging(): boolean { return (this.cr0 & CR0_PG) !== 0 && (this.cr0 & CR0_PE) !== 0; }

  // ---------------------------------------------------------------- registers

  getReg(r: number, os: number): number {
    switch (os) {
      case 1: return r < 16 ? this.lo[r]! & 0xff : (this.lo[r - 16]! >> 8) & 0xff;
      case 2: return this.lo[r]! & 0xffff;
      case 4: return this.lo[r]!;
      default: this.tHi = this.hi[r]!; return this.lo[r]!;
    }
  }

  setReg(r: number, os: number, v: number, vHi: number): void {
    switch (os) {
      case 1:
        if (r < 16) this.lo[r] = (this.lo[r]! & ~0xff) | (v & 0xff);
        else this.lo[r - 16] = (this.lo[r - 16]! & ~0xff00) | ((v & 0xff) << 8);
        return;
      case 2: this.lo[r] = (this.lo[r]! & ~0xffff) | (v & 0xffff); return;
      case 4: this.lo[r] = v; this.hi[r] = 0; return;
      default: this.lo[r] = v; this.hi[r] = vHi;
    }
  }

  /** RFLAGS with the arithmetic flags materialized. */
  getFlags(): number { return (this.flags & ~0x8d5) | arithFlags(this.lf) | 2; }

  /** Set all of RFLAGS (no privilege checks; callers apply POPF/IRET rules). */
  setFlags(v: number): void {
    setArith(this.lf, v);
    this.flags = (v & ~0x8d5 & 0x3f7fd7) | 2;
  }

  // ---------------------------------------------------------------- exceptions

  /** Raise exception `vector` (errorCode -1 = none). Never returns. */
  raise(vector: number, errorCode = -1): never {
    this.excVector = vector;
    this.excCode = errorCode;
    throw FAULT;
  }

  gp(code = 0): never { return this.raise(GP, code); }
  ud(): never { return this.raise(UD); }

  // ---------------------------------------------------------------- addresses

  /** Effective address (offset within segment) of a memory operand: lo returned, hi in tHi (for LEA). */
  effectiveAddress(i: Insn): number {
    const as = i.as;
    if (as === 8) {
      let sum = i.disp >>> 0;
      let h = i.dispHi;
      if (i.ripRel) { sum += this.nextRip >>> 0; h += Math.floor(this.nextRip / 4294967296); }
      if (i.base >= 0) { sum += this.lo[i.base]! >>> 0; h += this.hi[i.base]!; }
      if (i.index >= 0) { sum += (this.lo[i.index]! >>> 0) * (1 << i.scale); h += this.hi[i.index]! << i.scale; }
      this.tHi = (h + Math.floor(sum / 4294967296)) | 0;
      return sum | 0;
    }
    let sum = i.disp;
    if (i.base >= 0) sum += this.lo[i.base]!;
    if (i.index >= 0) sum += this.lo[i.index]! << i.scale;
    this.tHi = 0;
    return as === 4 ? sum | 0 : sum & 0xffff;
  }

  /** Linear address of a memory operand, with segment base, limit and canonical checks. */
  linear(i: Insn, size: number): number {
    const off = this.effectiveAddress(i);
    return this.segLinear(i.seg, off, this.tHi, size, i.as);
  }

  /** Segment offset → linear address. `offHi` is used only for 64-bit addressing. */
  segLinear(seg: number, off: number, offHi: number, size: number, as: number): number {
    if (this.mode === 64) {
      let lin = as === 8 ? offHi * 4294967296 + (off >>> 0) : off >>> 0;
      if (seg >= 4) lin += this.segBase[seg]!;
      if (lin < -0x800000000000 || lin >= 0x800000000000) {
        // Non-canonical (or wrapped around 2^64, which lands back in canonical space).
        if (lin >= 18446603336221196288) lin -= 18446744073709551616;
        else this.raise(seg === SS ? SSF : GP, 0);
      }
      return lin;
    }
    const o = off >>> 0;
    if (o + size - 1 > this.segLimit[seg]! && (this.cr0 & CR0_PE || o + size - 1 > 0xffff)) this.raise(seg === SS ? SSF : GP, 0);
    // ToUint32 (>>> 0) is the modulo 2^32 of this non-negative sum without V8's floating-point fmod call.
    return (this.segBase[seg]! + o) >>> 0;
  }

  /** Current linear address of the instruction pointer. */
  ripLinear(): number {
    return this.mode === 64 ? this.rip : (this.segBase[CS]! + this.rip) >>> 0;
  }

  // ---------------------------------------------------------------- TLB + memory

  flushTlb(includeGlobal: boolean): void {
    this.bumpEpoch();
    if (includeGlobal) { this.tlbTag.fill(NaN); return; }
    const tags = this.tlbTag, fl = this.tlbFlags;
    for (let k = 0; k < TLB_SIZE; k++) if (!(fl[k]! & T_GLOBAL)) tags[k] = NaN;
  }

  invlpg(lin: number): void {
    this.bumpEpoch();
    const vpn = Math.floor(lin / 4096);
    const h = vpn & TLB_MASK;
    if (this.tlbTag[h] === vpn) this.tlbTag[h] = NaN;
  }

  /** Install a translation (called by the page walker). */
  tlbFill(vpn: number, physPage: number, perms: number): void {
    const h = vpn & TLB_MASK;
    const phys = physPage * 4096;
    let region = -1, off = 0;
    const regions = this.memory.regions;
    for (let k = 0; k < regions.length; k++) {
      const r = regions[k]!;
      if (phys >= r.guestAddress && phys + 4096 <= r.guestAddress + r.bytes.length) { region = k; off = phys - r.guestAddress; break; }
    }
    if (region >= 0) perms |= T_RAM;
    if (region >= 0 && (perms & (T_WS | T_WU)) && this.icache.has(physPage)) perms &= ~(T_WS | T_WU) | 0; // code page: writes take the slow path
    this.tlbTag[h] = vpn;
    this.tlbFlags[h] = perms;
    this.tlbPhys[h] = phys;
    this.tlbRegion[h] = region;
    this.tlbOff[h] = off;
  }

  /** Translate `lin` for an access (0 read, 1 write, 2 execute) at the current CPL (or supervisor). Returns TLB slot. */
  tlbLookup(lin: number, access: number, supervisor = false): number {
    const vpn = Math.floor(lin / 4096);
    const h = vpn & TLB_MASK;
    const need = supervisor ? (access === 0 ? T_RS : access === 1 ? T_WS : T_XS) : (access === 0 ? this.accR : access === 1 ? this.accW : this.accX) & ~T_RAM;
    if (this.tlbTag[h] === vpn && (this.tlbFlags[h]! & need) === need) return h;
    translate(this, lin, access, supervisor ? false : this.cpl === 3);
    if (this.tlbTag[h] !== vpn || (this.tlbFlags[h]! & need) !== need) {
      // Write to a code page (permission withheld from the TLB): allowed, but invalidate the decoded code.
      if (access === 1 && this.tlbTag[h] === vpn) { this.invalidatePhysPage(this.tlbPhys[h]! / 4096); this.tlbFlags[h]! |= supervisor ? T_WS : (this.cpl === 3 ? T_WU | T_WS : T_WS); return h; }
      throw new Error(`internal: TLB fill failed for 0x${lin.toString(16)}`);
    }
    return h;
  }

  /** Physical address for a linear address (translating, may fault). */
  physAddr(lin: number, access: number, supervisor = false): number {
    const h = this.tlbLookup(lin, access, supervisor);
    return this.tlbPhys[h]! + (lin & 0xfff);
  }

  read8(lin: number): number {
    const h = Math.floor(lin / 4096) & TLB_MASK;
    if (this.tlbTag[h] === Math.floor(lin / 4096) && (this.tlbFlags[h]! & this.accR) === this.accR && this.memHook === undefined) {
      return this.ram[this.tlbRegion[h]!]![this.tlbOff[h]! + (lin & 0xfff)]!;
    }
    return this.readSlow(lin, 1, false);
  }

  read16(lin: number): number {
    const vpn = Math.floor(lin / 4096);
    const h = vpn & TLB_MASK, o = lin & 0xfff;
    if (this.tlbTag[h] === vpn && (this.tlbFlags[h]! & this.accR) === this.accR && o <= 4094 && this.memHook === undefined) {
      return this.ramDv[this.tlbRegion[h]!]!.getUint16(this.tlbOff[h]! + o, true);
    }
    return this.readSlow(lin, 2, false);
  }

  read32(lin: number): number {
    const vpn = Math.floor(lin / 4096);
    const h = vpn & TLB_MASK, o = lin & 0xfff;
    if (this.tlbTag[h] === vpn && (this.tlbFlags[h]! & this.accR) === this.accR && o <= 4092 && this.memHook === undefined) {
      return this.ramDv[this.tlbRegion[h]!]!.getInt32(this.tlbOff[h]! + o, true);
    }
    return this.readSlow(lin, 4, false);
  }

  /** 64-bit read: low half returned, high half in tHi. */
  read64(lin: number): number {
    const vpn = Math.floor(lin / 4096);
    const h = vpn & TLB_MASK, o = lin & 0xfff;
    if (this.tlbTag[h] === vpn && (this.tlbFlags[h]! & this.accR) === this.accR && o <= 4088 && this.memHook === undefined) {
      const dv = this.ramDv[this.tlbRegion[h]!]!, p = this.tlbOff[h]! + o;
      this.tHi = dv.getInt32(p + 4, true);
      return dv.getInt32(p, true);
    }
    const l = this.readSlow(lin, 4, false);
    this.tHi = this.readSlow(lin + 4, 4, false);
    return l;
  }

  readMem(lin: number, size: number): number {
    switch (size) {
      case 1: return this.read8(lin);
      case 2: return this.read16(lin);
      case 4: return this.read32(lin);
      default: return this.read64(lin);
    }
  }

  write8(lin: number, v: number): void {
    const vpn = Math.floor(lin / 4096);
    const h = vpn & TLB_MASK;
    if (this.tlbTag[h] === vpn && (this.tlbFlags[h]! & this.accW) === this.accW && this.memHook === undefined) {
      this.ram[this.tlbRegion[h]!]![this.tlbOff[h]! + (lin & 0xfff)] = v;
      return;
    }
    this.writeSlow(lin, 1, v, 0, false);
  }

  write16(lin: number, v: number): void {
    const vpn = Math.floor(lin / 4096);
    const h = vpn & TLB_MASK, o = lin & 0xfff;
    if (this.tlbTag[h] === vpn && (this.tlbFlags[h]! & this.accW) === this.accW && o <= 4094 && this.memHook === undefined) {
      this.ramDv[this.tlbRegion[h]!]!.setUint16(this.tlbOff[h]! + o, v, true);
      return;
    }
    this.writeSlow(lin, 2, v, 0, false);
  }

  write32(lin: number, v: number): void {
    const vpn = Math.floor(lin / 4096);
    const h = vpn & TLB_MASK, o = lin & 0xfff;
    if (this.tlbTag[h] === vpn && (this.tlbFlags[h]! & this.accW) === this.accW && o <= 4092 && this.memHook === undefined) {
      this.ramDv[this.tlbRegion[h]!]!.setInt32(this.tlbOff[h]! + o, v, true);
      return;
    }
    this.writeSlow(lin, 4, v, 0, false);
  }

  write64(lin: number, v: number, vHi: number): void {
    const vpn = Math.floor(lin / 4096);
    const h = vpn & TLB_MASK, o = lin & 0xfff;
    if (this.tlbTag[h] === vpn && (this.tlbFlags[h]! & this.accW) === this.accW && o <= 4088 && this.memHook === undefined) {
      const dv = this.ramDv[this.tlbRegion[h]!]!, p = this.tlbOff[h]! + o;
      dv.setInt32(p, v, true); dv.setInt32(p + 4, vHi, true);
      return;
    }
    this.writeSlow(lin, 8, v, vHi, false);
  }

  writeMem(lin: number, size: number, v: number, vHi: number): void {
    switch (size) {
      case 1: this.write8(lin, v); return;
      case 2: this.write16(lin, v); return;
      case 4: this.write32(lin, v); return;
      default: this.write64(lin, v, vHi);
    }
  }

  /**
   * Direct access to the RAM page holding `lin` for bulk string operations: returns the region's bytes (offset of
   * `lin` in tOff), or null when the page is not RAM or a memory hook is installed. Translates (and may fault).
   */
  pageRam(lin: number, write: boolean): Uint8Array | null {
    if (this.memHook !== undefined) return null;
    const h = this.tlbLookup(lin, write ? 1 : 0);
    if (!(this.tlbFlags[h]! & T_RAM)) return null;
    this.tOff = this.tlbOff[h]! + (lin & 0xfff);
    return this.ram[this.tlbRegion[h]!]!;
  }
  /** Offset result of pageRam(). */
  tOff = 0;

  /** Check that [lin, lin+size) is writable without writing (for instructions that must not partially commit). */
  probeWrite(lin: number, size: number): void {
    this.tlbLookup(lin, 1);
    if ((lin & 0xfff) + size > 4096) this.tlbLookup(lin - (lin & 0xfff) + 4096, 1); // CR2 = first byte of the 2nd page
  }

  // Supervisor-mode accesses (descriptor tables, TSS, IDT), independent of CPL.
  readSys(lin: number, size: number): number { return this.readSlow(lin, size, true); }
  writeSys(lin: number, size: number, v: number): void { this.writeSlow(lin, size, v, 0, true); }

  readSlow(lin: number, size: number, sup: boolean): number {
    if (this.memHook) this.memHook(this, 'read', lin, size);
    if ((lin & 0xfff) + size > 4096) {
      let v = 0;
      for (let k = 0; k < size; k++) v |= this.readSlow(lin + k, 1, sup) << (8 * k);
      return size === 4 ? v : v >>> 0;
    }
    const h = this.tlbLookup(lin, 0, sup);
    const fl = this.tlbFlags[h]!;
    const o = lin & 0xfff;
    if (fl & T_RAM) {
      const dv = this.ramDv[this.tlbRegion[h]!]!, p = this.tlbOff[h]! + o;
      return size === 1 ? dv.getUint8(p) : size === 2 ? dv.getUint16(p, true) : dv.getInt32(p, true);
    }
    const phys = this.tlbPhys[h]! + o;
    if (!this.mmio) return size === 4 ? -1 : (1 << (size * 8)) - 1;
    const v = this.mmio.read(phys, size);
    return size === 4 ? v | 0 : v;
  }

  writeSlow(lin: number, size: number, v: number, vHi: number, sup: boolean): void {
    if (this.memHook) this.memHook(this, 'write', lin, size);
    if (size === 8) {
      if ((lin & 0xfff) > 4088) { this.tlbLookup(lin, 1, sup); this.tlbLookup(lin - (lin & 0xfff) + 4096, 1, sup); }
      this.writeSlow(lin, 4, v, 0, sup); this.writeSlow(lin + 4, 4, vHi, 0, sup);
      return;
    }
    if ((lin & 0xfff) + size > 4096) {
      this.tlbLookup(lin, 1, sup); this.tlbLookup(lin - (lin & 0xfff) + 4096, 1, sup);
      for (let k = 0; k < size; k++) this.writeSlow(lin + k, 1, (v >>> (8 * k)) & 0xff, 0, sup);
      return;
    }
    const h = this.tlbLookup(lin, 1, sup);
    const fl = this.tlbFlags[h]!;
    const o = lin & 0xfff;
    if (fl & T_RAM) {
      const dv = this.ramDv[this.tlbRegion[h]!]!, p = this.tlbOff[h]! + o;
      if (size === 1) dv.setUint8(p, v); else if (size === 2) dv.setUint16(p, v, true); else dv.setInt32(p, v, true);
      return;
    }
    this.mmio?.write(this.tlbPhys[h]! + o, size, size === 4 ? v >>> 0 : v & ((1 << (size * 8)) - 1));
  }

  // ---------------------------------------------------------------- decoded-instruction cache

  /** Drop decoded instructions for a physical page (its bytes changed). */
  invalidatePhysPage(ppn: number): void {
    if (this.icache.delete(ppn)) {
      for (const p of this.codePeers) {
        p.bumpEpoch();
        if (ppn === p.lastCodePage) p.lastCodePage = -1;
      }
    }
  }

  /** Advance the code epoch (invalidates successor links); renumbers every link before the epoch leaves int32. */
  bumpEpoch(): void {
    const e = this.codeEpoch + EPOCH_STEP;
    if (e < EPOCH_LIMIT) { this.codeEpoch = e; return; }
    for (const page of this.icache.values()) {
      for (const insn of page) if (insn !== undefined) { insn.fallEpoch = -1; insn.takenEpoch = -1; }
    }
    this.codePeers.forEach((p, k) => { p.codeEpoch = EPOCH_STEP + (p.codePeers.length > 1 ? k << 1 : 0) + (p.cpl === 3 ? 1 : 0); });
  }

  /**
   * SMP: make every CPU in `cpus` (same guest RAM) share one decoded-code cache, so that a write by any of them to a
   * page another one has decoded invalidates it for all. Each CPU's epoch gets distinct low bits (its index), so that
   * successor links one CPU recorded (valid for its own page tables) are never followed by another.
   */
  shareCodeCache(cpus: readonly Cpu[]): void {
    if (cpus.length > EPOCH_CPUS) throw new RangeError(`cpu: at most ${EPOCH_CPUS} CPUs can share a decoded-code cache, got ${cpus.length}`);
    const shared = this.icache;
    cpus.forEach((p, k) => {
      p.icache = shared;
      p.codePeers = cpus;
      p.lastCodePage = -1;
      p.codeEpoch = (Math.floor(p.codeEpoch / EPOCH_STEP) + 1) * EPOCH_STEP + (k << 1) + (p.cpl === 3 ? 1 : 0);
    });
  }

  /** Tell the CPU that guest RAM [phys, phys+length) was written behind its back (device DMA, host loaders). */
  invalidateCode(phys: number, length: number): void {
    if (length <= 0) return;
    for (let p = Math.floor(phys / 4096); p <= Math.floor((phys + length - 1) / 4096); p++) this.invalidatePhysPage(p);
  }

  /** Drop all cached translations and decoded instructions (e.g. after importing state). */
  invalidateAll(): void {
    this.icache.clear(); this.flushTlb(true);
    for (const p of this.codePeers) { p.lastCodePage = -1; p.bumpEpoch(); }
  }

  private fetchLin = 0;
  private readonly fetchByte = (k: number): number => {
    const lin = this.mode === 64 ? this.fetchLin + k : (this.fetchLin + k) >>> 0;
    if (this.mode !== 64 && this.rip + k > this.segLimit[CS]!) this.raise(GP, 0);
    const h = this.tlbLookup(lin, 2);
    const fl = this.tlbFlags[h]!;
    if (fl & T_RAM) return this.ram[this.tlbRegion[h]!]![this.tlbOff[h]! + (lin & 0xfff)]!;
    return this.mmio ? this.mmio.read(this.tlbPhys[h]! + (lin & 0xfff), 1) : 0xff;
  };

  /** The decoded instruction at the current RIP (from the cache when possible). */
  fetch(): Insn {
    const lin = this.ripLinear();
    const vpn = Math.floor(lin / 4096);
    const h = vpn & TLB_MASK;
    const o = lin & 0xfff;
    if (this.tlbTag[h] === vpn && (this.tlbFlags[h]! & this.accX) === this.accX) {
      const ppn = this.tlbPhys[h]! / 4096;
      let arr: Array<Insn | undefined>;
      if (ppn === this.lastCodePage) arr = this.lastCodeArr;
      else {
        const a = this.icache.get(ppn);
        if (a === undefined) return this.decodeAndCache(lin);
        arr = a; this.lastCodePage = ppn; this.lastCodeArr = a;
      }
      const insn = arr[o];
      if (insn !== undefined && insn.mode === this.mode) return insn;
    }
    return this.decodeAndCache(lin);
  }

  private decodeAndCache(lin: number): Insn {
    this.fetchLin = lin;
    const o = lin & 0xfff;
    // Decoded once, into the object that gets cached (a fault while fetching the bytes just drops it).
    const insn = decode(this.fetchByte, this.mode, new Insn());
    if (insn.enc === null) {
      if (insn.error === DECODE_TOO_LONG) this.raise(GP, 0);
      return insn; // handler-less: executes as #UD
    }
    const h = this.tlbLookup(lin, 2);
    const ppn = this.tlbPhys[h]! / 4096;
    // Page-crossing instructions and code outside RAM are decoded at every execution (not cached).
    if (o + insn.len > 4096 || !(this.tlbFlags[h]! & T_RAM)) { this.bind(insn); return insn; }
    insn.cached = true;
    this.bind(insn);
    let arr = this.icache.get(ppn);
    if (arr === undefined) {
      arr = new Array<Insn | undefined>(4096);
      this.icache.set(ppn, arr);
      // The page now holds code: withdraw write permission from its TLB entries (every sharing CPU's) so writes invalidate it.
      const base = ppn * 4096;
      for (const p of this.codePeers) {
        const tags = p.tlbTag, phys = p.tlbPhys, fl = p.tlbFlags;
        for (let k = 0; k < TLB_SIZE; k++) if (phys[k] === base && tags[k] === tags[k]) fl[k] = fl[k]! & ~(T_WS | T_WU);
      }
    }
    arr[o] = insn;
    insn.page = arr; insn.off = o;
    this.lastCodePage = ppn; this.lastCodeArr = arr;
    return insn;
  }

  private bind(insn: Insn): void {
    insn.h = bindHandler(insn.enc as Encoding);
  }

  // ---------------------------------------------------------------- execution

  /** Request run() to return at the next instruction boundary. */
  requestStop(detail = 'stop'): void { this.stopRequest = detail; }

  /** Execute one instruction (or deliver one pending event). */
  step(): StopReason {
    return this.run({ maxInstructions: 1 });
  }

  run(opts: { maxInstructions?: number; until?: number | bigint } = {}): StopReason {
    const max = opts.maxInstructions ?? Infinity;
    const until = opts.until === undefined ? NaN : typeof opts.until === 'bigint' ? Number(BigInt.asIntN(64, opts.until)) : opts.until;
    const start = this.icount;
    this.stopRequest = null;
    while (this.icount - start < max) {
      try {
        // Events at the instruction boundary.
        if (this.nmiPending && !this.nmiBlocked && !this.shadow) {
          this.nmiPending = false; this.nmiBlocked = true; this.halted = false;
          deliverEvent(this, NMI, -1, 'interrupt');
        } else if ((this.flags & F_IF) && !this.shadow && this.interrupts && this.interrupts.hasInterrupt()) {
          this.halted = false;
          const vector = this.interrupts.acknowledge();
          deliverEvent(this, vector, -1, 'interrupt');
        }
        this.shadow = false;
        if (this.halted) return { reason: 'hlt' };
        if (this.rip === until && this.icount !== start) return { reason: 'until' };
        if (this.codeHooks.length && this.runCodeHooks()) return { reason: 'hook', detail: 'code hook' };
        if (this.stopRequest !== null) { const d = this.stopRequest; this.stopRequest = null; return d === 'stop' ? { reason: 'stop' } : { reason: 'hook', detail: d }; }
        this.runBatch(max - (this.icount - start), until);
      } catch (e) {
        if (e !== FAULT) {
          if (e instanceof TripleFault) return { reason: 'shutdown', detail: e.message };
          throw e;
        }
        this.icount++;
        if (this.exceptionsToHost) return { reason: 'exception', vector: this.excVector, errorCode: this.excCode };
        try {
          this.deliverException(this.excVector, this.excCode);
        } catch (e2) {
          if (e2 instanceof TripleFault) return { reason: 'shutdown', detail: e2.message };
          throw e2;
        }
      }
      // HLT: loop back to the event check (an interrupt may already be pending, e.g. after STI; HLT).
      if (this.halted) continue;
      if (this.rip === until) return { reason: 'until' };
      if (this.stopRequest !== null) { const d = this.stopRequest; this.stopRequest = null; return d === 'stop' ? { reason: 'stop' } : { reason: 'hook', detail: d }; }
    }
    return this.halted ? { reason: 'hlt' } : { reason: 'count' };
  }

  /**
   * Run up to `budget` instructions until an event needs the outer loop. Decoded instructions are followed through
   * their successor links while the code epoch is unchanged, so most instructions skip the fetch path.
   */
  private runBatch(budget: number, until: number): void {
    const hooks = this.codeHooks.length > 0;
    const end = this.icount + budget;
    // Translated blocks run several instructions without the per-instruction boundary checks below, so they are
    // used only when none of those checks can fire mid-block: no code hooks, no `until` address, no single-step.
    const jit = this.jitThreshold > 0 && !hooks && until !== until && !(this.flags & F_TF) ? this.jitThreshold : 0;
    let irqCheck = (this.icount | 31) + 1;
    let insn = this.fetch();
    for (;;) {
      let nrip: number, count: number, next: number;
      const blk = insn.block;
      if (blk !== null && jit !== 0 && this.icount + blk.n <= end) {
        insn = blk.run(this, end) as Insn;
        nrip = this.rip; count = this.icount; next = this.blockFall;
      } else {
        const rip = this.rip;
        next = rip + insn.len;
        // `>>> 0`: modulo 2^32 without a floating-point fmod (next is non-negative outside 64-bit mode).
        this.nextRip = this.mode === 64 ? next : this.mode === 32 ? next >>> 0 : next & 0xffff;
        const h = insn.h;
        if (h === null) this.undefinedOpcode(insn);
        else h(this, insn);
        nrip = this.nextRip;
        this.rip = nrip;
        count = ++this.icount;
        if (this.flags & F_TF) this.raise(DB);
        if (jit !== 0 && ++insn.hits === jit && insn.cached) {
          insn.block = compileBlock(insn);
          if (insn.block !== null) this.jitBlocks++;
        }
      }
      // Anything that needs the outer loop: halt, interrupt shadow, hooks, stop requests, until, NMI.
      if (count >= end || this.halted || this.shadow || this.stopRequest !== null || nrip === until || hooks || this.nmiPending) return;
      if (count >= irqCheck) {
        irqCheck = (count | 31) + 1;
        if ((this.flags & F_IF) && this.interrupts !== undefined && this.interrupts.hasInterrupt()) return;
      }
      // Next instruction: through a successor link when valid, else the fetch path (and remember the link).
      // The taken link is keyed by the RIP as an int32 (so the field is never a boxed double): RIPs of 16/32-bit code
      // (below 2^32) map one to one onto int32; a 64-bit RIP outside the int32 range gets no link. `key` is always an
      // int32 (a variable that could also hold the double RIP would make V8 box every non-Smi RIP, one allocation
      // per instruction in 32-bit kernels above 2 GiB).
      const epoch = this.codeEpoch;
      let key = 0, linkable = false;
      if (nrip === next) {
        if (insn.fallEpoch === epoch) { insn = insn.fall!; continue; }
      } else {
        key = nrip | 0;
        linkable = key === nrip || this.mode !== 64;
        if (linkable && insn.takenRip === key && insn.takenEpoch === epoch) { insn = insn.taken!; continue; }
      }
      const nx = this.fetch();
      if (insn.cached && nx.cached) {
        if (nrip === next) { insn.fall = nx; insn.fallEpoch = this.codeEpoch; } else if (linkable) { insn.takenRip = key; insn.taken = nx; insn.takenEpoch = this.codeEpoch; }
      }
      insn = nx;
    }
  }

  private runCodeHooks(): boolean {
    const lin = this.ripLinear();
    for (const hk of this.codeHooks) if (lin >= hk.begin && lin < hk.end && hk.fn(this, lin) === true) return true;
    return false;
  }

  private undefinedOpcode(insn: Insn): never {
    if (insn.enc !== null && this.onUnimplemented) this.onUnimplemented(this, insn);
    return this.raise(UD);
  }

  /** Deliver an exception raised by an instruction, escalating to #DF and triple fault as the SDM prescribes. */
  deliverException(vector: number, code: number): void {
    const prev = this.delivering;
    if (prev < 0 && vector !== DF) this.firstFault = `vector ${vector} (error code ${code}) at rip 0x${this.rip.toString(16)}`;
    if (prev >= 0) {
      if (prev === DF) throw new TripleFault(`triple fault: exception ${vector} while delivering #DF; first fault: ${this.firstFault}`);
      const contributory = (v: number) => v === 0 || (v >= 10 && v <= 13);
      if ((contributory(prev) && contributory(vector)) || (prev === PF && (contributory(vector) || vector === PF))) {
        this.delivering = -1;
        return this.deliverException(DF, 0);
      }
    }
    if (vector === PF) this.eventHook?.(this, vector, code, 'exception');
    else this.eventHook?.(this, vector, code, 'exception');
    this.delivering = vector;
    try {
      deliverEvent(this, vector, code, 'exception');
      this.delivering = -1;
    } catch (e) {
      if (e !== FAULT) { this.delivering = -1; throw e; }
      const v2 = this.excVector, c2 = this.excCode;
      try { this.deliverException(v2, c2); } finally { this.delivering = -1; }
    }
  }

  /** Deliver an external interrupt (from a hook or platform code), as if signalled at the instruction boundary. */
  injectInterrupt(vector: number): void {
    this.halted = false;
    deliverEvent(this, vector, -1, 'interrupt');
  }

  // ---------------------------------------------------------------- time

  readTsc(): bigint { return this.tscSource() + this.msr.tscOffset; }

  // ---------------------------------------------------------------- ports

  portIn(port: number, size: number): number {
    const v = this.pio ? this.pio.read(port, size) : size === 4 ? 0xffffffff : (1 << (size * 8)) - 1;
    this.portHook?.(this, 'in', port, size, v);
    return v;
  }

  portOut(port: number, size: number, v: number): void {
    this.portHook?.(this, 'out', port, size, v);
    this.pio?.write(port, size, v);
  }
}

export class TripleFault extends Error {}

// Silence "declared but never used" for constants only referenced in some builds.
void DB; void CR0_PE; void PF;
