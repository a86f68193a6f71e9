import { once } from 'node:events';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { Uart16550 } from '../../lib/devices/serial/uart16550.js';

const RBR = 0, THR = 0, FCR = 2, LSR = 5;

/** What a polling guest driver does: read RBR while LSR.DR is set. */
function guestDrain(uart: Uart16550, into: number[]): void {
  while (uart.read(LSR, 1) & 0x01) into.push(uart.read(RBR, 1));
}

describe('Uart16550.stream (Duplex)', () => {
  it('round-trips: guest output is readable, stream writes become guest input', async () => {
    const uart = new Uart16550();
    uart.write(FCR, 1, 0x07);
    const received: Buffer[] = [];
    uart.stream.on('data', (chunk: Buffer) => received.push(chunk));
    for (const c of Buffer.from('hello, host\r\n')) uart.write(THR, 1, c);
    await nextTurn();
    expect(Buffer.concat(received).toString()).toBe('hello, host\r\n');

    uart.stream.write('ping');
    const got: number[] = [];
    guestDrain(uart, got);
    expect(Buffer.from(got).toString()).toBe('ping');
  });

  it('flow-controls host input: 1000 bytes written at once all reach the guest, in order', () => {
    const uart = new Uart16550();
    uart.write(FCR, 1, 0x01);
    const data = Buffer.from(Array.from({ length: 1000 }, (_, i) => (i * 7) & 0xff));
    uart.stream.write(data);
    expect(uart.pendingInputBytes).toBe(1000 - 16);
    const got: number[] = [];
    guestDrain(uart, got);
    expect(Buffer.from(got).equals(data)).toBe(true);
    expect(uart.read(LSR, 1) & 0x02).toBe(0);
  });

  it('copies host input: the caller may reuse its buffer at once', () => {
    const uart = new Uart16550();
    const buf = Buffer.from('abc');
    uart.receive(buf);
    uart.receive(buf.subarray(1));
    buf.fill(0x7a);
    const got: number[] = [];
    guestDrain(uart, got);
    expect(Buffer.from(got).toString()).toBe('abcbc');
  });

  it('applies backpressure to a large writer and releases it as the guest reads', async () => {
    const uart = new Uart16550();
    uart.write(FCR, 1, 0x01);
    const data = Buffer.alloc(300 * 1024);
    for (let i = 0; i < data.length; i++) data[i] = (i ^ (i >> 8)) & 0xff;
    let finished = false;
    const writes = [0, 1, 2].map((k) => {
      const part = data.subarray(k * 100 * 1024, (k + 1) * 100 * 1024);
      return new Promise<void>((resolve, reject) => uart.stream.write(part, (e) => (e ? reject(e) : resolve())));
    });
    void Promise.all(writes).then(() => (finished = true));
    await nextTurn();
    expect(finished).toBe(false); // 100 KiB queued is above the 64 KiB mark: the writer waits
    expect(uart.pendingInputBytes).toBeLessThanOrEqual(100 * 1024);
    const got: number[] = [];
    while (got.length < data.length) {
      guestDrain(uart, got);
      await nextTurn();
    }
    await Promise.all(writes);
    expect(Buffer.from(got).equals(data)).toBe(true);
  });

  it('batches output: a burst is delivered as one chunk, flushOutput() delivers synchronously', async () => {
    const uart = new Uart16550();
    const chunks: Uint8Array[] = [];
    const off = uart.addOutputListener((c) => chunks.push(c));
    for (const c of Buffer.from('abc')) uart.write(THR, 1, c);
    expect(chunks).toHaveLength(0);
    uart.flushOutput();
    expect(chunks.map((c) => Buffer.from(c).toString())).toEqual(['abc']);
    off();
    uart.write(THR, 1, 0x78);
    await nextTurn();
    expect(chunks).toHaveLength(1);
  });

  it('close(): flushes output, ends the readable side, releases a blocked writer, drops later input', async () => {
    const uart = new Uart16550();
    const stream = uart.stream;
    let text = '';
    stream.on('data', (c: Buffer) => (text += c.toString()));
    const ended = once(stream, 'end');
    let released = false;
    stream.write(Buffer.alloc(100 * 1024), () => (released = true));
    uart.write(THR, 1, 0x62);
    uart.write(THR, 1, 0x79);
    uart.write(THR, 1, 0x65);
    uart.close();
    uart.close();
    await ended;
    expect(text).toBe('bye');
    expect(released).toBe(true);
    uart.receive('late');
    expect(uart.pendingInputBytes).toBe(0);
    expect(uart.isClosed).toBe(true);
  });

  it('ends the readable side only when destroyed; readable in paused mode via once("readable")', async () => {
    const uart = new Uart16550();
    const stream = uart.stream;
    uart.write(THR, 1, 0x21);
    await once(stream, 'readable');
    expect(String(stream.read())).toBe('!');
    stream.destroy();
    await once(stream, 'close');
  });
});
