/**
 * virtio-rng / entropy device (virtio 1.x spec 5.4): one queue of device-writable buffers, filled from the
 * host's CSPRNG asynchronously (crypto.randomFill runs in the libuv pool).
 */
import { randomFill } from 'node:crypto';
import { DEVICE_ID_RNG } from '../constants.js';
import type { VirtioDevice, VirtioDeviceContext } from '../device.js';
import type { DescriptorChain, Virtqueue } from '../queue.js';

export interface VirtioRngOptions {
  /** Maximum queue size (power of 2, default 64). */
  queueSize?: number;
  /** Most bytes supplied per request (the device may return fewer than asked: spec 5.4.6). */
  maxBytesPerRequest?: number;
}

export class VirtioRng implements VirtioDevice {
  readonly deviceId = DEVICE_ID_RNG;
  readonly deviceFeatures = 0n;
  readonly queueMaxSizes: readonly number[];
  readonly configSize = 0;
  private readonly maxBytes: number;
  private ctx: VirtioDeviceContext | undefined;
  private epoch = 0;
  private inFlight = 0;
  private notifyQueued = false;

  constructor(options: VirtioRngOptions = {}) {
    this.queueMaxSizes = [options.queueSize ?? 64];
    this.maxBytes = options.maxBytesPerRequest ?? 64 * 1024;
  }

  readConfig(): number {
    return 0;
  }

  writeConfig(): void {}

  activate(context: VirtioDeviceContext): void {
    this.ctx = context;
    this.epoch++;
    this.inFlight = 0;
  }

  reset(): void {
    this.ctx = undefined;
    this.epoch++;
    this.inFlight = 0;
  }

  queueNotify(index: number): void {
    if (index === 0) this.drain();
  }

  private drain(): void {
    const q = this.ctx?.queues[0];
    if (!q || !q.isActive) return;
    while (this.inFlight < q.size) {
      const chain = q.pop();
      if (!chain) break;
      this.fill(q, chain);
    }
  }

  private fill(q: Virtqueue, chain: DescriptorChain): void {
    const epoch = this.epoch;
    const targets: Uint8Array[] = [];
    let budget = this.maxBytes;
    for (const w of chain.writable) {
      if (budget === 0) break;
      const part = w.subarray(0, Math.min(w.length, budget));
      targets.push(part);
      budget -= part.length;
    }
    let written = this.maxBytes - budget;
    this.inFlight++;
    let remaining = targets.length;
    const done = (): void => {
      if (epoch !== this.epoch) return;
      this.inFlight--;
      q.complete(chain, written);
      this.scheduleNotify(q, epoch);
    };
    if (remaining === 0) {
      queueMicrotask(done);
      return;
    }
    for (const t of targets) {
      randomFill(t, (err) => {
        if (err) {
          // Never claim bytes that might not be random: report nothing written.
          for (const x of targets) x.fill(0);
          written = 0;
          this.ctx?.log(`randomFill failed: ${err.message}`);
        }
        if (--remaining === 0) done();
      });
    }
  }

  private scheduleNotify(q: Virtqueue, epoch: number): void {
    if (this.notifyQueued) return;
    this.notifyQueued = true;
    queueMicrotask(() => {
      this.notifyQueued = false;
      if (epoch === this.epoch) q.notifyIfNeeded();
      this.drain();
    });
  }
}
