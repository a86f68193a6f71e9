import { describe, expect, it } from 'vitest';
import { Bus } from '../../lib/machine/bus.js';
import type { IrqLine } from '../../lib/machine/irq.js';
import { COM1, UART_PORT_COUNT, Uart16550 } from '../../lib/devices/serial/uart16550.js';

const RBR = 0, THR = 0, DLL = 0, IER = 1, DLM = 1, IIR = 2, FCR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7;

class RecordingIrq implements IrqLine {
  level = false;
  edges: boolean[] = [];
  set(level: boolean): void {
    this.level = level;
    this.edges.push(level);
  }
}

/** A COM1 on a real PIO bus, driven with inb/outb like a guest driver. */
function com1(options: { onTransmit?: (b: number) => void } = {}) {
  const irq = new RecordingIrq();
  const uart = new Uart16550({ irq, ...options });
  const bus = new Bus('pio');
  bus.register(COM1.base, UART_PORT_COUNT, uart, 'com1');
  const inb = (reg: number) => bus.read(COM1.base + reg, 1);
  const outb = (reg: number, v: number) => bus.write(COM1.base + reg, 1, v);
  return { uart, irq, inb, outb };
}

describe('16550A: the Linux 8250 autoconfig probe', () => {
  it('passes the IER, loopback and FIFO tests and is identified as a 16550A (not a 16650/16750/XScale/NS)', () => {
    const { inb, outb } = com1();
    // IER test: the low nibble must read back 0 then 0xf.
    const savedIer = inb(IER);
    outb(IER, 0);
    const scratch2 = inb(IER) & 0x0f;
    outb(IER, 0x0f);
    const scratch3 = inb(IER) & 0x0f;
    outb(IER, savedIer);
    expect([scratch2, scratch3]).toEqual([0, 0x0f]);

    // Loopback test: MCR = LOOP | OUT2 | RTS must show DCD | CTS in MSR's status nibble.
    const saveMcr = inb(MCR);
    const saveLcr = inb(LCR);
    outb(MCR, 0x10 | 0x0a);
    const status1 = inb(MSR) & 0xf0;
    outb(MCR, saveMcr);
    expect(status1).toBe(0x90);

    // EFR probe and FIFO detection: IIR bits 7..6 = 11 means 16550A.
    outb(LCR, 0xbf);
    outb(2, 0); // EFR on 16650s; FCR here (FIFO off)
    outb(LCR, 0);
    outb(FCR, 0x01);
    expect(inb(IIR) >> 6).toBe(3);

    // autoconfig_16550a: with DLAB set, offset 2 is IIR (non-zero), so no EFR => not a 16650.
    outb(LCR, 0x80);
    expect(inb(2)).not.toBe(0);
    outb(LCR, 0xbf);
    expect(inb(2)).not.toBe(0);
    // National SuperIO check: EXCR1 (offset 2 with LCR 0xe0) must not follow MCR.LOOP.
    outb(LCR, 0);
    const mcr1 = inb(MCR);
    outb(LCR, 0xe0);
    const excr = inb(2);
    expect((excr ^ mcr1) & 0x10).toBe(0);
    outb(LCR, 0);
    outb(MCR, mcr1 ^ 0x10);
    outb(LCR, 0xe0);
    const excr2 = inb(2);
    outb(LCR, 0);
    outb(MCR, mcr1);
    expect((excr2 ^ mcr1) & 0x10).toBe(0);
    // TI16750 check: IIR bit 5 never set (64-byte FIFO absent), with or without DLAB.
    outb(FCR, 0x01 | 0x20);
    expect(inb(IIR) & 0xe0).toBe(0xc0);
    outb(FCR, 0);
    outb(LCR, 0x80);
    outb(FCR, 0x01 | 0x20);
    expect(inb(IIR) & 0xe0).toBe(0xc0);
    outb(FCR, 0);
    outb(LCR, 0);
    // XScale check: IER bit 6 (UUE) does not stick.
    outb(IER, 0x40);
    expect(inb(IER) & 0x40).toBe(0);
    outb(IER, 0);
    outb(LCR, saveLcr);

    // Scratch register holds a value; LSR is not 0xff (the startup "no UART" check).
    outb(SCR, 0xa5);
    expect(inb(SCR)).toBe(0xa5);
    outb(SCR, 0x5a);
    expect(inb(SCR)).toBe(0x5a);
    expect(inb(LSR)).toBe(0x60);
  });

  it('counts a 16-byte FIFO in loopback (size_fifo: not a 64-byte U6_16550A); host input waits meanwhile', () => {
    const { uart, irq, inb, outb } = com1();
    outb(FCR, 0x07);
    outb(MCR, 0x10 | 0x08); // loopback (OUT2 too: the IRQ must still stay quiet)
    uart.receive('typed early'); // the serial input is disconnected: must neither enter the FIFO nor be lost
    outb(LCR, 0x80);
    outb(DLL, 0x01);
    outb(DLM, 0x00);
    outb(LCR, 0x03);
    outb(IER, 0x0f);
    for (let i = 0; i < 256; i++) outb(THR, i);
    let count = 0;
    const seen: number[] = [];
    while (inb(LSR) & 0x01 && count < 256) {
      seen.push(inb(RBR));
      count++;
    }
    expect(count).toBe(16);
    expect(seen).toEqual(Array.from({ length: 16 }, (_, i) => i));
    expect(irq.edges).toEqual([]);
    outb(IER, 0);
    outb(MCR, 0x0b); // leave loopback: the host bytes arrive now
    const got: number[] = [];
    while (inb(LSR) & 0x01) got.push(inb(RBR));
    expect(Buffer.from(got).toString()).toBe('typed early');
  });

  it('passes serial8250_startup\'s THRE re-assertion test (so no UART_BUG_THRE)', () => {
    const { inb, outb } = com1();
    outb(LCR, 0x03);
    outb(MCR, 0x0b); // DTR | RTS | OUT2
    outb(IER, 0x02);
    const iir1 = inb(IIR);
    outb(IER, 0);
    outb(IER, 0x02);
    const iir = inb(IIR);
    outb(IER, 0);
    expect(iir1 & 0x01).toBe(0); // interrupt pending
    expect(iir & 0x0f).toBe(0x02); // and re-asserted after ETBEI was re-enabled
  });
});

describe('16550A: THRE interrupt', () => {
  it('raises on enable, clears on IIR read, re-raises after a THR write, and is gated by OUT2', () => {
    const out: number[] = [];
    const { irq, inb, outb } = com1({ onTransmit: (b) => out.push(b) });
    outb(IER, 0x02);
    expect(irq.level).toBe(false); // OUT2 clear: the PC's IRQ buffer is disabled
    expect(inb(IIR)).toBe(0x02); // still visible in IIR — and this read clears it
    expect(inb(IIR)).toBe(0x01);
    outb(IER, 0);
    outb(MCR, 0x08); // OUT2
    outb(IER, 0x02);
    expect(irq.level).toBe(true);
    expect(inb(IIR)).toBe(0x02);
    expect(irq.level).toBe(false);
    outb(THR, 0x41); // writing THR clears THRE; the byte leaves at once, so THR empties and THRE rises again
    expect(out).toEqual([0x41]);
    expect(irq.level).toBe(true);
    expect(inb(LSR) & 0x60).toBe(0x60);
    outb(IER, 0); // disabling the source drops the line
    expect(irq.level).toBe(false);
  });

  it('ranks line status > RX data > THRE > modem status', () => {
    const { uart, inb, outb } = com1();
    outb(MCR, 0x08);
    outb(IER, 0x0f);
    outb(MCR, 0x08 | 0x10 | 0x02); // loopback: RTS -> CTS change makes a modem-status delta
    outb(THR, 0x55); // loops back into RBR
    outb(THR, 0x66); // RBR full (FIFO off): overrun
    expect(inb(IIR)).toBe(0x06); // line status (OE)
    expect(inb(LSR) & 0x03).toBe(0x03); // DR | OE; reading clears OE
    expect(inb(IIR)).toBe(0x04); // received data
    expect(inb(RBR)).toBe(0x55);
    expect(inb(IIR)).toBe(0x02); // THRE (cleared by this read)
    expect(inb(IIR)).toBe(0x00); // modem status
    expect(inb(MSR) & 0x0f).not.toBe(0);
    expect(inb(IIR)).toBe(0x01);
    expect(uart.irqAsserted).toBe(false); // loopback forces the IRQ output off
  });
});

describe('16550A: receiver', () => {
  it('fills the RX FIFO up to 16 bytes and interrupts at the trigger level, with timeout below it', () => {
    const { uart, irq, inb, outb } = com1();
    outb(FCR, 0x01 | 0x06 | 0x80); // enable + clear, trigger 8
    outb(MCR, 0x08);
    outb(IER, 0x01);
    uart.receive(new Uint8Array([1, 2, 3]));
    expect(inb(IIR)).toBe(0xcc); // below trigger: character timeout
    uart.receive(new Uint8Array([4, 5, 6, 7, 8]));
    expect(inb(IIR)).toBe(0xc4); // at trigger: data available
    expect(irq.level).toBe(true);
    uart.receive(new Uint8Array(Array.from({ length: 20 }, (_, i) => 9 + i)));
    expect(uart.pendingInputBytes).toBe(28 - 16); // FIFO full, the rest waits host-side
    const got: number[] = [];
    while (inb(LSR) & 0x01) got.push(inb(RBR));
    expect(got).toEqual(Array.from({ length: 28 }, (_, i) => i + 1));
    expect(inb(LSR) & 0x02).toBe(0); // no overrun: host input is flow-controlled
    expect(irq.level).toBe(false);
  });

  it('honours each trigger level (1, 4, 8, 14)', () => {
    for (const [bits, level] of [[0x00, 1], [0x40, 4], [0x80, 8], [0xc0, 14]] as const) {
      const { uart, inb, outb } = com1();
      outb(FCR, 0x07 | bits);
      outb(IER, 0x01);
      if (level > 1) {
        uart.receive(new Uint8Array(level - 1));
        expect(inb(IIR) & 0x0f).toBe(0x0c);
      }
      uart.receive(new Uint8Array(1));
      expect(inb(IIR) & 0x0f).toBe(0x04);
    }
  });

  it('FCR clear-RX empties the FIFO; host bytes not yet received are kept', () => {
    const { uart, inb, outb } = com1();
    outb(FCR, 0x01);
    uart.receive(new Uint8Array(20).fill(7));
    outb(FCR, 0x03);
    // 16 bytes discarded by the guest, the 4 still queued host-side move in.
    let n = 0;
    while (inb(LSR) & 0x01) {
      inb(RBR);
      n++;
    }
    expect(n).toBe(4);
  });

  it('delivers a host break as NUL with LSR.BI and a line-status interrupt', () => {
    const { uart, inb, outb } = com1();
    outb(FCR, 0x01);
    outb(IER, 0x05);
    uart.receive('a');
    uart.sendBreak();
    expect(inb(RBR)).toBe(0x61);
    expect(inb(IIR) & 0x0f).toBe(0x06);
    const lsr = inb(LSR);
    expect(lsr & 0x11).toBe(0x11); // DR | BI
    expect(lsr & 0x80).toBe(0x80); // error in FIFO
    expect(inb(RBR)).toBe(0);
    expect(inb(LSR) & 0x90).toBe(0);
  });

  it('in 16450 mode (FIFO off) holds one character and reports no FIFO bits', () => {
    const { uart, inb } = com1();
    uart.receive('xy');
    expect(inb(IIR)).toBe(0x01);
    expect(uart.pendingInputBytes).toBe(1);
    expect(String.fromCharCode(inb(RBR), inb(RBR))).toBe('xy');
  });
});

describe('16550A: divisor latch, modem status', () => {
  it('DLAB switches offsets 0/1 to DLL/DLM without disturbing IER', () => {
    const out: number[] = [];
    const { uart, inb, outb } = com1({ onTransmit: (b) => out.push(b) });
    outb(IER, 0x05);
    outb(LCR, 0x83);
    outb(DLL, 0x01);
    outb(DLM, 0x00);
    expect([inb(DLL), inb(DLM)]).toEqual([1, 0]);
    outb(LCR, 0x03);
    expect(inb(IER)).toBe(0x05);
    expect(uart.divisor).toBe(1);
    expect(uart.baudRate).toBe(115200);
    outb(LCR, 0x83);
    outb(DLL, 0x0c);
    outb(LCR, 0x03);
    expect(uart.baudRate).toBe(9600);
    expect(out).toEqual([]); // divisor writes are not data
  });

  it('reports modem-line deltas in loopback and clears them on MSR read', () => {
    const { inb, outb } = com1();
    expect(inb(MSR)).toBe(0xb0); // CTS, DSR, DCD asserted by the host side
    outb(MCR, 0x10 | 0x04); // loopback with OUT1 -> RI; CTS/DSR/DCD drop
    expect(inb(MSR)).toBe(0x40 | 0x01 | 0x02 | 0x08);
    outb(MCR, 0x10); // RI falls: trailing edge
    expect(inb(MSR)).toBe(0x04);
    expect(inb(MSR)).toBe(0x00);
  });

  it('splits a 16-bit access into consecutive registers', () => {
    const { uart } = com1();
    uart.write(3, 2, 0x0b83); // LCR = 0x83, MCR = 0x0b
    expect(uart.read(3, 2)).toBe(0x0b83);
  });
});
