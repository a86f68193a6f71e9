/**
 * virtio-net device model (virtio 1.x spec 5.1): receive queue 0, transmit queue 1, no control queue.
 * TX chains are copied out (header stripped) and handed to the backend synchronously. Frames from the backend
 * wait in a bounded host-side queue until the driver posts receive buffers; when it is full they are dropped
 * and counted. No checksum or segmentation offloads are offered, so the guest sends complete frames.
 */
import { MAX_FRAME_BYTES, MIN_FRAME_BYTES, type NetBackend } from '../../net/backend.js';
import { DEVICE_ID_NET, featureBit, hasFeature } from '../constants.js';
import { readConfigBytes, type VirtioDevice, type VirtioDeviceContext } from '../device.js';
import type { DescriptorChain, Virtqueue } from '../queue.js';
import {
  NET_CONFIG,
  NET_F_MAC,
  NET_F_MRG_RXBUF,
  NET_F_STATUS,
  NET_HDR,
  NET_HDR_BYTES,
  NET_HDR_GSO_NONE,
  NET_S_LINK_UP,
  RX_QUEUE,
  TX_QUEUE,
} from './constants.js';
import { defaultMac, parseMac } from './mac.js';

export interface VirtioNetOptions {
  /** MAC address ("52:54:00:12:34:56" or 6 bytes); default derived from `index`. */
  mac?: string | Uint8Array;
  /** NIC number, used for the default MAC (default 0). */
  index?: number;
  /** Maximum size of each queue (power of 2, default 256). */
  queueSize?: number;
  /** Offer VIRTIO_NET_F_MRG_RXBUF (default true). */
  mergeableRxBuffers?: boolean;
  /** Frames held while the guest has no receive buffers (default 256) ... */
  rxQueueFrames?: number;
  /** ... and their total bytes (default 4 MiB). */
  rxQueueBytes?: number;
}

export interface VirtioNetStats {
  txFrames: number;
  txBytes: number;
  /** TX frames not passed on: shorter than an Ethernet header, too long, or asking for GSO we did not offer. */
  txDropped: number;
  rxFrames: number;
  rxBytes: number;
  /** Frames dropped because the host-side receive queue was full. */
  rxDroppedQueueFull: number;
  /** Frames dropped because they did not fit the guest's receive buffers. */
  rxDroppedTooBig: number;
  /** Frames dropped because the link is down or the frame was malformed. */
  rxDroppedOther: number;
}

/** TX chains handled per event-loop turn before yielding (a vCPU thread can refill the ring concurrently). */
const TX_BATCH = 256;

export class VirtioNet implements VirtioDevice {
  readonly deviceId = DEVICE_ID_NET;
  readonly deviceFeatures: bigint;
  readonly queueMaxSizes: readonly number[];
  readonly configSize = NET_CONFIG.size;
  readonly mac: Uint8Array;
  readonly stats: VirtioNetStats = {
    txFrames: 0, txBytes: 0, txDropped: 0, rxFrames: 0, rxBytes: 0, rxDroppedQueueFull: 0, rxDroppedTooBig: 0, rxDroppedOther: 0,
  };
  private readonly config = new Uint8Array(NET_CONFIG.size);
  private readonly maxRxFrames: number;
  private readonly maxRxBytes: number;
  private ctx: VirtioDeviceContext | undefined;
  private mergeable = false;
  private linkUp = true;
  private rxPending: Uint8Array[] = [];
  private rxPendingBytes = 0;
  /** Receive chains taken from the ring but not yet filled (a merged frame may need several). */
  private rxHeld: DescriptorChain[] = [];
  private rxScheduled = false;
  private txScheduled = false;
  private epoch = 0;

  constructor(
    readonly backend: NetBackend,
    options: VirtioNetOptions = {},
  ) {
    this.mac = typeof options.mac === 'string' ? parseMac(options.mac) : options.mac ? checkMacBytes(options.mac) : defaultMac(options.index ?? 0);
    const queueSize = options.queueSize ?? 256;
    this.queueMaxSizes = [queueSize, queueSize];
    this.maxRxFrames = options.rxQueueFrames ?? 256;
    this.maxRxBytes = options.rxQueueBytes ?? 4 << 20;
    let f = featureBit(NET_F_MAC) | featureBit(NET_F_STATUS);
    if (options.mergeableRxBuffers ?? true) f |= featureBit(NET_F_MRG_RXBUF);
    this.deviceFeatures = f;
    this.config.set(this.mac, NET_CONFIG.mac);
    this.writeStatusBits();
    this.config[NET_CONFIG.maxVirtqueuePairs] = 1;
    backend.onFrame((frame) => this.receive(frame));
  }

  get isLinkUp(): boolean {
    return this.linkUp;
  }

  /** Frames waiting for receive buffers. */
  get rxQueueLength(): number {
    return this.rxPending.length;
  }

  /** Change the link state the guest sees (config-change interrupt when the driver is up). */
  setLinkUp(up: boolean): void {
    if (up === this.linkUp) return;
    this.linkUp = up;
    this.writeStatusBits();
    this.ctx?.configChanged();
    if (!up) this.dropPending();
  }

  readConfig(offset: number, size: number): number {
    return readConfigBytes(this.config, offset, size);
  }

  writeConfig(): void {
    // With VERSION_1 the MAC is read-only (VIRTIO_NET_F_CTRL_MAC_ADDR is not offered).
  }

  activate(context: VirtioDeviceContext): void {
    this.ctx = context;
    this.epoch++;
    this.mergeable = hasFeature(context.features, NET_F_MRG_RXBUF);
    this.rxHeld = [];
    this.scheduleRx();
  }

  reset(): void {
    this.ctx = undefined;
    this.epoch++;
    this.rxHeld = [];
    this.dropPending();
  }

  queueNotify(index: number): void {
    if (index === TX_QUEUE) this.processTx();
    else if (index === RX_QUEUE) this.deliverRx();
  }

  /** A frame from the backend. */
  private receive(frame: Uint8Array): void {
    if (frame.length < MIN_FRAME_BYTES || frame.length > MAX_FRAME_BYTES || !this.linkUp) {
      this.stats.rxDroppedOther++;
      return;
    }
    if (this.rxPending.length >= this.maxRxFrames || this.rxPendingBytes + frame.length > this.maxRxBytes) {
      this.stats.rxDroppedQueueFull++;
      return;
    }
    this.rxPending.push(frame);
    this.rxPendingBytes += frame.length;
    this.scheduleRx();
  }

  private scheduleRx(): void {
    if (this.rxScheduled) return;
    this.rxScheduled = true;
    // Frames arriving in one event-loop turn go out together under one interrupt.
    queueMicrotask(() => {
      this.rxScheduled = false;
      this.deliverRx();
    });
  }

  private deliverRx(): void {
    const ctx = this.ctx;
    const q = ctx?.queues[RX_QUEUE];
    if (!ctx || !q || !q.isActive) return;
    let delivered = 0;
    try {
      while (this.rxPending.length > 0 && q.isActive) {
        const frame = this.rxPending[0]!;
        const outcome = this.mergeable ? this.fillMerged(ctx, q, frame) : this.fillSingle(ctx, q, frame);
        if (outcome === 'wait') break;
        this.rxPending.shift();
        this.rxPendingBytes -= frame.length;
        if (outcome === 'delivered') {
          delivered++;
          this.stats.rxFrames++;
          this.stats.rxBytes += frame.length;
        } else {
          this.stats.rxDroppedTooBig++;
        }
      }
    } catch (e) {
      ctx.fail(e instanceof Error ? e.message : String(e));
      return;
    }
    if (delivered > 0) q.notifyIfNeeded();
  }

  /** Take one more receive chain from the ring (validated), or null when the driver has posted none. */
  private takeRxChain(ctx: VirtioDeviceContext, q: Virtqueue): DescriptorChain | null {
    const chain = q.pop();
    if (!chain) return null;
    if (chain.readableLength > 0) {
      ctx.fail(`receive buffer ${chain.head} has device-readable descriptors`);
      return null;
    }
    if (chain.writableLength < NET_HDR_BYTES) {
      ctx.fail(`receive buffer ${chain.head} of ${chain.writableLength} bytes cannot hold the ${NET_HDR_BYTES}-byte header`);
      return null;
    }
    return chain;
  }

  private fillSingle(ctx: VirtioDeviceContext, q: Virtqueue, frame: Uint8Array): 'delivered' | 'dropped' | 'wait' {
    let chain = this.rxHeld[0];
    if (!chain) {
      const c = this.takeRxChain(ctx, q);
      if (!c) return 'wait';
      chain = c;
      this.rxHeld = [chain];
    }
    // The chain stays held for the next frame when this one does not fit.
    if (chain.writableLength < NET_HDR_BYTES + frame.length) return 'dropped';
    this.rxHeld = [];
    writeHeader(chain.writable, 1);
    scatter(chain.writable, NET_HDR_BYTES, frame);
    q.complete(chain, NET_HDR_BYTES + frame.length);
    return 'delivered';
  }

  private fillMerged(ctx: VirtioDeviceContext, q: Virtqueue, frame: Uint8Array): 'delivered' | 'dropped' | 'wait' {
    const need = NET_HDR_BYTES + frame.length;
    let have = 0;
    for (const c of this.rxHeld) have += c.writableLength;
    while (have < need) {
      if (this.rxHeld.length >= q.size) return 'dropped'; // the whole ring cannot hold it
      const c = this.takeRxChain(ctx, q);
      if (!c) return 'wait';
      this.rxHeld.push(c);
      have += c.writableLength;
    }
    // Use only as many held chains as this frame needs; the rest wait for the next frame.
    let count = 0;
    for (let sum = 0; sum < need; count++) sum += this.rxHeld[count]!.writableLength;
    const chains = this.rxHeld.slice(0, count);
    this.rxHeld = this.rxHeld.slice(count);
    writeHeader(chains[0]!.writable, chains.length);
    // Header then frame, filling each chain completely before the next.
    let pos = -NET_HDR_BYTES;
    for (const c of chains) {
      const start = Math.max(pos, 0);
      const skip = pos < 0 ? NET_HDR_BYTES : 0;
      const take = Math.min(c.writableLength - skip, frame.length - start);
      scatter(c.writable, skip, frame.subarray(start, start + take));
      q.complete(c, skip + take);
      pos = start + take;
    }
    return 'delivered';
  }

  private processTx(): void {
    const ctx = this.ctx;
    const q = ctx?.queues[TX_QUEUE];
    if (!ctx || !q || !q.isActive) return;
    let handled = 0;
    try {
      for (;;) {
        if (handled >= TX_BATCH) {
          this.scheduleTx();
          break;
        }
        const chain = q.pop();
        if (!chain) break;
        handled++;
        if (chain.readableLength < NET_HDR_BYTES) {
          ctx.fail(`transmit buffer ${chain.head} of ${chain.readableLength} bytes is shorter than the ${NET_HDR_BYTES}-byte header`);
          return;
        }
        const header = gather(chain.readable, 0, NET_HDR_BYTES);
        const length = chain.readableLength - NET_HDR_BYTES;
        let frame: Uint8Array | undefined;
        if (length < MIN_FRAME_BYTES || length > MAX_FRAME_BYTES || header[NET_HDR.gsoType] !== NET_HDR_GSO_NONE) {
          this.stats.txDropped++;
        } else {
          frame = gather(chain.readable, NET_HDR_BYTES, length);
        }
        q.complete(chain, 0);
        if (frame) {
          this.stats.txFrames++;
          this.stats.txBytes += frame.length;
          this.sendToBackend(ctx, frame);
        }
        if (!q.isActive) return;
      }
    } catch (e) {
      ctx.fail(e instanceof Error ? e.message : String(e));
      return;
    }
    if (handled > 0) q.notifyIfNeeded();
  }

  private scheduleTx(): void {
    if (this.txScheduled) return;
    this.txScheduled = true;
    const epoch = this.epoch;
    setImmediate(() => {
      this.txScheduled = false;
      if (epoch === this.epoch) this.processTx();
    });
  }

  private sendToBackend(ctx: VirtioDeviceContext, frame: Uint8Array): void {
    try {
      this.backend.send(frame);
    } catch (e) {
      // A backend bug must not look like a driver error: count and log, keep the device running.
      this.stats.txDropped++;
      ctx.log(`backend send failed: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  private dropPending(): void {
    this.rxPending = [];
    this.rxPendingBytes = 0;
  }

  private writeStatusBits(): void {
    const status = this.linkUp ? NET_S_LINK_UP : 0;
    this.config[NET_CONFIG.status] = status & 0xff;
    this.config[NET_CONFIG.status + 1] = status >>> 8;
  }
}

function checkMacBytes(mac: Uint8Array): Uint8Array {
  if (mac.length !== 6) throw new RangeError(`mac: ${mac.length} bytes given, 6 expected`);
  if (mac[0]! & 1) throw new RangeError('mac: multicast address');
  return mac.slice();
}

function writeHeader(buffers: readonly Uint8Array[], numBuffers: number): void {
  const h = new Uint8Array(NET_HDR_BYTES);
  h[NET_HDR.numBuffers] = numBuffers & 0xff;
  h[NET_HDR.numBuffers + 1] = numBuffers >>> 8;
  scatter(buffers, 0, h);
}

/** Copy `data` into the concatenation of `buffers`, starting `offset` bytes in. */
function scatter(buffers: readonly Uint8Array[], offset: number, data: Uint8Array): void {
  let pos = 0;
  for (const b of buffers) {
    if (pos >= data.length) return;
    if (offset >= b.length) {
      offset -= b.length;
      continue;
    }
    const take = Math.min(b.length - offset, data.length - pos);
    b.set(data.subarray(pos, pos + take), offset);
    pos += take;
    offset = 0;
  }
}

/** A copy of `length` bytes of the concatenation of `buffers`, starting `offset` bytes in. */
function gather(buffers: readonly Uint8Array[], offset: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  let pos = 0;
  for (const b of buffers) {
    if (pos >= length) break;
    if (offset >= b.length) {
      offset -= b.length;
      continue;
    }
    const take = Math.min(b.length - offset, length - pos);
    out.set(b.subarray(offset, offset + take), pos);
    pos += take;
    offset = 0;
  }
  return out;
}
