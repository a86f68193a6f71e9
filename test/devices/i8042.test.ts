import { describe, expect, it } from 'vitest';
import { Bus } from '../../lib/machine/bus.js';
import type { IrqLine } from '../../lib/machine/irq.js';
import { I8042, SystemControlPortA, SYSTEM_CONTROL_PORT_A } from '../../lib/devices/i8042.js';

function machine() {
  let resets = 0;
  const a20: boolean[] = [];
  const irq1: boolean[] = [];
  const keyboardIrq: IrqLine = { set: (l) => irq1.push(l) };
  const kbc = new I8042({ onReset: () => resets++, onA20: (on) => a20.push(on), keyboardIrq });
  const bus = new Bus('pio');
  kbc.registerOn(bus);
  const port92 = new SystemControlPortA({ onReset: () => resets++, onA20: (on) => a20.push(on) });
  bus.register(SYSTEM_CONTROL_PORT_A, 1, port92, 'port92');
  const inb = (p: number) => bus.read(p, 1);
  const outb = (p: number, v: number) => bus.write(p, 1, v);
  return { kbc, inb, outb, resets: () => resets, a20, irq1 };
}

describe('i8042', () => {
  it('resets the machine on command 0xFE (pulse reset line), not on 0xFF', () => {
    const m = machine();
    m.outb(0x64, 0xff);
    expect(m.resets()).toBe(0);
    m.outb(0x64, 0xfe);
    expect(m.resets()).toBe(1);
  });

  it('resets on an output-port write (0xD1) with bit 0 clear and tracks A20', () => {
    const m = machine();
    m.outb(0x64, 0xd1);
    m.outb(0x60, 0x01); // reset line released, A20 off
    expect(m.resets()).toBe(0);
    expect(m.a20).toEqual([false]);
    m.outb(0x64, 0xd0);
    expect(m.inb(0x60) & 0x03).toBe(0x01);
    m.outb(0x64, 0xd1);
    m.outb(0x60, 0x02); // A20 on, reset asserted
    expect(m.resets()).toBe(1);
    expect(m.a20).toEqual([false, true]);
  });

  it('answers the Linux probe: status, self-test, command byte, port tests, enable/disable', () => {
    const m = machine();
    expect(m.inb(0x64)).not.toBe(0xff); // "no controller" check
    expect(m.inb(0x64) & 0x01).toBe(0); // output buffer empty
    m.outb(0x64, 0xaa);
    expect(m.inb(0x64) & 0x01).toBe(1);
    expect(m.inb(0x60)).toBe(0x55);
    m.outb(0x64, 0x20);
    const ctr = m.inb(0x60);
    expect(ctr & 0x04).toBe(0x04); // system flag
    m.outb(0x64, 0x60);
    expect(m.inb(0x64) & 0x08).toBe(0x08); // last write was a command
    m.outb(0x60, (ctr & ~0x03) | 0x30); // interrupts off, both ports disabled
    expect(m.inb(0x64) & 0x08).toBe(0);
    m.outb(0x64, 0x20);
    expect(m.inb(0x60)).toBe((ctr & ~0x03) | 0x30);
    m.outb(0x64, 0xae);
    m.outb(0x64, 0xa8);
    expect(m.kbc.commandByte & 0x30).toBe(0);
    m.outb(0x64, 0xad);
    m.outb(0x64, 0xa7);
    expect(m.kbc.commandByte & 0x30).toBe(0x30);
    m.outb(0x64, 0xab);
    expect(m.inb(0x60)).toBe(0x00);
    m.outb(0x64, 0xa9);
    expect(m.inb(0x60)).toBe(0x00);
    // AUX loopback (0xD3): the byte comes back flagged as aux data.
    m.outb(0x64, 0xd3);
    m.outb(0x60, 0x5a);
    expect(m.inb(0x64) & 0x21).toBe(0x21);
    expect(m.inb(0x60)).toBe(0x5a);
  });

  it('reports a receive time-out (0xFF, status bit 6) for bytes sent to the empty keyboard port', () => {
    const m = machine();
    m.outb(0x60, 0xf2); // keyboard "get ID"
    expect(m.inb(0x64) & 0x41).toBe(0x41);
    expect(m.inb(0x60)).toBe(0xff);
    expect(m.inb(0x64) & 0x41).toBe(0);
  });

  it('raises IRQ 1 while keyboard-port data waits and the command byte enables it', () => {
    const m = machine();
    m.outb(0x64, 0x20);
    expect(m.irq1).toEqual([true]);
    m.inb(0x60);
    expect(m.irq1).toEqual([true, false]);
    m.outb(0x64, 0x60);
    m.outb(0x60, 0x44); // keyboard interrupt off
    m.outb(0x64, 0xaa);
    expect(m.irq1).toEqual([true, false]);
    m.inb(0x60);
  });

  it('port 0x92: bit 0 resets, bit 1 gates A20', () => {
    const m = machine();
    expect(m.inb(0x92)).toBe(0x02);
    m.outb(0x92, 0x00);
    expect(m.a20).toEqual([false]);
    m.outb(0x92, 0x03);
    expect(m.resets()).toBe(1);
    expect(m.a20).toEqual([false, true]);
    expect(m.inb(0x92)).toBe(0x02);
  });
});

describe('i8042 under random guest accesses', () => {
  it('never throws, bounds its output queue, and still answers the self-test afterwards', () => {
    let x = 12345;
    const next = () => ((x = (x * 1103515245 + 12345) >>> 0) >>> 8) & 0xffff;
    let resets = 0;
    const kbc = new I8042({ onReset: () => resets++ });
    for (let i = 0; i < 20_000; i++) {
      const r = next();
      const dev = r & 1 ? kbc.control : kbc.data;
      if (r & 2) dev.write(0, [1, 2, 4][r % 3]!, next());
      else dev.read(0, 1);
    }
    expect(resets).toBeGreaterThan(0); // random commands include 0xF0..0xFE with bit 0 clear
    for (let i = 0; i < 100 && kbc.control.read(0, 1) & 0x01; i++) kbc.data.read(0, 1); // flush (Linux i8042_flush)
    expect(kbc.control.read(0, 1) & 0x01).toBe(0);
    kbc.control.write(0, 1, 0xaa);
    expect(kbc.data.read(0, 1)).toBe(0x55);
  });
});
