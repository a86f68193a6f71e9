import { describe, expect, it } from 'vitest';
import { Bus } from '../../lib/machine/bus.js';
import { Pic8259Pair } from '../../lib/devices/pic8259.js';

/** The PIC on a real port bus, initialised the way Linux's init_8259A does (vectors 0x30/0x38 on x86_64). */
function linuxPic(options: { autoEoi?: boolean } = {}): { pic: Pic8259Pair; pio: Bus; outputs: boolean[] } {
  const outputs: boolean[] = [];
  const pic = new Pic8259Pair({ onOutput: (level) => outputs.push(level) });
  const pio = new Bus('pio');
  pic.attach(pio);
  pio.write(0x21, 1, 0xff); // mask all
  pio.write(0xa1, 1, 0xff);
  pio.write(0x20, 1, 0x11); // ICW1: edge, cascade, ICW4 needed
  pio.write(0x21, 1, 0x30); // ICW2: vector base
  pio.write(0x21, 1, 0x04); // ICW3: slave on IR2
  pio.write(0x21, 1, options.autoEoi ? 0x03 : 0x01); // ICW4: 8086 mode (+ auto-EOI)
  pio.write(0xa0, 1, 0x11);
  pio.write(0xa1, 1, 0x38);
  pio.write(0xa1, 1, 0x02); // slave ID 2
  pio.write(0xa1, 1, 0x01);
  pio.write(0x21, 1, 0x00); // unmask all
  pio.write(0xa1, 1, 0x00);
  return { pic, pio, outputs };
}

function readIsr(pio: Bus, port: number): number {
  pio.write(port, 1, 0x0b); // OCW3: read ISR
  const v = pio.read(port, 1);
  pio.write(port, 1, 0x0a); // back to IRR
  return v;
}

function pulse(pic: Pic8259Pair, irq: number): void {
  pic.setIrq(irq, true);
  pic.setIrq(irq, false);
}

describe('8259A pair', () => {
  it('delivers an edge IRQ with the ICW2 vector and retires it with a non-specific EOI', () => {
    const { pic, pio, outputs } = linuxPic();
    expect(pic.hasInterrupt()).toBe(false);
    pulse(pic, 1);
    expect(pic.hasInterrupt()).toBe(true);
    expect(outputs).toEqual([true]);
    expect(pio.read(0x20, 1)).toBe(0x02); // IRR
    expect(pic.acknowledge()).toBe(0x31);
    expect(pic.hasInterrupt()).toBe(false);
    expect(readIsr(pio, 0x20)).toBe(0x02);
    pio.write(0x20, 1, 0x20); // EOI
    expect(readIsr(pio, 0x20)).toBe(0);
    expect(outputs).toEqual([true, false]);
  });

  it('holds a masked request until OCW1 unmasks it', () => {
    const { pic, pio } = linuxPic();
    pio.write(0x21, 1, 0x08);
    expect(pio.read(0x21, 1)).toBe(0x08);
    pulse(pic, 3);
    expect(pic.hasInterrupt()).toBe(false);
    pio.write(0x21, 1, 0x00);
    expect(pic.hasInterrupt()).toBe(true);
    expect(pic.acknowledge()).toBe(0x33);
  });

  it('resolves priority and nests only higher-priority requests', () => {
    const { pic, pio } = linuxPic();
    pulse(pic, 3);
    pulse(pic, 1);
    expect(pic.acknowledge()).toBe(0x31);
    // IRQ 3 is lower priority than the in-service IRQ 1.
    expect(pic.hasInterrupt()).toBe(false);
    pulse(pic, 0);
    expect(pic.acknowledge()).toBe(0x30); // IRQ 0 preempts
    pio.write(0x20, 1, 0x20); // EOI retires IRQ 0 (highest in service)
    expect(readIsr(pio, 0x20)).toBe(0x02);
    expect(pic.hasInterrupt()).toBe(false);
    pio.write(0x20, 1, 0x61); // specific EOI for IRQ 1
    expect(pic.acknowledge()).toBe(0x33);
  });

  it('routes slave IRQs through the cascade with both ISRs set until both EOIs', () => {
    const { pic, pio } = linuxPic();
    pulse(pic, 12);
    expect(pic.acknowledge()).toBe(0x3c);
    expect(readIsr(pio, 0xa0)).toBe(0x10);
    expect(readIsr(pio, 0x20)).toBe(0x04);
    pulse(pic, 9); // higher priority on the slave, but the master's IR2 is in service
    expect(pic.hasInterrupt()).toBe(false);
    pio.write(0xa0, 1, 0x64); // specific EOI IRQ 12 on the slave (as mask_and_ack_8259A)
    pio.write(0x20, 1, 0x62); // specific EOI cascade on the master
    expect(pic.hasInterrupt()).toBe(true);
    expect(pic.acknowledge()).toBe(0x39);
  });

  it('returns the spurious IRQ 7 vector when a level request vanishes before INTA', () => {
    const { pic, pio } = linuxPic();
    pio.write(0x4d0, 1, 0x20); // IRQ 5 level-triggered
    pic.setIrq(5, true);
    expect(pic.hasInterrupt()).toBe(true);
    pic.setIrq(5, false);
    expect(pic.acknowledge()).toBe(0x37);
    expect(readIsr(pio, 0x20)).toBe(0); // spurious IRQ 7 leaves ISR clear (what Linux checks)
  });

  it('re-raises a level IRQ that is still asserted after EOI, but not an edge IRQ', () => {
    const { pic, pio } = linuxPic();
    pio.write(0x4d1, 1, 0x04); // IRQ 10 level
    expect(pic.state.elcr).toBe(0x0400);
    pic.setIrq(10, true);
    pic.setIrq(4, true); // edge, held high
    expect(pic.acknowledge()).toBe(0x3a); // slave IRQ 10 rides IR2, above IR4
    pio.write(0xa0, 1, 0x20);
    pio.write(0x20, 1, 0x20);
    expect(pic.acknowledge()).toBe(0x3a); // still asserted: requested again
    pio.write(0xa0, 1, 0x20);
    pio.write(0x20, 1, 0x20);
    pic.setIrq(10, false);
    expect(pic.acknowledge()).toBe(0x34); // the latched edge
    pio.write(0x20, 1, 0x20);
    expect(pic.hasInterrupt()).toBe(false); // IRQ 4 stayed high: no new edge
    pic.setIrq(4, false);
    pic.setIrq(4, true);
    expect(pic.acknowledge()).toBe(0x34);
  });

  it('keeps the ELCR bits of IRQ 0, 1, 2, 8 and 13 edge-only', () => {
    const { pio } = linuxPic();
    pio.write(0x4d0, 1, 0xff);
    pio.write(0x4d1, 1, 0xff);
    expect(pio.read(0x4d0, 1)).toBe(0xf8);
    expect(pio.read(0x4d1, 1)).toBe(0xde);
  });

  it('auto-EOI mode leaves ISR clear', () => {
    const { pic, pio } = linuxPic({ autoEoi: true });
    pulse(pic, 6);
    expect(pic.acknowledge()).toBe(0x36);
    expect(readIsr(pio, 0x20)).toBe(0);
    pulse(pic, 7);
    expect(pic.acknowledge()).toBe(0x37);
  });

  it('poll mode reads the highest request and acknowledges it', () => {
    const { pic, pio } = linuxPic();
    pulse(pic, 5);
    pio.write(0x20, 1, 0x0c); // OCW3 poll
    expect(pio.read(0x20, 1)).toBe(0x85);
    expect(readIsr(pio, 0x20)).toBe(0x20);
    pio.write(0x20, 1, 0x0c);
    expect(pio.read(0x20, 1)).toBe(0); // nothing pending
  });

  it('OCW2 set-priority makes the next IRQ the highest', () => {
    const { pic, pio } = linuxPic();
    pio.write(0x20, 1, 0xc4); // lowest priority = IRQ 4, so IRQ 5 is highest
    pulse(pic, 1);
    pulse(pic, 6);
    expect(pic.acknowledge()).toBe(0x36);
    pio.write(0x20, 1, 0xa0); // rotate on non-specific EOI: IRQ 6 becomes lowest, IRQ 7 highest
    expect(pic.acknowledge()).toBe(0x31);
  });

  it('special mask mode lets lower-priority IRQs through while one is in service', () => {
    const { pic, pio } = linuxPic();
    pulse(pic, 1);
    expect(pic.acknowledge()).toBe(0x31);
    pulse(pic, 4);
    expect(pic.hasInterrupt()).toBe(false);
    pio.write(0x21, 1, 0x02); // mask the in-service IRQ 1
    pio.write(0x20, 1, 0x68); // OCW3: set special mask mode
    expect(pic.acknowledge()).toBe(0x34);
  });

  it('does not interrupt during initialisation, and ICW1 clears masks and requests', () => {
    const { pic, pio } = linuxPic();
    pio.write(0x21, 1, 0xff);
    pulse(pic, 3);
    pio.write(0x20, 1, 0x11);
    pio.write(0x21, 1, 0x20);
    expect(pic.hasInterrupt()).toBe(false);
    pio.write(0x21, 1, 0x04);
    pio.write(0x21, 1, 0x01);
    expect(pio.read(0x21, 1)).toBe(0);
    expect(pic.hasInterrupt()).toBe(false);
    pulse(pic, 3);
    expect(pic.acknowledge()).toBe(0x23);
  });

  it('rejects IRQ numbers outside 0-15', () => {
    const pic = new Pic8259Pair();
    expect(() => pic.setIrq(16, true)).toThrow(/IRQ 16/);
  });
});
