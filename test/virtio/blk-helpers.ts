/** Test-side virtio-blk request building on top of TestDriver. */
import { GuestMemory } from '../../lib/machine/guest-memory.js';
import type { BlockBackend } from '../../lib/block/backend.js';
import { VirtioBlk, type VirtioBlkOptions } from '../../lib/virtio/blk/device.js';
import { VirtioMmioTransport } from '../../lib/virtio/mmio.js';
import { GuestAllocator, RecordingIrq, TestDriver, type Buffer, type InitOptions } from './driver.js';

export const T_IN = 0;
export const T_OUT = 1;
export const T_FLUSH = 4;
export const T_GET_ID = 8;
export const T_DISCARD = 11;
export const T_WRITE_ZEROES = 13;

export interface BlkRig {
  mem: GuestMemory;
  dev: VirtioBlk;
  transport: VirtioMmioTransport;
  driver: TestDriver;
  irq: RecordingIrq;
  logs: string[];
}

export function blkRig(
  backend: BlockBackend,
  opts: VirtioBlkOptions & InitOptions & { mem?: GuestMemory } = {},
): BlkRig {
  const mem = opts.mem ?? GuestMemory.ofSize(32 << 20);
  const irq = new RecordingIrq();
  const logs: string[] = [];
  const dev = new VirtioBlk(backend, opts);
  const transport = new VirtioMmioTransport(dev, mem, irq, { log: (m) => logs.push(m) });
  const driver = new TestDriver(transport, mem, irq, new GuestAllocator(0x1000, mem.end));
  driver.init(opts);
  return { mem, dev, transport, driver, irq, logs };
}

export interface BlkResult {
  status: number;
  data: Uint8Array;
  usedLen: number;
}

/**
 * One request: header, optional data out, optional data in of `inLength` bytes, status byte.
 * `split` puts each 512-byte piece of data in its own descriptor; `indirect` uses an indirect table.
 */
export async function blkRequest(
  rig: BlkRig,
  type: number,
  sector: number,
  options: { out?: Uint8Array; inLength?: number; split?: boolean; indirect?: boolean } = {},
): Promise<BlkResult> {
  const { driver, mem } = rig;
  const mark = driver.alloc.mark();
  try {
    const hdr = driver.alloc.alloc(16);
    mem.writeU32(hdr, type);
    mem.writeU32(hdr + 4, 0);
    mem.writeU64(hdr + 8, BigInt(sector));
    const bufs: Buffer[] = [{ addr: hdr, len: 16, write: false }];
    const pieces = (addr: number, len: number, write: boolean): void => {
      const step = options.split ? 512 : len;
      for (let o = 0; o < len; o += step) bufs.push({ addr: addr + o, len: Math.min(step, len - o), write });
    };
    if (options.out) {
      const a = driver.alloc.alloc(options.out.length, 512);
      mem.write(a, options.out);
      pieces(a, options.out.length, false);
    }
    let inAddr = 0;
    const inLength = options.inLength ?? 0;
    if (inLength > 0) {
      inAddr = driver.alloc.alloc(inLength, 512);
      mem.fill(inAddr, inLength, 0xcc);
      pieces(inAddr, inLength, true);
    }
    const st = driver.alloc.alloc(1);
    mem.writeU8(st, 0xff);
    bufs.push({ addr: st, len: 1, write: true });
    const table = options.indirect ? driver.alloc.alloc(16 * bufs.length, 16) : undefined;
    const used = await driver.run(0, bufs, table === undefined ? {} : { indirectTable: table });
    return { status: mem.readU8(st), data: inLength > 0 ? mem.read(inAddr, inLength) : new Uint8Array(0), usedLen: used.len };
  } finally {
    driver.alloc.release(mark);
  }
}

export function segment(sector: number, sectors: number, flags = 0): Uint8Array {
  const b = new Uint8Array(16);
  const dv = new DataView(b.buffer);
  dv.setBigUint64(0, BigInt(sector), true);
  dv.setUint32(8, sectors, true);
  dv.setUint32(12, flags, true);
  return b;
}

export function pattern(length: number, seed: number): Uint8Array {
  const b = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}
