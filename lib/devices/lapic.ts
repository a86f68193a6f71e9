/**
 * Local APIC (xAPIC, version 0x14, six LVT entries) for one interpreter vCPU, at 0xfee00000.
 *
 * One `LocalApic` per CPU. It is a BusDevice for its own register page: the MMIO bus is shared by all vCPUs, so
 * the interpreter maps `LapicMmio` (interrupt-router.ts) once and sets its `currentCpu` to the vCPU it is about to
 * run; `LapicMmio` forwards to that CPU's `LocalApic`. APIC_BASE relocation is recorded and read back but the
 * registers stay at 0xfee00000 (Linux never moves them). x2APIC is not implemented: setting APIC_BASE bit 10
 * is refused (#GP), so CPUID must not advertise it.
 *
 * Interrupt acceptance follows the SDM: fixed/lowest-priority vectors go to IRR (and TMR when level-triggered)
 * if the APIC is hardware- and software-enabled; vectors 0-15 are illegal (ESR). The CPU takes the highest IRR
 * vector whose priority class is above PPR[7:4]; `acknowledge()` moves it to ISR. EOI retires the highest ISR
 * vector and, when it was level-triggered, broadcasts the EOI to the IOAPIC. ExtINT (LINT0 in ExtINT mode, or an
 * ExtINT message from the IOAPIC) takes precedence and is acknowledged on the 8259 PIC. With the APIC globally
 * disabled (APIC_BASE bit 11 clear) the PIC's INT reaches the CPU directly.
 *
 * Reset state follows KVM: every LVT masked except, on the BSP, LINT0 = ExtINT and LINT1 = NMI (the virtual-wire
 * setup a BIOS leaves), SVR 0xff (software-disabled), DFR flat, APs waiting for a startup IPI.
 *
 * Timer: input clock APIC_BUS_HZ (1 GHz) through the divide configuration; one-shot, periodic and TSC-deadline
 * (IA32_TSC_DEADLINE, MSR 0x6e0) modes. All counts are functions of virtual time (platform-clock.ts); due
 * interrupts are raised by `poll(nowNs)` and by register accesses.
 */
import type { BusDevice } from '../machine/bus.js';
import type { CpuInterruptSource } from '../machine/irq.js';
import { APIC_BUS_HZ, NS_PER_SECOND, nsFromTsc, tscFromNs, type PlatformClock, type TimedDevice } from './platform-clock.js';

export const LAPIC_BASE = 0xfee0_0000;
export const LAPIC_SIZE = 0x1000;
export const MSR_IA32_APIC_BASE = 0x1b;
export const MSR_IA32_TSC_DEADLINE = 0x6e0;

/** The delivery modes of the ICR, IOAPIC redirection entries, LVTs and MSI data. */
export const DeliveryMode = {
  Fixed: 0,
  LowestPriority: 1,
  Smi: 2,
  Nmi: 4,
  Init: 5,
  Startup: 6,
  ExtInt: 7,
} as const;

/** An interrupt message on the APIC bus (from the IOAPIC, an MSI, or an ICR write). */
export interface ApicMessage {
  vector: number;
  /** DeliveryMode value (0-7). */
  deliveryMode: number;
  /** Destination is a logical (LDR/DFR) set rather than an APIC ID. */
  logical: boolean;
  /** xAPIC destination: APIC ID, or logical mask; 0xff broadcasts. */
  destination: number;
  /** Assert (true) or de-assert; only INIT level de-assert uses false. */
  level: boolean;
  levelTriggered: boolean;
  /** ICR destination shorthand: 0 none, 1 self, 2 all including self, 3 all excluding self. */
  shorthand: number;
  /** Sending CPU index for IPIs, -1 for IOAPIC and MSI messages. */
  source: number;
  /** MSI redirection hint: arbitrate among the destinations like lowest-priority delivery. */
  redirectionHint?: boolean;
}

/** What a LocalApic needs from the rest of the platform (the InterruptRouter implements it). */
export interface ApicSystem {
  /** Route an IPI written to the ICR. */
  sendIpi(message: ApicMessage): void;
  /** A level-triggered vector was EOIed: tell the IOAPIC. */
  eoiBroadcast(vector: number): void;
  /** Level of the 8259 PIC's INT output. */
  picPending(): boolean;
  /** INTA cycle on the 8259 PIC. */
  picAcknowledge(): number;
  /** Something arrived for `cpu` (IRR, NMI, ExtINT, INIT, SIPI): wake it if halted. */
  interruptPending(cpu: number): void;
  /** `cpu` received INIT: the accelerator resets its registers; APs then wait for SIPI. */
  init(cpu: number): void;
  /** `cpu` received a startup IPI while waiting for one: start it in real mode at CS = vector << 8, IP = 0. */
  startup(cpu: number, vector: number): void;
}

export interface LocalApicOptions {
  /** vCPU index (what the accelerator calls the CPU). */
  cpu: number;
  /** Initial APIC ID (default: the CPU index). */
  apicId?: number;
  /** Bootstrap processor (default: cpu 0). */
  bsp?: boolean;
  clock: PlatformClock;
  system: ApicSystem;
  /** Allow LVT timer mode 2 (TSC-deadline). Advertise CPUID.1:ECX[24] only if true. Default true. */
  tscDeadline?: boolean;
}

const LVT_MASKED = 1 << 16;
/** Indexes into the LVT array: timer, thermal (1), performance counters (2), LINT0, LINT1, error. */
const LVT_TIMER = 0;
const LVT_LINT0 = 3;
const LVT_LINT1 = 4;
const LVT_ERROR = 5;
/** Register offset of each LVT, in the order above. */
const LVT_OFFSETS = [0x320, 0x330, 0x340, 0x350, 0x360, 0x370] as const;
/** Guest-writable bits of each LVT (delivery status and remote IRR are read-only). */
const LVT_WRITABLE = [0x700ff, 0x107ff, 0x107ff, 0x1a7ff, 0x1a7ff, 0x100ff] as const;

const TIMER_ONESHOT = 0;
const TIMER_PERIODIC = 1;
const TIMER_TSC_DEADLINE = 2;

const ESR_SEND_ILLEGAL_VECTOR = 0x20;
const ESR_RECEIVE_ILLEGAL_VECTOR = 0x40;

const APIC_BASE_BSP = 1 << 8;
const APIC_BASE_X2APIC = 1n << 10n;
const APIC_BASE_ENABLE = 1 << 11;
/** Bits of IA32_APIC_BASE a write may set (base address bits 12-51, BSP, EN). */
const APIC_BASE_WRITABLE = 0x000f_ffff_ffff_f000n | BigInt(APIC_BASE_BSP | APIC_BASE_ENABLE);

const VERSION = 0x14 | ((LVT_OFFSETS.length - 1) << 16);
const BUS_TICK_NS = NS_PER_SECOND / APIC_BUS_HZ;

/** Index of the highest set bit of a 256-bit set, or -1. */
function highestBit(bits: Uint32Array): number {
  for (let w = 7; w >= 0; w--) {
    const v = bits[w]!;
    if (v) return w * 32 + 31 - Math.clz32(v);
  }
  return -1;
}

function testBit(bits: Uint32Array, n: number): boolean {
  return (bits[n >>> 5]! & (1 << (n & 31))) !== 0;
}

function setBit(bits: Uint32Array, n: number, on: boolean): void {
  const w = n >>> 5;
  bits[w] = on ? bits[w]! | (1 << (n & 31)) : bits[w]! & ~(1 << (n & 31));
}

export function isLapicMsr(index: number): boolean {
  return index === MSR_IA32_APIC_BASE || index === MSR_IA32_TSC_DEADLINE;
}

export class LocalApic implements BusDevice, CpuInterruptSource, TimedDevice {
  readonly cpu: number;
  readonly bsp: boolean;
  private readonly clock: PlatformClock;
  private readonly system: ApicSystem;
  private readonly tscDeadlineSupported: boolean;

  private apicBase: bigint;
  /** APIC_BASE.EN, cached as a boolean: hasInterrupt() is on the interpreter's hot path. */
  private hwEnabled = true;
  private idReg: number;
  private tpr = 0;
  private ldr = 0;
  private dfr = 0xffffffff;
  private svr = 0xff;
  private readonly irr = new Uint32Array(8);
  private readonly isr = new Uint32Array(8);
  private readonly tmr = new Uint32Array(8);
  private esr = 0;
  private esrPending = 0;
  private icrLow = 0;
  private icrHigh = 0;
  private readonly lvt = new Uint32Array(LVT_OFFSETS.length);
  private readonly lintLevels = [false, false];

  private timerInitial = 0;
  private timerDivide = 0;
  private timerStartNs = 0;
  private timerDeadlineNs: number | undefined;
  private tscDeadline = 0n;

  private extIntPending = false;
  private nmiPending = false;
  /** An AP after power-on or INIT: only a startup IPI gets it running. */
  waitingForSipi: boolean;
  /**
   * Guest TSC = tscFromNs(nowNs) + tscOffset. The accelerator sets this if it lets the guest write IA32_TSC,
   * so TSC-deadline times are read on the same TSC the guest sees.
   */
  tscOffset = 0;

  constructor(options: LocalApicOptions) {
    this.cpu = options.cpu;
    this.bsp = options.bsp ?? options.cpu === 0;
    this.clock = options.clock;
    this.system = options.system;
    this.tscDeadlineSupported = options.tscDeadline ?? true;
    this.idReg = ((options.apicId ?? options.cpu) & 0xff) << 24;
    // Build in BigInt: 0xfee00000 | bits would go negative in 32-bit arithmetic.
    this.apicBase = BigInt(LAPIC_BASE) | BigInt(APIC_BASE_ENABLE | (this.bsp ? APIC_BASE_BSP : 0));
    this.waitingForSipi = !this.bsp;
    this.resetRegisters();
  }

  /** Current APIC ID (bits 24-31 of the ID register). */
  get id(): number {
    return this.idReg >>> 24;
  }

  /** APIC_BASE.EN: the APIC takes part in interrupt delivery. */
  get hardwareEnabled(): boolean {
    return this.hwEnabled;
  }

  /** SVR bit 8. */
  get softwareEnabled(): boolean {
    return (this.svr & 0x100) !== 0;
  }

  // ---- CPU side ---------------------------------------------------------------------------------------------

  hasInterrupt(): boolean {
    if (!this.hwEnabled) return this.system.picPending();
    if (this.extIntReady()) return true;
    const v = highestBit(this.irr);
    return v >= 0 && v >> 4 > this.ppr() >> 4;
  }

  acknowledge(): number {
    if (!this.hwEnabled || this.extIntReady()) {
      this.extIntPending = false;
      return this.system.picAcknowledge();
    }
    const v = highestBit(this.irr);
    if (v < 0 || v >> 4 <= this.ppr() >> 4) return this.svr & 0xff; // the request went away: spurious vector
    setBit(this.irr, v, false);
    setBit(this.isr, v, true);
    return v;
  }

  /** An NMI is waiting (the CPU takes it regardless of IF, outside an NMI handler). */
  get hasNmi(): boolean {
    return this.nmiPending;
  }

  /** The CPU takes the pending NMI: returns whether there was one. */
  takeNmi(): boolean {
    const had = this.nmiPending;
    this.nmiPending = false;
    return had;
  }

  // ---- Interrupt bus side -----------------------------------------------------------------------------------

  /** Whether this APIC is a destination of (logical, destination), ignoring shorthands. */
  matchesDestination(logical: boolean, destination: number): boolean {
    if (destination === 0xff) return true;
    if (!logical) return destination === this.id;
    const ldr = this.ldr >>> 24;
    if (this.dfr >>> 28 === 0xf) return (ldr & destination) !== 0; // flat model: 8-bit mask
    // Cluster model: high nibble cluster (0xf = all clusters), low nibble member mask.
    const cluster = destination >> 4;
    return (cluster === 0xf || cluster === ldr >> 4) && (ldr & destination & 0xf) !== 0;
  }

  /** Processor priority register. */
  ppr(): number {
    const isrv = highestBit(this.isr);
    const isrClass = isrv < 0 ? 0 : isrv & 0xf0;
    return this.tpr >> 4 >= isrClass >> 4 ? this.tpr : isrClass;
  }

  /** Accept a message the router addressed to this APIC. */
  accept(message: ApicMessage): void {
    switch (message.deliveryMode) {
      case DeliveryMode.Fixed:
      case DeliveryMode.LowestPriority:
        this.acceptVector(message.vector, message.levelTriggered);
        return;
      case DeliveryMode.Nmi:
        this.nmiPending = true;
        this.system.interruptPending(this.cpu);
        return;
      case DeliveryMode.Init:
        if (message.levelTriggered && !message.level) return; // INIT level de-assert: nothing to do
        this.init();
        return;
      case DeliveryMode.Startup:
        if (!this.waitingForSipi) return; // a second SIPI to a running AP is ignored
        this.waitingForSipi = false;
        this.system.startup(this.cpu, message.vector);
        this.system.interruptPending(this.cpu);
        return;
      case DeliveryMode.ExtInt:
        this.extIntPending = true;
        this.system.interruptPending(this.cpu);
        return;
      default: // SMI and reserved modes: no SMM
        return;
    }
  }

  /** LINT0/LINT1 input pins (LINT0 is wired to the 8259's INT). */
  setLint(pin: 0 | 1, level: boolean): void {
    const prev = this.lintLevels[pin];
    this.lintLevels[pin] = level;
    const lvt = this.lvt[LVT_LINT0 + pin]!;
    if (lvt & LVT_MASKED) return;
    const mode = (lvt >> 8) & 7;
    if (mode === DeliveryMode.ExtInt) {
      if (level) this.system.interruptPending(this.cpu);
      return;
    }
    if (!level || prev) return;
    if (mode === DeliveryMode.Fixed) this.acceptVector(lvt & 0xff, false);
    else if (mode === DeliveryMode.Nmi) this.accept({ ...this.localMessage(0), deliveryMode: DeliveryMode.Nmi });
    else if (mode === DeliveryMode.Init) this.init();
  }

  // ---- MSRs ---------------------------------------------------------------------------------------------------

  /** IA32_APIC_BASE and IA32_TSC_DEADLINE; undefined for any other MSR (see isLapicMsr). */
  readMsr(index: number): bigint | undefined {
    if (index === MSR_IA32_APIC_BASE) return this.apicBase;
    if (index === MSR_IA32_TSC_DEADLINE) return this.timerMode() === TIMER_TSC_DEADLINE ? this.tscDeadline : 0n;
    return undefined;
  }

  /** Returns false when the write must raise #GP (reserved bits, x2APIC enable, or not an APIC MSR). */
  writeMsr(index: number, value: bigint): boolean {
    if (index === MSR_IA32_APIC_BASE) {
      if (value & APIC_BASE_X2APIC || value & ~APIC_BASE_WRITABLE) return false;
      const wasEnabled = this.hwEnabled;
      this.apicBase = value;
      this.hwEnabled = (value & BigInt(APIC_BASE_ENABLE)) !== 0n;
      if (wasEnabled && !this.hwEnabled) this.resetRegisters();
      return true;
    }
    if (index === MSR_IA32_TSC_DEADLINE) {
      if (value < 0n || value > 0xffff_ffff_ffff_ffffn) return false;
      if (this.timerMode() !== TIMER_TSC_DEADLINE) return true; // ignored outside TSC-deadline mode
      this.tscDeadline = value;
      this.armTscDeadline();
      this.poll(this.clock.nowNs());
      return true;
    }
    return false;
  }

  // ---- Timer --------------------------------------------------------------------------------------------------

  nextDeadlineNs(): number | undefined {
    if (this.lvt[LVT_TIMER]! & LVT_MASKED) return undefined;
    return this.timerDeadlineNs;
  }

  poll(nowNs: number): void {
    const deadline = this.timerDeadlineNs;
    if (deadline === undefined || nowNs < deadline) return;
    const mode = this.timerMode();
    if (mode === TIMER_PERIODIC && this.timerInitial > 0) {
      const period = this.timerInitial * this.tickNs();
      const elapsedPeriods = Math.floor((nowNs - this.timerStartNs) / period);
      this.timerDeadlineNs = this.timerStartNs + (elapsedPeriods + 1) * period;
    } else {
      this.timerDeadlineNs = undefined;
      if (mode === TIMER_TSC_DEADLINE) this.tscDeadline = 0n;
    }
    const lvt = this.lvt[LVT_TIMER]!;
    if (!(lvt & LVT_MASKED)) this.acceptVector(lvt & 0xff, false);
  }

  private timerMode(): number {
    return (this.lvt[LVT_TIMER]! >> 17) & 3;
  }

  private tickNs(): number {
    const v = (this.timerDivide & 3) | ((this.timerDivide >> 1) & 4);
    return (v === 7 ? 1 : 2 << v) * BUS_TICK_NS;
  }

  private currentCount(nowNs: number): number {
    const mode = this.timerMode();
    if (this.timerInitial === 0 || mode === TIMER_TSC_DEADLINE) return 0;
    const ticks = Math.floor((nowNs - this.timerStartNs) / this.tickNs());
    if (mode === TIMER_PERIODIC) return this.timerInitial - (ticks % this.timerInitial);
    return Math.max(0, this.timerInitial - ticks);
  }

  private startTimer(nowNs: number): void {
    this.timerStartNs = nowNs;
    const mode = this.timerMode();
    this.timerDeadlineNs =
      this.timerInitial > 0 && mode !== TIMER_TSC_DEADLINE ? nowNs + this.timerInitial * this.tickNs() : undefined;
  }

  private armTscDeadline(): void {
    if (this.tscDeadline === 0n) {
      this.timerDeadlineNs = undefined;
      return;
    }
    const tsc = Number(this.tscDeadline) - this.tscOffset;
    // Beyond 2^53 TSC ticks (104 days at 1 GHz) the deadline is never reached in practice: leave it unarmed
    // rather than hand the accelerator a time it cannot represent.
    if (tsc > Number.MAX_SAFE_INTEGER) this.timerDeadlineNs = undefined;
    else this.timerDeadlineNs = tsc <= 0 ? 0 : nsFromTsc(tsc);
  }

  /** The TSC the guest sees now (for the accelerator's RDTSC, consistent with TSC-deadline). */
  readTsc(): number {
    return tscFromNs(this.clock.nowNs()) + this.tscOffset;
  }

  // ---- Registers ----------------------------------------------------------------------------------------------

  read(offset: number, size: number): number {
    const byte = offset & 0xf;
    if (byte + size > 4) return 0;
    const v = this.readRegister(offset & 0xff0) >>> (byte * 8);
    return size >= 4 ? v >>> 0 : v & ((1 << (size * 8)) - 1);
  }

  write(offset: number, size: number, value: number): void {
    // The xAPIC page only takes aligned 32-bit stores (like KVM, other stores are dropped).
    if (size !== 4 || offset & 0xf) return;
    this.writeRegister(offset & 0xff0, value >>> 0);
  }

  private readRegister(reg: number): number {
    const now = this.clock.nowNs();
    this.poll(now);
    switch (reg) {
      case 0x020:
        return this.idReg;
      case 0x030:
        return VERSION;
      case 0x080:
        return this.tpr;
      case 0x090:
        return this.ppr(); // arbitration priority: nothing arbitrates on this bus, report PPR
      case 0x0a0:
        return this.ppr();
      case 0x0d0:
        return this.ldr;
      case 0x0e0:
        return this.dfr;
      case 0x0f0:
        return this.svr;
      case 0x280:
        return this.esr;
      case 0x300:
        return this.icrLow;
      case 0x310:
        return this.icrHigh;
      case 0x380:
        return this.timerInitial;
      case 0x390:
        return this.currentCount(now);
      case 0x3e0:
        return this.timerDivide;
    }
    if (reg >= 0x100 && reg < 0x180) return this.isr[(reg - 0x100) >> 4]!;
    if (reg >= 0x180 && reg < 0x200) return this.tmr[(reg - 0x180) >> 4]!;
    if (reg >= 0x200 && reg < 0x280) return this.irr[(reg - 0x200) >> 4]!;
    const lvtIndex = LVT_OFFSETS.indexOf(reg as (typeof LVT_OFFSETS)[number]);
    if (lvtIndex >= 0) return this.lvt[lvtIndex]!;
    return 0;
  }

  private writeRegister(reg: number, value: number): void {
    const now = this.clock.nowNs();
    this.poll(now);
    switch (reg) {
      case 0x020:
        this.idReg = value & 0xff00_0000;
        return;
      case 0x080:
        this.tpr = value & 0xff;
        return;
      case 0x0b0:
        this.eoi();
        return;
      case 0x0d0:
        this.ldr = value & 0xff00_0000;
        return;
      case 0x0e0:
        this.dfr = (value | 0x0fff_ffff) >>> 0;
        return;
      case 0x0f0:
        this.writeSvr(value);
        return;
      case 0x280:
        // A write makes the errors gathered since the last write readable.
        this.esr = this.esrPending;
        this.esrPending = 0;
        return;
      case 0x300:
        this.icrLow = value & 0x000c_efff;
        this.sendIpi();
        return;
      case 0x310:
        this.icrHigh = value & 0xff00_0000;
        return;
      case 0x380:
        if (this.timerMode() === TIMER_TSC_DEADLINE) return;
        this.timerInitial = value;
        this.startTimer(now);
        return;
      case 0x3e0:
        this.writeDivide(value, now);
        return;
    }
    const lvtIndex = LVT_OFFSETS.indexOf(reg as (typeof LVT_OFFSETS)[number]);
    if (lvtIndex >= 0) this.writeLvt(lvtIndex, value);
  }

  private writeSvr(value: number): void {
    this.svr = value & 0x3ff;
    if (!this.softwareEnabled) {
      for (let i = 0; i < this.lvt.length; i++) this.lvt[i] = this.lvt[i]! | LVT_MASKED;
    }
  }

  private writeLvt(index: number, value: number): void {
    let v = value & LVT_WRITABLE[index]!;
    if (!this.softwareEnabled) v |= LVT_MASKED;
    if (index === LVT_TIMER) {
      if (!this.tscDeadlineSupported) v &= ~(2 << 17);
      if (((v >> 17) & 3) === 3) v &= ~(2 << 17); // mode 3 is reserved: treat as one-shot/periodic bit only
      const oldMode = this.timerMode();
      this.lvt[index] = (this.lvt[index]! & ~LVT_WRITABLE[index]!) | v;
      if (this.timerMode() !== oldMode) {
        // Changing timer mode disarms the timer (as KVM does).
        this.timerInitial = 0;
        this.tscDeadline = 0n;
        this.timerDeadlineNs = undefined;
      }
      return;
    }
    this.lvt[index] = ((this.lvt[index]! & ~LVT_WRITABLE[index]!) | v) >>> 0;
    if (index === LVT_LINT0 && !(v & LVT_MASKED) && ((v >> 8) & 7) === DeliveryMode.ExtInt && this.system.picPending()) {
      this.system.interruptPending(this.cpu);
    }
  }

  private writeDivide(value: number, now: number): void {
    const remaining = this.currentCount(now);
    const running = this.timerDeadlineNs !== undefined && this.timerMode() !== TIMER_TSC_DEADLINE;
    this.timerDivide = value & 0xb;
    if (!running) return;
    // Keep the count where it is and let the rest run at the new rate.
    const tick = this.tickNs();
    this.timerStartNs = now - (this.timerInitial - remaining) * tick;
    this.timerDeadlineNs = now + remaining * tick;
  }

  private eoi(): void {
    const v = highestBit(this.isr);
    if (v < 0) return;
    setBit(this.isr, v, false);
    if (testBit(this.tmr, v)) this.system.eoiBroadcast(v);
  }

  private sendIpi(): void {
    const low = this.icrLow;
    const mode = (low >> 8) & 7;
    const vector = low & 0xff;
    if ((mode === DeliveryMode.Fixed || mode === DeliveryMode.LowestPriority) && vector < 16) {
      this.raiseError(ESR_SEND_ILLEGAL_VECTOR);
      return;
    }
    this.system.sendIpi({
      vector,
      deliveryMode: mode,
      logical: (low & (1 << 11)) !== 0,
      destination: this.icrHigh >>> 24,
      level: (low & (1 << 14)) !== 0,
      levelTriggered: (low & (1 << 15)) !== 0,
      shorthand: (low >> 18) & 3,
      source: this.cpu,
    });
  }

  private acceptVector(vector: number, levelTriggered: boolean): void {
    if (!this.hardwareEnabled || !this.softwareEnabled) return;
    if (vector < 16) {
      this.raiseError(ESR_RECEIVE_ILLEGAL_VECTOR);
      return;
    }
    setBit(this.irr, vector, true);
    setBit(this.tmr, vector, levelTriggered);
    this.system.interruptPending(this.cpu);
  }

  private raiseError(bits: number): void {
    const fresh = (this.esrPending & bits) !== bits;
    this.esrPending |= bits;
    const lvt = this.lvt[LVT_ERROR]!;
    // The error vector is exempt from the illegal-vector check: a vector < 16 here would only recurse.
    if (fresh && !(lvt & LVT_MASKED) && (lvt & 0xff) >= 16) this.acceptVector(lvt & 0xff, false);
  }

  private extIntReady(): boolean {
    if (!this.system.picPending()) return false;
    if (this.extIntPending) return true;
    const lvt = this.lvt[LVT_LINT0]!;
    return !(lvt & LVT_MASKED) && ((lvt >> 8) & 7) === DeliveryMode.ExtInt;
  }

  private init(): void {
    this.resetRegisters();
    this.waitingForSipi = !this.bsp;
    this.system.init(this.cpu);
    this.system.interruptPending(this.cpu);
  }

  private localMessage(vector: number): ApicMessage {
    return {
      vector,
      deliveryMode: DeliveryMode.Fixed,
      logical: false,
      destination: this.id,
      level: true,
      levelTriggered: false,
      shorthand: 0,
      source: this.cpu,
    };
  }

  /** Power-on / INIT state of everything but the APIC ID and APIC_BASE. */
  private resetRegisters(): void {
    this.tpr = 0;
    this.ldr = 0;
    this.dfr = 0xffffffff;
    this.svr = 0xff;
    this.irr.fill(0);
    this.isr.fill(0);
    this.tmr.fill(0);
    this.esr = 0;
    this.esrPending = 0;
    this.icrLow = 0;
    this.icrHigh = 0;
    this.lvt.fill(LVT_MASKED);
    if (this.bsp) {
      this.lvt[LVT_LINT0] = DeliveryMode.ExtInt << 8;
      this.lvt[LVT_LINT1] = DeliveryMode.Nmi << 8;
    }
    this.timerInitial = 0;
    this.timerDivide = 0;
    this.timerStartNs = 0;
    this.timerDeadlineNs = undefined;
    this.tscDeadline = 0n;
    this.extIntPending = false;
  }
}
