/**
 * The guest side of a virtio-net device for tests: a NetBackend-shaped adapter that transmits frames through
 * the TX queue and receives them from posted RX buffers (handling MRG_RXBUF's num_buffers), driven by the
 * device's interrupt line like a guest driver. Lets test-side network stacks run over the real device.
 */
import type { NetBackend } from '../../lib/net/backend.js';
import { RX_QUEUE, TX_QUEUE, NET_HDR_BYTES } from '../../lib/virtio/net/constants.js';
import type { NetRig } from './net-helpers.js';

const TX_SLOT = NET_HDR_BYTES + 65549;

export class GuestNic implements NetBackend {
  rxFrames = 0;
  txFrames = 0;
  private cb: ((frame: Uint8Array) => void) | undefined;
  private closed = false;
  private readonly rxBuffers = new Map<number, number>(); // head → guest address
  private readonly freeTx: number[] = [];
  private readonly txInFlight = new Map<number, number>(); // head → slot address
  private readonly txBacklog: Uint8Array[] = [];
  private partial: { parts: Uint8Array[]; remaining: number } | undefined;
  private readonly loop: Promise<void>;

  constructor(private readonly rig: NetRig, private readonly rxBufSize = 2048, rxCount = 64, txSlots = 32) {
    const { driver } = rig;
    for (let i = 0; i < txSlots; i++) this.freeTx.push(driver.alloc.alloc(TX_SLOT, 16));
    for (let i = 0; i < rxCount; i++) this.postRx(driver.alloc.alloc(rxBufSize, 16));
    driver.notify(RX_QUEUE);
    this.loop = this.run();
  }

  onFrame(cb: (frame: Uint8Array) => void): void {
    this.cb = cb;
  }

  send(frame: Uint8Array): void {
    this.txBacklog.push(frame);
    this.flushTx();
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.loop;
  }

  private postRx(addr: number): void {
    const head = this.rig.driver.queues[RX_QUEUE]!.add([{ addr, len: this.rxBufSize, write: true }]);
    this.rxBuffers.set(head, addr);
  }

  private flushTx(): void {
    const { driver, mem } = this.rig;
    const q = driver.queues[TX_QUEUE]!;
    let sent = false;
    for (let u = q.popUsed(); u; u = q.popUsed()) {
      q.recycle(u.id);
      this.freeTx.push(this.txInFlight.get(u.id)!);
      this.txInFlight.delete(u.id);
    }
    while (this.txBacklog.length > 0 && this.freeTx.length > 0) {
      const frame = this.txBacklog.shift()!;
      const slot = this.freeTx.pop()!;
      mem.fill(slot, NET_HDR_BYTES, 0);
      mem.write(slot + NET_HDR_BYTES, frame);
      const head = q.add([{ addr: slot, len: NET_HDR_BYTES + frame.length, write: false }]);
      this.txInFlight.set(head, slot);
      this.txFrames++;
      sent = true;
    }
    if (sent) driver.notify(TX_QUEUE);
  }

  private drainRx(): void {
    const { driver, mem } = this.rig;
    const q = driver.queues[RX_QUEUE]!;
    let reposted = false;
    for (let u = q.popUsed(); u; u = q.popUsed()) {
      const addr = this.rxBuffers.get(u.id)!;
      this.rxBuffers.delete(u.id);
      q.recycle(u.id);
      if (!this.partial) {
        const numBuffers = mem.readU16(addr + 10);
        this.partial = { parts: [mem.read(addr + NET_HDR_BYTES, u.len - NET_HDR_BYTES)], remaining: numBuffers - 1 };
      } else {
        this.partial.parts.push(mem.read(addr, u.len));
        this.partial.remaining--;
      }
      if (this.partial.remaining <= 0) {
        const parts = this.partial.parts;
        this.partial = undefined;
        const frame = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
        let o = 0;
        for (const p of parts) {
          frame.set(p, o);
          o += p.length;
        }
        this.rxFrames++;
        this.cb?.(frame);
      }
      this.postRx(addr);
      reposted = true;
    }
    if (reposted) driver.notify(RX_QUEUE);
  }

  private async run(): Promise<void> {
    while (!this.closed) {
      this.rig.driver.ackInterrupt();
      this.drainRx();
      this.flushTx();
      await this.rig.irq.wait(2);
    }
  }
}
