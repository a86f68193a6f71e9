/**
 * The interpreter's interrupt fabric: the 8259 pair, the IOAPIC and one LAPIC per vCPU, wired like a PC chipset.
 *
 * - `setIrq(gsi, level)` (InterruptController): numbers 0-15 are ISA IRQs, fed to the PIC input of that number
 *   (except 2, the cascade) and to the IOAPIC pin `isaIrqToIoapicPin[irq]` (default: IRQ 0 -> pin 2 as the MP
 *   table says, the others identity); 16-23 go to the IOAPIC pin of that number only.
 *   Lines are not shared: each number must have one driver (a second driver's level would overwrite the first).
 * - `sendMsi(address, data)` (MsiSink): the x86 MSI format. Address 0xFEEx_xxxx: destination ID bits 12-19,
 *   redirection hint bit 3, destination mode bit 2 (1 = logical). Data: vector bits 0-7, delivery mode 8-10,
 *   level bit 14, trigger mode bit 15 (1 = level). Anything else is dropped and reported to `onInvalidMsi`.
 * - APIC bus messages (IOAPIC, MSI, IPIs) go to every hardware-enabled LAPIC the destination selects: physical
 *   (APIC ID, 0xff = all), logical flat or cluster (per each LAPIC's LDR/DFR), or the ICR shorthands. Lowest-
 *   priority delivery (and MSIs with the redirection hint) picks one of them: the lowest PPR, ties to the lowest
 *   APIC ID.
 * - The PIC's INT output drives every LAPIC's LINT0 (Linux leaves it as ExtINT on the BSP only).
 *
 * What the interpreter accelerator calls:
 *   router.lapicMmio.currentCpu = i     before running vCPU i (MMIO at 0xfee00000 then reaches CPU i's LAPIC)
 *   router.forCpu(i)                     the CpuInterruptSource of vCPU i: hasInterrupt() / acknowledge(),
 *                                        hasNmi / takeNmi(), readMsr / writeMsr, waitingForSipi, readTsc()
 *   router.nextDeadlineNs() / poll(now)  the LAPIC timers (add the PIT alongside, e.g. with a TimerGroup)
 *   router.onInterruptPending(cpu)       set by the accelerator: wake vCPU `cpu` if halted
 *   router.onInit(cpu)                   set by the accelerator: reset vCPU `cpu`; an AP then waits for SIPI
 *   router.onStartup(cpu, vector)        set by the accelerator: start vCPU `cpu` in real mode at vector << 12
 */
import type { Bus, BusDevice } from '../machine/bus.js';
import type { InterruptController, MsiSink } from '../machine/irq.js';
import { IoApic } from './ioapic.js';
import { DeliveryMode, LAPIC_BASE, LAPIC_SIZE, LocalApic, type ApicMessage, type ApicSystem } from './lapic.js';
import { Pic8259Pair } from './pic8259.js';
import type { PlatformClock, TimedDevice } from './platform-clock.js';

export interface InterruptRouterOptions {
  cpuCount: number;
  clock: PlatformClock;
  /** APIC ID of each vCPU (default: its index). Must be unique and below 0xff. */
  apicIds?: number[];
  /** IOAPIC ID (default: cpuCount, after the LAPIC IDs, as MP tables usually have it). */
  ioapicId?: number;
  ioapicVersion?: 0x11 | 0x20;
  /** Whether the LAPIC timer accepts TSC-deadline mode (advertise CPUID.1:ECX[24] to match). Default true. */
  tscDeadline?: boolean;
  /**
   * ISA IRQ -> IOAPIC pin overrides (MP table / MADT interrupt source overrides); IRQs not listed map to the pin
   * of the same number. Default { 0: 2 }, the PC convention that lib/machine/boot/mptable.ts writes by default
   * (irq0ToPin2); pass {} for an MP table that maps every ISA IRQ to its own pin.
   */
  isaIrqToIoapicPin?: Record<number, number>;
}

/** The shared LAPIC page: forwards to the LAPIC of the vCPU the interpreter is running. */
export class LapicMmio implements BusDevice {
  /** Index of the vCPU whose accesses are being executed. */
  currentCpu = 0;

  constructor(private readonly lapics: readonly LocalApic[]) {}

  read(offset: number, size: number): number {
    return this.lapics[this.currentCpu]!.read(offset, size);
  }

  write(offset: number, size: number, value: number): void {
    this.lapics[this.currentCpu]!.write(offset, size, value);
  }
}

export class InterruptRouter implements InterruptController, MsiSink, TimedDevice {
  readonly pic: Pic8259Pair;
  readonly ioapic: IoApic;
  readonly lapics: readonly LocalApic[];
  readonly lapicMmio: LapicMmio;

  onInterruptPending: ((cpu: number) => void) | undefined;
  onInit: ((cpu: number) => void) | undefined;
  onStartup: ((cpu: number, vector: number) => void) | undefined;
  onInvalidMsi: ((address: number, data: number) => void) | undefined;

  private readonly isaToPin: number[];

  constructor(options: InterruptRouterOptions) {
    const { cpuCount, clock } = options;
    if (!Number.isInteger(cpuCount) || cpuCount < 1 || cpuCount > 254) {
      throw new RangeError(`InterruptRouter: cpuCount ${cpuCount} must be 1-254`);
    }
    const apicIds = options.apicIds ?? Array.from({ length: cpuCount }, (_, i) => i);
    if (apicIds.length !== cpuCount || new Set(apicIds).size !== cpuCount || apicIds.some((id) => !(id >= 0 && id < 0xff))) {
      throw new RangeError(`InterruptRouter: apicIds ${JSON.stringify(apicIds)} must be ${cpuCount} unique IDs 0-254`);
    }
    const overrides = options.isaIrqToIoapicPin ?? { 0: 2 };
    this.isaToPin = Array.from({ length: 16 }, (_, irq) => overrides[irq] ?? irq);
    for (const [irq, pin] of Object.entries(overrides)) {
      if (!(Number(irq) >= 0 && Number(irq) < 16 && Number.isInteger(pin) && pin >= 0 && pin < 24)) {
        throw new RangeError(`InterruptRouter: isaIrqToIoapicPin[${irq}] = ${pin}: need ISA IRQ 0-15 -> pin 0-23`);
      }
    }

    const system: ApicSystem = {
      sendIpi: (m) => this.deliver(m),
      eoiBroadcast: (vector) => this.ioapic.eoi(vector),
      picPending: () => this.pic.hasInterrupt(),
      picAcknowledge: () => this.pic.acknowledge(),
      interruptPending: (cpu) => this.onInterruptPending?.(cpu),
      init: (cpu) => this.onInit?.(cpu),
      startup: (cpu, vector) => this.onStartup?.(cpu, vector),
    };
    this.lapics = apicIds.map(
      (apicId, cpu) => new LocalApic({ cpu, apicId, clock, system, tscDeadline: options.tscDeadline ?? true }),
    );
    this.lapicMmio = new LapicMmio(this.lapics);
    this.pic = new Pic8259Pair({
      onOutput: (level) => {
        for (const lapic of this.lapics) {
          lapic.setLint(0, level);
          if (level && !lapic.hardwareEnabled) this.onInterruptPending?.(lapic.cpu);
        }
      },
    });
    this.ioapic = new IoApic({
      id: options.ioapicId ?? cpuCount,
      version: options.ioapicVersion ?? 0x11,
      deliver: (m) => this.deliver(m),
    });
  }

  /** Register the IOAPIC and the LAPIC page on the MMIO bus and the PIC on the port bus. */
  attach(pio: Bus, mmio: Bus): void {
    this.pic.attach(pio);
    this.ioapic.attach(mmio);
    mmio.register(LAPIC_BASE, LAPIC_SIZE, this.lapicMmio, 'lapic');
  }

  forCpu(cpu: number): LocalApic {
    const lapic = this.lapics[cpu];
    if (!lapic) throw new RangeError(`InterruptRouter: no vCPU ${cpu}`);
    return lapic;
  }

  setIrq(gsi: number, level: boolean): void {
    if (!Number.isInteger(gsi) || gsi < 0 || gsi > 23) throw new RangeError(`InterruptRouter: GSI ${gsi} out of range 0-23`);
    if (gsi < 16) {
      if (gsi !== 2) this.pic.setIrq(gsi, level);
      this.ioapic.setIrq(this.isaToPin[gsi]!, level);
    } else {
      this.ioapic.setIrq(gsi, level);
    }
  }

  sendMsi(address: number, data: number): void {
    if (!Number.isInteger(address) || address < 0 || address > 0xffff_ffff || address >>> 20 !== 0xfee) {
      this.onInvalidMsi?.(address, data);
      return;
    }
    this.deliver({
      vector: data & 0xff,
      deliveryMode: (data >> 8) & 7,
      logical: (address & 0x4) !== 0,
      destination: (address >>> 12) & 0xff,
      level: true,
      levelTriggered: (data & 0x8000) !== 0,
      shorthand: 0,
      source: -1,
      redirectionHint: (address & 0x8) !== 0,
    });
  }

  /** Deliver an APIC bus message to its destination LAPIC(s). */
  deliver(message: ApicMessage): void {
    if (message.shorthand === 0 && !message.logical && message.destination !== 0xff) {
      // The common case (IOAPIC and MSI in physical mode): one APIC ID, no arbitration, no allocation.
      for (const lapic of this.lapics) {
        if (lapic.id === message.destination && lapic.hardwareEnabled) lapic.accept(message);
      }
      return;
    }
    let targets: LocalApic[];
    switch (message.shorthand) {
      case 1:
        targets = this.lapics.filter((l) => l.cpu === message.source);
        break;
      case 2:
        targets = [...this.lapics];
        break;
      case 3:
        targets = this.lapics.filter((l) => l.cpu !== message.source);
        break;
      default:
        targets = this.lapics.filter((l) => l.matchesDestination(message.logical, message.destination));
    }
    targets = targets.filter((l) => l.hardwareEnabled);
    const arbitrate =
      message.shorthand === 0 &&
      targets.length > 1 &&
      (message.deliveryMode === DeliveryMode.LowestPriority ||
        (message.redirectionHint === true && message.deliveryMode === DeliveryMode.Fixed));
    if (arbitrate) targets = [lowestPriority(targets)];
    for (const lapic of targets) lapic.accept(message);
  }

  nextDeadlineNs(): number | undefined {
    let best: number | undefined;
    for (const lapic of this.lapics) {
      const t = lapic.nextDeadlineNs();
      if (t !== undefined && (best === undefined || t < best)) best = t;
    }
    return best;
  }

  poll(nowNs: number): void {
    for (const lapic of this.lapics) lapic.poll(nowNs);
  }
}

function lowestPriority(candidates: LocalApic[]): LocalApic {
  let best = candidates[0]!;
  for (const l of candidates) {
    const p = l.ppr();
    const bp = best.ppr();
    if (p < bp || (p === bp && l.id < best.id)) best = l;
  }
  return best;
}
