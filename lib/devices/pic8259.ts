/**
 * The PC's cascaded pair of 8259A programmable interrupt controllers, plus the ELCR (edge/level control).
 *
 *   master: ports 0x20-0x21, IRQ 0-7, slave cascaded on IR2
 *   slave:  ports 0xa0-0xa1, IRQ 8-15
 *   ELCR:   ports 0x4d0 (IRQ 0-7) and 0x4d1 (IRQ 8-15), 1 = level-triggered (IRQ 0, 1, 2, 8, 13 are always edge)
 *
 * Supported: ICW1-ICW4 initialisation (8086 mode only: the 8080 call-address mode of ICW4 bit 0 = 0 is treated
 * as 8086 mode), OCW1 mask, OCW2 EOI / specific EOI / rotations / set priority, OCW3 read IRR/ISR, poll mode
 * and special mask mode, auto-EOI (with rotation), special fully nested mode, LTIM and ELCR level triggering,
 * spurious IRQ 7/15 when a request vanishes before the INTA.
 *
 * Edge-triggered requests are latched in IRR on a rising input edge and stay latched until acknowledged (a
 * pulse shorter than the INTA latency still interrupts). Level-triggered requests follow the input.
 * While a chip is between ICW1 and its last ICW it does not request interrupts.
 */
import type { Bus, BusDevice } from '../machine/bus.js';
import type { InterruptController } from '../machine/irq.js';

export const PIC_MASTER_PORT = 0x20;
export const PIC_SLAVE_PORT = 0xa0;
export const ELCR_PORT = 0x4d0;
const CASCADE_PIN = 2;

class PicChip {
  irr = 0;
  isr = 0;
  imr = 0;
  /** Current levels of the IR inputs (edge detection and level-triggered IRR). */
  inputLevels = 0;
  elcr = 0;
  vectorBase = 0;
  /** 0 when operational, otherwise the number of the ICW expected next (2, 3 or 4). */
  initStep = 0;
  needIcw4 = false;
  single = false;
  ltim = false;
  autoEoi = false;
  rotateOnAutoEoi = false;
  specialMask = false;
  specialFullyNested = false;
  readIsr = false;
  pollPending = false;
  /** IR pin with the lowest priority; the highest is (lowestPriority + 1) & 7. */
  lowestPriority = 7;
  icw3 = 0;

  constructor(
    readonly isMaster: boolean,
    readonly elcrMask: number,
  ) {}

  isLevel(pin: number): boolean {
    // The master's cascade input mirrors the slave's INT output; sampling it as a level keeps a second
    // slave request pending while the first is in service.
    if (this.isMaster && pin === CASCADE_PIN && !this.single) return true;
    return this.ltim || (this.elcr & (1 << pin)) !== 0;
  }

  setInput(pin: number, level: boolean): void {
    const m = 1 << pin;
    if (this.isLevel(pin)) {
      this.irr = level ? this.irr | m : this.irr & ~m;
    } else if (level && !(this.inputLevels & m)) {
      this.irr |= m;
    }
    this.inputLevels = level ? this.inputLevels | m : this.inputLevels & ~m;
  }

  /** Re-derive IRR bits of level-triggered pins after a mode change. */
  resampleLevels(): void {
    for (let pin = 0; pin < 8; pin++) {
      if (!this.isLevel(pin)) continue;
      const m = 1 << pin;
      this.irr = this.inputLevels & m ? this.irr | m : this.irr & ~m;
    }
  }

  /** 0 = highest priority. */
  rank(pin: number): number {
    return (pin - this.lowestPriority - 1) & 7;
  }

  highest(mask: number): number {
    for (let i = 0; i < 8; i++) {
      const pin = (i + this.lowestPriority + 1) & 7;
      if (mask & (1 << pin)) return pin;
    }
    return -1;
  }

  /** The IR pin this chip would present to the CPU now, or -1. */
  pending(): number {
    if (this.initStep !== 0) return -1;
    const requested = this.irr & ~this.imr;
    if (!requested) return -1;
    const p = this.highest(requested);
    const blocking = this.specialMask ? this.isr & ~this.imr : this.isr;
    const cur = this.highest(blocking);
    if (cur === -1 || this.rank(p) < this.rank(cur)) return p;
    // Special fully nested mode: a higher-priority slave request may nest on the in-service cascade pin.
    if (this.specialFullyNested && this.isMaster && p === CASCADE_PIN && cur === CASCADE_PIN) return p;
    return -1;
  }

  /** INTA for `pin`: IRR -> ISR (or auto-EOI). */
  ackPin(pin: number): void {
    const m = 1 << pin;
    if (!this.isLevel(pin)) this.irr &= ~m;
    if (this.autoEoi) {
      if (this.rotateOnAutoEoi) this.lowestPriority = pin;
    } else {
      this.isr |= m;
    }
  }

  writeCommand(value: number): void {
    if (value & 0x10) return this.icw1(value);
    if (value & 0x08) return this.ocw3(value);
    this.ocw2(value);
  }

  private icw1(value: number): void {
    this.needIcw4 = (value & 0x01) !== 0;
    this.single = (value & 0x02) !== 0;
    this.ltim = (value & 0x08) !== 0;
    this.initStep = 2;
    this.imr = 0;
    this.isr = 0;
    this.irr = 0;
    this.lowestPriority = 7;
    this.specialMask = false;
    this.readIsr = false;
    this.pollPending = false;
    this.autoEoi = false;
    this.rotateOnAutoEoi = false;
    this.specialFullyNested = false;
    this.resampleLevels();
  }

  private ocw2(value: number): void {
    const level = value & 7;
    switch (value >> 5) {
      case 0b001: // non-specific EOI
      case 0b101: {
        // rotate on non-specific EOI
        const pin = this.highest(this.isr);
        if (pin < 0) return;
        this.isr &= ~(1 << pin);
        if (value >> 5 === 0b101) this.lowestPriority = pin;
        return;
      }
      case 0b011: // specific EOI
        this.isr &= ~(1 << level);
        return;
      case 0b111: // rotate on specific EOI
        this.isr &= ~(1 << level);
        this.lowestPriority = level;
        return;
      case 0b110: // set priority
        this.lowestPriority = level;
        return;
      case 0b100:
        this.rotateOnAutoEoi = true;
        return;
      case 0b000:
        this.rotateOnAutoEoi = false;
        return;
      default: // 0b010: no operation
        return;
    }
  }

  private ocw3(value: number): void {
    if (value & 0x04) this.pollPending = true;
    if (value & 0x02) this.readIsr = (value & 0x01) !== 0;
    if (value & 0x40) this.specialMask = (value & 0x20) !== 0;
  }

  writeData(value: number): void {
    switch (this.initStep) {
      case 2:
        this.vectorBase = value & 0xf8;
        this.initStep = this.single ? (this.needIcw4 ? 4 : 0) : 3;
        return;
      case 3:
        this.icw3 = value;
        this.initStep = this.needIcw4 ? 4 : 0;
        return;
      case 4:
        this.autoEoi = (value & 0x02) !== 0;
        this.specialFullyNested = (value & 0x10) !== 0;
        this.initStep = 0;
        return;
      default:
        this.imr = value & 0xff;
    }
  }

  /** Poll-mode read: acknowledges like an INTA and returns 0x80 | pin, or 0 when nothing is pending. */
  pollRead(): number {
    this.pollPending = false;
    const pin = this.pending();
    if (pin < 0) return 0;
    this.ackPin(pin);
    return 0x80 | pin;
  }
}

export interface Pic8259Options {
  /** Called when the INT output (to the CPU's INTR / every LAPIC's LINT0) changes level. */
  onOutput?: (level: boolean) => void;
}

/** The master/slave pair. IRQ numbers 0-15; `setIrq` also makes it usable as an InterruptController. */
export class Pic8259Pair implements InterruptController {
  private readonly master = new PicChip(true, 0xf8);
  private readonly slave = new PicChip(false, 0xde);
  private output = false;
  onOutput: ((level: boolean) => void) | undefined;

  /** Port devices: register at PIC_MASTER_PORT (2 ports), PIC_SLAVE_PORT (2) and ELCR_PORT (2), or use attach(). */
  readonly masterPorts: BusDevice;
  readonly slavePorts: BusDevice;
  readonly elcrPorts: BusDevice;

  constructor(options: Pic8259Options = {}) {
    this.onOutput = options.onOutput;
    this.masterPorts = this.chipPorts(this.master);
    this.slavePorts = this.chipPorts(this.slave);
    this.elcrPorts = {
      read: (offset) => (offset === 0 ? this.master.elcr : offset === 1 ? this.slave.elcr : 0xff),
      write: (offset, _size, value) => {
        const chip = offset === 0 ? this.master : offset === 1 ? this.slave : undefined;
        if (!chip) return;
        chip.elcr = value & chip.elcrMask;
        chip.resampleLevels();
        this.update();
      },
    };
  }

  attach(pio: Bus): void {
    pio.register(PIC_MASTER_PORT, 2, this.masterPorts, 'pic-master');
    pio.register(PIC_SLAVE_PORT, 2, this.slavePorts, 'pic-slave');
    pio.register(ELCR_PORT, 2, this.elcrPorts, 'elcr');
  }

  setIrq(irq: number, level: boolean): void {
    if (!Number.isInteger(irq) || irq < 0 || irq > 15) throw new RangeError(`PIC: IRQ ${irq} out of range 0-15`);
    if (irq < 8) this.master.setInput(irq, level);
    else this.slave.setInput(irq - 8, level);
    this.update();
  }

  /** Level of the INT output: a request the CPU would take now. */
  hasInterrupt(): boolean {
    return this.output;
  }

  /** The INTA cycle: the vector of the highest-priority request (IRR -> ISR), or the spurious IRQ 7/15 vector. */
  acknowledge(): number {
    const pin = this.master.pending();
    if (pin < 0) return this.master.vectorBase + 7;
    this.master.ackPin(pin);
    let vector: number;
    if (pin === CASCADE_PIN && !this.master.single) {
      const spin = this.slave.pending();
      if (spin < 0) {
        vector = this.slave.vectorBase + 7;
      } else {
        this.slave.ackPin(spin);
        vector = this.slave.vectorBase + spin;
      }
    } else {
      vector = this.master.vectorBase + pin;
    }
    this.update();
    return vector;
  }

  /** For inspection (debugger, tests): IRR/ISR/IMR of both chips as 16-bit values (slave in bits 8-15). */
  get state(): { irr: number; isr: number; imr: number; elcr: number } {
    const pair = (m: number, s: number): number => (m & 0xff) | ((s & 0xff) << 8);
    return {
      irr: pair(this.master.irr, this.slave.irr),
      isr: pair(this.master.isr, this.slave.isr),
      imr: pair(this.master.imr, this.slave.imr),
      elcr: pair(this.master.elcr, this.slave.elcr),
    };
  }

  private chipPorts(chip: PicChip): BusDevice {
    return {
      read: (offset) => {
        if (chip.pollPending) {
          const v = chip.pollRead();
          this.update();
          return v;
        }
        if (offset & 1) return chip.imr;
        return chip.readIsr ? chip.isr : chip.irr;
      },
      write: (offset, _size, value) => {
        if (offset & 1) chip.writeData(value & 0xff);
        else chip.writeCommand(value & 0xff);
        this.update();
      },
    };
  }

  private update(): void {
    if (!this.master.single) this.master.setInput(CASCADE_PIN, this.slave.pending() >= 0);
    const out = this.master.pending() >= 0;
    if (out !== this.output) {
      this.output = out;
      this.onOutput?.(out);
    }
  }
}
