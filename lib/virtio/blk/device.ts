/**
 * virtio-blk device model (virtio 1.x spec 5.2) over a BlockBackend. One request queue; requests run
 * concurrently (bounded by the queue size), a FLUSH waits for the writes submitted before it, and the status
 * byte is written last, just before the chain goes on the used ring.
 */
import type { BlockBackend } from '../../block/backend.js';
import { sliceBuffers } from '../../block/backend.js';
import { DEVICE_ID_BLOCK, featureBit } from '../constants.js';
import { readConfigBytes, type VirtioDevice, type VirtioDeviceContext } from '../device.js';
import type { DescriptorChain, Virtqueue } from '../queue.js';
import {
  BLK_CONFIG,
  BLK_F_BLK_SIZE,
  BLK_F_DISCARD,
  BLK_F_FLUSH,
  BLK_F_RO,
  BLK_F_SEG_MAX,
  BLK_F_TOPOLOGY,
  BLK_F_WRITE_ZEROES,
  BLK_ID_BYTES,
  BLK_S_IOERR,
  BLK_S_OK,
  BLK_S_UNSUPP,
  BLK_T_DISCARD,
  BLK_T_FLUSH,
  BLK_T_GET_ID,
  BLK_T_IN,
  BLK_T_OUT,
  BLK_T_WRITE_ZEROES,
  DISCARD_SEGMENT_BYTES,
  DWZ_FLAG_UNMAP,
  REQUEST_HEADER_BYTES,
  SECTOR_SIZE,
} from './constants.js';

export interface VirtioBlkOptions {
  /** Serial number returned by GET_ID (ASCII, at most 20 bytes are used). */
  serial?: string;
  /** Present the disk read-only even if the backend is writable. */
  readOnly?: boolean;
  /** Maximum queue size (power of 2, default 256). */
  queueSize?: number;
}

/** Per discard / write-zeroes request limits advertised in config space. */
const MAX_DWZ_SECTORS = 1 << 22; // 2 GiB
const MAX_DWZ_SEGMENTS = 32;
const TWO_POW_32 = 0x1_0000_0000;

class RequestError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

export class VirtioBlk implements VirtioDevice {
  readonly deviceId = DEVICE_ID_BLOCK;
  readonly deviceFeatures: bigint;
  readonly queueMaxSizes: readonly number[];
  readonly configSize = BLK_CONFIG.size;
  readonly readOnly: boolean;
  /** Disk size in 512-byte sectors. */
  readonly capacity: number;
  private readonly config = new Uint8Array(BLK_CONFIG.size);
  private readonly serialBytes = new Uint8Array(BLK_ID_BYTES);
  private ctx: VirtioDeviceContext | undefined;
  private epoch = 0;
  private inFlight = 0;
  private notifyQueued = false;
  private requestErrors = 0;
  /** Writes not yet finished: a FLUSH waits for the ones submitted before it. */
  private readonly pendingWrites = new Set<Promise<unknown>>();

  constructor(
    readonly backend: BlockBackend,
    options: VirtioBlkOptions = {},
  ) {
    this.readOnly = (options.readOnly ?? false) || backend.readOnly;
    this.capacity = Math.floor(backend.size / SECTOR_SIZE);
    const queueSize = options.queueSize ?? 256;
    this.queueMaxSizes = [queueSize];
    let f = featureBit(BLK_F_SEG_MAX) | featureBit(BLK_F_BLK_SIZE) | featureBit(BLK_F_FLUSH) | featureBit(BLK_F_TOPOLOGY);
    f |= this.readOnly ? featureBit(BLK_F_RO) : featureBit(BLK_F_DISCARD) | featureBit(BLK_F_WRITE_ZEROES);
    this.deviceFeatures = f;
    this.serialBytes.set(new TextEncoder().encode(options.serial ?? '').subarray(0, BLK_ID_BYTES));

    const dv = new DataView(this.config.buffer);
    dv.setBigUint64(BLK_CONFIG.capacity, BigInt(this.capacity), true);
    // The header and the status byte take two descriptors of each chain.
    dv.setUint32(BLK_CONFIG.segMax, queueSize - 2, true);
    dv.setUint32(BLK_CONFIG.blkSize, SECTOR_SIZE, true);
    dv.setUint16(BLK_CONFIG.minIoSize, 1, true);
    dv.setUint32(BLK_CONFIG.optIoSize, Math.floor(backend.optimalIoSize / SECTOR_SIZE), true);
    dv.setUint16(BLK_CONFIG.numQueues, 1, true);
    dv.setUint32(BLK_CONFIG.maxDiscardSectors, MAX_DWZ_SECTORS, true);
    dv.setUint32(BLK_CONFIG.maxDiscardSeg, MAX_DWZ_SEGMENTS, true);
    dv.setUint32(BLK_CONFIG.discardSectorAlignment, Math.max(1, Math.floor(backend.optimalIoSize / SECTOR_SIZE)), true);
    dv.setUint32(BLK_CONFIG.maxWriteZeroesSectors, MAX_DWZ_SECTORS, true);
    dv.setUint32(BLK_CONFIG.maxWriteZeroesSeg, MAX_DWZ_SEGMENTS, true);
    // The device may deallocate on write-zeroes with UNMAP (virtio 1.x 5.2.4: write_zeroes_may_unmap).
    this.config[BLK_CONFIG.writeZeroesMayUnmap] = 1;
  }

  readConfig(offset: number, size: number): number {
    return readConfigBytes(this.config, offset, size);
  }

  writeConfig(): void {
    // Nothing is driver-writable: CONFIG_WCE is not offered.
  }

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

  /** Start every available request, up to one queue's worth in flight. */
  private drain(): void {
    const ctx = this.ctx;
    const q = ctx?.queues[0];
    if (!ctx || !q || !q.isActive) return;
    for (;;) {
      // A driver that recycles heads could otherwise make us start unbounded work.
      while (this.inFlight < q.size) {
        const chain = q.pop();
        if (!chain) break;
        this.start(ctx, q, chain);
        if (!q.isActive) return;
      }
      // While requests are in flight every completion drains the ring again, so the driver need not
      // notify (each notification is a VM exit). Once idle, notifications are re-enabled and the ring is
      // checked once more for a buffer added in between.
      if (this.inFlight > 0) {
        q.setNotificationsSuppressed(true);
        return;
      }
      q.setNotificationsSuppressed(false);
      const chain = q.pop();
      if (!chain) return;
      this.start(ctx, q, chain);
      if (!q.isActive) return;
    }
  }

  private start(ctx: VirtioDeviceContext, q: Virtqueue, chain: DescriptorChain): void {
    if (chain.writableLength === 0) {
      ctx.fail(`request ${chain.head} has no device-writable status byte`);
      return;
    }
    const epoch = this.epoch;
    this.inFlight++;
    this.execute(chain).then(
      (result) => this.finish(q, chain, epoch, result.status, result.written),
      (e: unknown) => {
        const status = e instanceof RequestError ? e.status : BLK_S_IOERR;
        if (!(e instanceof RequestError) || status === BLK_S_IOERR) this.logRequestError(ctx, `request ${chain.head}: ${(e as Error).message}`);
        this.finish(q, chain, epoch, status, 0);
      },
    );
  }

  /** The guest decides how many requests fail: log the first few, then one in a thousand. */
  private logRequestError(ctx: VirtioDeviceContext, message: string): void {
    const n = ++this.requestErrors;
    if (n <= 20 || n % 1000 === 0) ctx.log(n === 20 ? `${message} (further request errors: 1 in 1000 logged)` : message);
  }

  private finish(q: Virtqueue, chain: DescriptorChain, epoch: number, status: number, written: number): void {
    if (epoch !== this.epoch) return; // reset meanwhile: the driver no longer owns these buffers for us
    this.inFlight--;
    // The status byte is the last byte of the device-writable part (empty trailing buffers skipped).
    for (let i = chain.writable.length - 1; i >= 0; i--) {
      const w = chain.writable[i]!;
      if (w.length > 0) {
        w[w.length - 1] = status;
        break;
      }
    }
    q.complete(chain, written + 1);
    if (!this.notifyQueued) {
      // Completions that land together are signalled with one interrupt.
      this.notifyQueued = true;
      queueMicrotask(() => {
        this.notifyQueued = false;
        if (epoch === this.epoch) q.notifyIfNeeded();
        this.drain();
      });
    }
  }

  /** Run one request; resolves with the status and the bytes written into data buffers. */
  private async execute(chain: DescriptorChain): Promise<{ status: number; written: number }> {
    if (chain.readableLength < REQUEST_HEADER_BYTES) throw new RequestError(BLK_S_IOERR, 'request header shorter than 16 bytes');
    const header = gather(chain.readable, REQUEST_HEADER_BYTES);
    const hv = new DataView(header.buffer);
    const type = hv.getUint32(0, true);
    const sectorLow = hv.getUint32(8, true);
    const sectorHigh = hv.getUint32(12, true);
    const dataOut = sliceBuffers(chain.readable, REQUEST_HEADER_BYTES, chain.readableLength - REQUEST_HEADER_BYTES);
    const dataOutLength = chain.readableLength - REQUEST_HEADER_BYTES;
    const dataInLength = chain.writableLength - 1;
    const dataIn = sliceBuffers(chain.writable, 0, dataInLength);

    switch (type) {
      case BLK_T_IN: {
        const offset = this.checkRange(sectorLow, sectorHigh, dataInLength);
        await this.backend.read(offset, dataIn);
        return { status: BLK_S_OK, written: dataInLength };
      }
      case BLK_T_OUT: {
        if (this.readOnly) throw new RequestError(BLK_S_IOERR, 'write to a read-only disk');
        const offset = this.checkRange(sectorLow, sectorHigh, dataOutLength);
        await this.trackWrite(this.backend.write(offset, dataOut));
        return { status: BLK_S_OK, written: 0 };
      }
      case BLK_T_FLUSH: {
        await Promise.allSettled([...this.pendingWrites]);
        await this.backend.flush();
        return { status: BLK_S_OK, written: 0 };
      }
      case BLK_T_GET_ID: {
        const n = Math.min(BLK_ID_BYTES, dataInLength);
        copyInto(dataIn, this.serialBytes.subarray(0, n));
        return { status: BLK_S_OK, written: n };
      }
      case BLK_T_DISCARD:
      case BLK_T_WRITE_ZEROES: {
        if (this.readOnly) throw new RequestError(BLK_S_IOERR, 'discard/write-zeroes on a read-only disk');
        // Checked before copying: the payload length is guest-controlled (up to 4 GiB).
        if (dataOutLength > MAX_DWZ_SEGMENTS * DISCARD_SEGMENT_BYTES) {
          throw new RequestError(BLK_S_IOERR, `discard/write-zeroes payload of ${dataOutLength} bytes exceeds ${MAX_DWZ_SEGMENTS} segments`);
        }
        await this.trackWrite(this.discardOrZero(type, gather(dataOut, dataOutLength)));
        return { status: BLK_S_OK, written: 0 };
      }
      default:
        throw new RequestError(BLK_S_UNSUPP, `unsupported request type ${type}`);
    }
  }

  private async discardOrZero(type: number, segments: Uint8Array): Promise<void> {
    const n = segments.length / DISCARD_SEGMENT_BYTES;
    if (n === 0 || !Number.isInteger(n)) throw new RequestError(BLK_S_IOERR, `discard/write-zeroes payload of ${segments.length} bytes`);
    if (n > MAX_DWZ_SEGMENTS) throw new RequestError(BLK_S_IOERR, `${n} discard/write-zeroes segments (max ${MAX_DWZ_SEGMENTS})`);
    const dv = new DataView(segments.buffer, segments.byteOffset, segments.byteLength);
    const ranges: Array<{ offset: number; length: number; unmap: boolean }> = [];
    for (let i = 0; i < n; i++) {
      const o = i * DISCARD_SEGMENT_BYTES;
      const sectors = dv.getUint32(o + 8, true);
      const flags = dv.getUint32(o + 12, true);
      if (type === BLK_T_DISCARD && flags !== 0) throw new RequestError(BLK_S_UNSUPP, `discard segment flags 0x${flags.toString(16)}`);
      if (flags & ~DWZ_FLAG_UNMAP) throw new RequestError(BLK_S_UNSUPP, `write-zeroes segment flags 0x${flags.toString(16)}`);
      if (sectors > MAX_DWZ_SECTORS) throw new RequestError(BLK_S_IOERR, `segment of ${sectors} sectors (max ${MAX_DWZ_SECTORS})`);
      const offset = this.checkRange(dv.getUint32(o, true), dv.getUint32(o + 4, true), sectors * SECTOR_SIZE);
      ranges.push({ offset, length: sectors * SECTOR_SIZE, unmap: (flags & DWZ_FLAG_UNMAP) !== 0 });
    }
    for (const { offset, length, unmap } of ranges) {
      if (length === 0) continue;
      if (type === BLK_T_DISCARD) await this.backend.discard(offset, length);
      // UNMAP lets the backend free the range (a hole reads back as zeros) instead of writing zero blocks.
      else await this.backend.writeZeroes(offset, length, { unmap });
    }
  }

  /** Byte offset of `sector`, after checking the transfer is whole sectors inside the disk. */
  private checkRange(sectorLow: number, sectorHigh: number, length: number): number {
    if (length % SECTOR_SIZE !== 0) throw new RequestError(BLK_S_IOERR, `transfer of ${length} bytes is not whole sectors`);
    const sector = sectorHigh * TWO_POW_32 + sectorLow;
    if (sectorHigh >= TWO_POW_32 / SECTOR_SIZE || sector + length / SECTOR_SIZE > this.capacity) {
      throw new RequestError(BLK_S_IOERR, `sectors ${sector}+${length / SECTOR_SIZE} beyond capacity ${this.capacity}`);
    }
    return sector * SECTOR_SIZE;
  }

  private trackWrite<T>(p: Promise<T>): Promise<T> {
    this.pendingWrites.add(p);
    const done = (): void => {
      this.pendingWrites.delete(p);
    };
    p.then(done, done);
    return p;
  }
}

/** The first `length` bytes of the concatenated buffers, copied. */
function gather(buffers: readonly Uint8Array[], length: number): Uint8Array {
  const out = new Uint8Array(length);
  let pos = 0;
  for (const b of buffers) {
    if (pos >= length) break;
    const take = Math.min(b.length, length - pos);
    out.set(b.subarray(0, take), pos);
    pos += take;
  }
  return out;
}

function copyInto(buffers: readonly Uint8Array[], data: Uint8Array): void {
  let pos = 0;
  for (const b of buffers) {
    if (pos >= data.length) break;
    const take = Math.min(b.length, data.length - pos);
    b.set(data.subarray(pos, pos + take));
    pos += take;
  }
}
