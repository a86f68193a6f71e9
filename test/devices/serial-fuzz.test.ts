// A guest can poke any register with any value, size and order: the UART must never throw, must only assert its
// IRQ output with MCR.OUT2 set outside loopback, and must still work afterwards.
import { describe, expect, it } from 'vitest';
import type { IrqLine } from '../../lib/machine/irq.js';
import { Uart16550 } from '../../lib/devices/serial/uart16550.js';

/** Small deterministic PRNG (xorshift32) so a failure is reproducible from the seed. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}

describe('16550A under random guest accesses', () => {
  for (const seed of [1, 42, 0xdeadbeef]) {
    it(`seed ${seed}: no exceptions, IRQ gated by OUT2/loopback, still receives afterwards`, () => {
      const next = rng(seed);
      let level = false;
      let badAssert = 0;
      let asserts = 0;
      let uart: Uart16550 | undefined;
      const irq: IrqLine = {
        set: (l) => {
          level = l;
          if (!l) return;
          asserts++;
          if ((uart!.read(4, 1) & 0x18) !== 0x08) badAssert++; // MCR read has no side effects
        },
      };
      uart = new Uart16550({ irq });
      uart.receive(Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 31 + 7) & 0xff)));
      for (let i = 0; i < 50_000; i++) {
        const r = next();
        const size = [1, 1, 1, 2, 4][r % 5]!;
        const offset = (r >>> 3) % (9 - size); // stays inside the 8-port range, as the Bus guarantees
        if (r & 0x8000_0000) uart.write(offset, size, next() & (size === 4 ? 0xffffffff : (1 << (size * 8)) - 1));
        else uart.read(offset, size);
        if (i % 1000 === 0) uart.receive(Uint8Array.of(i & 0xff)); // host input keeps arriving
      }
      expect(badAssert).toBe(0);
      expect(asserts).toBeGreaterThan(0); // the fuzzer did reach interrupt conditions
      // A driver's startup: DLAB off, FIFOs on and cleared, OUT2, interrupts off; then drain everything.
      uart.write(3, 1, 0x03);
      uart.write(2, 1, 0x07);
      uart.write(4, 1, 0x0b);
      uart.write(1, 1, 0x00);
      expect(level).toBe(false);
      uart.receive('after fuzzing');
      const got: number[] = [];
      let guard = 0;
      while (uart.read(5, 1) & 0x01 && guard++ < 20_000) got.push(uart.read(0, 1));
      expect(Buffer.from(got).subarray(-13).toString()).toBe('after fuzzing');
      expect(uart.pendingInputBytes).toBe(0);
    });
  }
});
