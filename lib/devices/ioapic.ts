/**
 * I/O APIC (82093AA-style, 24 pins) at 0xfec00000.
 *
 *   0x00 IOREGSEL (index, RW)    0x10 IOWIN (data of the selected register)    0x40 EOI (version 0x20 only)
 *   register 0x00 ID (bits 24-27), 0x01 version (max redirection entry 23 in bits 16-23), 0x02 arbitration ID,
 *   0x10 + 2n / 0x11 + 2n: low / high half of redirection entry n.
 *
 * Redirection entry: vector 0-7, delivery mode 8-10 (fixed, lowest priority, SMI, NMI, INIT, ExtINT), destination
 * mode 11 (logical), delivery status 12 (RO, always 0: messages are delivered at once), polarity 13, remote IRR
 * 14 (RO), trigger mode 15 (level), mask 16, destination 56-63.
 *
 * Pin levels are logical ("asserted"), as on KVM's KVM_IRQ_LINE: the polarity bit is stored and read back but
 * does not invert the input, so a device raising its line works whatever polarity the MP table describes.
 *
 * Edge pins deliver on an asserting edge while unmasked (an edge while masked is lost, as on the chip).
 * Level pins deliver while asserted, unmasked and remote IRR clear, and set remote IRR; the LAPIC's EOI of that
 * vector (broadcast through `eoi(vector)`), an EOI register write (version 0x20), or switching the entry to edge
 * clears it, and a still-asserted line is delivered again.
 */
import type { Bus, BusDevice } from '../machine/bus.js';
import { DeliveryMode, type ApicMessage } from './lapic.js';

export const IOAPIC_BASE = 0xfec0_0000;
export const IOAPIC_SIZE = 0x1000;
export const IOAPIC_PINS = 24;

const RTE_MASK = 1 << 16;
const RTE_LEVEL = 1 << 15;
const RTE_REMOTE_IRR = 1 << 14;
/** Guest-writable bits of the low dword (delivery status and remote IRR are read-only). */
const RTE_LOW_WRITABLE = 0x0001_afff;

export interface IoApicOptions {
  /** IOAPIC ID (the MP table names it; commonly the number of CPUs). */
  id: number;
  /** 0x11 (82093AA, EOI by LAPIC broadcast only) or 0x20 (adds the EOI register). Default 0x11. */
  version?: 0x11 | 0x20;
  /** Where interrupt messages go (the InterruptRouter). */
  deliver: (message: ApicMessage) => void;
}

export class IoApic implements BusDevice {
  private id: number;
  private readonly version: number;
  private readonly deliver: (message: ApicMessage) => void;
  private select = 0;
  private readonly low = new Uint32Array(IOAPIC_PINS).fill(RTE_MASK);
  private readonly high = new Uint32Array(IOAPIC_PINS);
  /** Current (logical) input level of each pin. */
  private levels = 0;

  constructor(options: IoApicOptions) {
    this.id = options.id & 0xf;
    this.version = options.version ?? 0x11;
    this.deliver = options.deliver;
  }

  attach(mmio: Bus, base = IOAPIC_BASE): void {
    mmio.register(base, IOAPIC_SIZE, this, 'ioapic');
  }

  read(offset: number, size: number): number {
    const aligned = offset & ~3;
    const shift = (offset & 3) * 8;
    let v: number;
    if (aligned === 0x00) v = this.select;
    else if (aligned === 0x10) v = this.readRegister(this.select);
    else v = 0;
    v >>>= shift;
    return size >= 4 ? v >>> 0 : v & ((1 << (size * 8)) - 1);
  }

  write(offset: number, size: number, value: number): void {
    if (offset === 0x00) {
      this.select = value & 0xff;
    } else if (offset === 0x10 && size === 4) {
      this.writeRegister(this.select, value >>> 0);
    } else if (offset === 0x40 && this.version >= 0x20) {
      this.eoi(value & 0xff);
    }
  }

  /** Pin input (logical level). */
  setIrq(pin: number, level: boolean): void {
    if (!Number.isInteger(pin) || pin < 0 || pin >= IOAPIC_PINS) {
      throw new RangeError(`IOAPIC: pin ${pin} out of range 0-${IOAPIC_PINS - 1}`);
    }
    const m = 1 << pin;
    const was = (this.levels & m) !== 0;
    this.levels = level ? this.levels | m : this.levels & ~m;
    const low = this.low[pin]!;
    if (low & RTE_LEVEL) {
      if (level) this.service(pin);
    } else if (level && !was && !(low & RTE_MASK)) {
      this.send(pin);
    }
  }

  /** End of interrupt for `vector` (LAPIC EOI broadcast of a level-triggered vector). */
  eoi(vector: number): void {
    for (let pin = 0; pin < IOAPIC_PINS; pin++) {
      const low = this.low[pin]!;
      if ((low & 0xff) !== vector || !(low & RTE_REMOTE_IRR)) continue;
      this.low[pin] = low & ~RTE_REMOTE_IRR;
      this.service(pin);
    }
  }

  /** Redirection entry `pin` as a 64-bit pair (inspection and tests). */
  entry(pin: number): { low: number; high: number } {
    return { low: this.low[pin]!, high: this.high[pin]! };
  }

  private readRegister(index: number): number {
    if (index === 0x00) return this.id << 24;
    if (index === 0x01) return ((IOAPIC_PINS - 1) << 16) | this.version;
    if (index === 0x02) return this.id << 24;
    if (index >= 0x10 && index < 0x10 + 2 * IOAPIC_PINS) {
      const pin = (index - 0x10) >> 1;
      return index & 1 ? this.high[pin]! : this.low[pin]!;
    }
    return 0;
  }

  private writeRegister(index: number, value: number): void {
    if (index === 0x00) {
      this.id = (value >>> 24) & 0xf;
      return;
    }
    if (index < 0x10 || index >= 0x10 + 2 * IOAPIC_PINS) return;
    const pin = (index - 0x10) >> 1;
    if (index & 1) {
      this.high[pin] = value & 0xff00_0000;
      return;
    }
    let low = (this.low[pin]! & ~RTE_LOW_WRITABLE) | (value & RTE_LOW_WRITABLE);
    // Switching to edge clears remote IRR (Linux's fallback EOI for version 0x11 relies on it).
    if (!(low & RTE_LEVEL)) low &= ~RTE_REMOTE_IRR;
    this.low[pin] = low >>> 0;
    // Unmasking a level entry whose line is still asserted delivers it.
    if (low & RTE_LEVEL && this.levels & (1 << pin)) this.service(pin);
  }

  /** Level pins: deliver when asserted, unmasked and not awaiting EOI. */
  private service(pin: number): void {
    const low = this.low[pin]!;
    if (low & RTE_MASK || low & RTE_REMOTE_IRR || !(this.levels & (1 << pin))) return;
    const mode = (low >> 8) & 7;
    // Remote IRR tracks an EOI, which only fixed and lowest-priority interrupts get.
    if (mode === DeliveryMode.Fixed || mode === DeliveryMode.LowestPriority) this.low[pin] = (low | RTE_REMOTE_IRR) >>> 0;
    this.send(pin);
  }

  private send(pin: number): void {
    const low = this.low[pin]!;
    this.deliver({
      vector: low & 0xff,
      deliveryMode: (low >> 8) & 7,
      logical: (low & (1 << 11)) !== 0,
      destination: this.high[pin]! >>> 24,
      level: true,
      levelTriggered: (low & RTE_LEVEL) !== 0,
      shorthand: 0,
      source: -1,
    });
  }
}
