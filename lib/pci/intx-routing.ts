/**
 * Where PCI INTx# pins reach the IOAPIC, for a machine without ACPI (the MP table announces the same routes).
 *
 * Bus 0 slot `device`, pin INTA#..INTD# (1..4) goes to IOAPIC pin 16 + ((device + pin - 1) mod 8): the eight
 * IOAPIC inputs above the 16 ISA pins, rotated per slot the way the classic PCI swizzle spreads slots over
 * the interrupt links. Both our IOAPICs (the TypeScript one and KVM's in-kernel one) have 24 pins, and GSIs
 * 16-23 reach only the IOAPIC, so these lines never collide with an ISA device or the 8259.
 *
 * PCI interrupts are level-triggered and active-low (MP spec 1.4 table 4-10, "conforms to bus" for PCI), and
 * shareable: slots 8 apart share a pin. A platform line is the wired OR of its sources (PciIntxRouter).
 */
import type { InterruptController, IrqLine } from '../machine/irq.js';
import { PCI_SLOTS } from './constants.js';

/** First IOAPIC pin used for PCI INTx (the pins below it belong to ISA IRQs 0-15). */
export const PCI_INTX_FIRST_GSI = 16;
/** IOAPIC pins given to PCI INTx: 16..23. */
export const PCI_INTX_GSI_COUNT = 8;

/** The IOAPIC pin (= GSI) that bus 0 `device`'s interrupt pin `pin` (1 = INTA# .. 4 = INTD#) is wired to. */
export function pciIntxGsi(device: number, pin = 1): number {
  if (!Number.isInteger(device) || device < 0 || device >= PCI_SLOTS) {
    throw new RangeError(`PCI INTx routing: device ${device} is not 0..${PCI_SLOTS - 1}`);
  }
  if (!Number.isInteger(pin) || pin < 1 || pin > 4) throw new RangeError(`PCI INTx routing: pin ${pin} is not 1..4 (INTA#..INTD#)`);
  return PCI_INTX_FIRST_GSI + ((device + pin - 1) % PCI_INTX_GSI_COUNT);
}

/**
 * Wired-OR of PCI INTx sources onto interrupt controller lines: a GSI is asserted while any of its sources is.
 * Needed because an InterruptController input has one driver (KVM_IRQ_LINE and the TypeScript router both
 * keep a single level per GSI), while PCI slots share pins.
 */
export class PciIntxRouter {
  /** Asserted sources per GSI. */
  private readonly asserted = new Map<number, number>();

  constructor(private readonly controller: InterruptController) {}

  /** The line for bus 0 `device`, pin `pin`; each call returns a new, independent source on that GSI. */
  lineFor(device: number, pin = 1): IrqLine {
    const gsi = pciIntxGsi(device, pin);
    let level = false;
    return {
      set: (want) => {
        if (want === level) return;
        level = want;
        const before = this.asserted.get(gsi) ?? 0;
        const after = before + (want ? 1 : -1);
        this.asserted.set(gsi, after);
        if ((before === 0) !== (after === 0)) this.controller.setIrq(gsi, after > 0);
      },
    };
  }

  /** Whether `gsi` is asserted by at least one source (diagnostics and tests). */
  isAsserted(gsi: number): boolean {
    return (this.asserted.get(gsi) ?? 0) > 0;
  }
}
