// The UART's IRQ output through the interpreter's 8259 pair, driven the way Linux's 8250 driver drives it:
// every new reason to interrupt reaches the CPU as a fresh IRQ 4, and a drained UART leaves nothing pending.
import { describe, expect, it } from 'vitest';
import { Bus } from '../../lib/machine/bus.js';
import { irqLine } from '../../lib/machine/irq.js';
import { Pic8259Pair } from '../../lib/devices/pic8259.js';
import { COM1, UART_PORT_COUNT, Uart16550 } from '../../lib/devices/serial/uart16550.js';

function platform() {
  const pio = new Bus('pio');
  const pic = new Pic8259Pair();
  pic.attach(pio);
  const out: number[] = [];
  const uart = new Uart16550({ irq: irqLine(pic, COM1.irq), onTransmit: (b) => out.push(b) });
  pio.register(COM1.base, UART_PORT_COUNT, uart, 'com1');
  const outb = (port: number, v: number) => pio.write(port, 1, v);
  const inb = (port: number) => pio.read(port, 1);
  // Linux's init_8259A: ICW1..ICW4 (vectors 0x30 / 0x38), everything masked but IRQ 4 and the cascade.
  for (const [port, v] of [[0x20, 0x11], [0x21, 0x30], [0x21, 0x04], [0x21, 0x01], [0xa0, 0x11], [0xa1, 0x38], [0xa1, 0x02], [0xa1, 0x01]]) {
    outb(port!, v!);
  }
  outb(0x21, 0xff & ~0x10 & ~0x04);
  outb(0xa1, 0xff);
  // serial8250_startup: FIFOs on (trigger 1), 8N1, DTR|RTS|OUT2, receive + line status interrupts.
  outb(0x3fa, 0x07);
  outb(0x3fb, 0x03);
  outb(0x3fc, 0x0b);
  outb(0x3f9, 0x05);
  /** One pass of the 8250 interrupt handler, then EOI. Returns what it received. */
  const handleInterrupt = (): number[] => {
    expect(pic.acknowledge()).toBe(0x34);
    const got: number[] = [];
    for (;;) {
      const iir = inb(0x3fa);
      if (iir & 0x01) break;
      while (inb(0x3fd) & 0x01) got.push(inb(0x3f8));
      if ((iir & 0x0f) === 0x02) {
        // nothing more to send: stop_tx
        outb(0x3f9, inb(0x3f9) & ~0x02);
      }
    }
    outb(0x20, 0x20);
    return got;
  };
  return { pic, uart, out, outb, inb, handleInterrupt };
}

describe('UART IRQ 4 through the 8259', () => {
  it('each burst of host input raises one interrupt; the handler drains it and nothing stays pending', () => {
    const p = platform();
    expect(p.pic.hasInterrupt()).toBe(false);
    p.uart.receive('ls\r');
    expect(p.pic.hasInterrupt()).toBe(true);
    expect(Buffer.from(p.handleInterrupt()).toString()).toBe('ls\r');
    expect(p.pic.hasInterrupt()).toBe(false);
    p.uart.receive('x');
    expect(p.pic.hasInterrupt()).toBe(true);
    expect(p.handleInterrupt()).toEqual([0x78]);
    expect(p.pic.hasInterrupt()).toBe(false);
  });

  it('more host input than the FIFO holds is delivered over successive reads without loss', () => {
    const p = platform();
    const text = 'a'.repeat(40) + 'END';
    p.uart.receive(text);
    const got: number[] = [];
    for (let i = 0; i < 10 && p.pic.hasInterrupt(); i++) got.push(...p.handleInterrupt());
    expect(Buffer.from(got).toString()).toBe(text);
  });

  it('start_tx (ETBEI 0 -> 1) interrupts; the handler stops TX and the line goes quiet', () => {
    const p = platform();
    p.outb(0x3f9, 0x07); // enable THRE interrupts: THR is empty, so this raises one at once
    expect(p.pic.hasInterrupt()).toBe(true);
    p.handleInterrupt();
    expect(p.inb(0x3f9) & 0x02).toBe(0);
    expect(p.pic.hasInterrupt()).toBe(false);
  });

  it('OUT2 clear keeps IRQ 4 away from the PIC even with data waiting', () => {
    const p = platform();
    p.outb(0x3fc, 0x03); // DTR | RTS, no OUT2
    p.uart.receive('q');
    expect(p.pic.hasInterrupt()).toBe(false);
    p.outb(0x3fc, 0x0b);
    expect(p.pic.hasInterrupt()).toBe(true);
  });

  it('autoconfig_irq-style probe: IER 0x0f with OUT2 and a THR write reach the PIC as IRQ 4', () => {
    const p = platform();
    p.outb(0x3f9, 0x00);
    p.outb(0x3fc, 0x04 | 0x08); // OUT1 | OUT2
    p.outb(0x3fc, 0x00);
    p.outb(0x3fc, 0x01 | 0x02 | 0x08); // DTR | RTS | OUT2
    p.outb(0x3f9, 0x0f);
    p.inb(0x3fd);
    p.inb(0x3f8);
    p.inb(0x3fa);
    p.inb(0x3fe);
    p.outb(0x3f8, 0xff);
    expect(p.pic.state.irr & 0x10).toBe(0x10);
    expect(p.pic.hasInterrupt()).toBe(true);
    expect(p.pic.acknowledge()).toBe(0x34);
  });
});
