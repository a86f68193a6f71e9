/**
 * qcow2 image backend: reads and writes through the two-level cluster map, allocates clusters at the end of
 * the file with exact refcounts, copies partial clusters from the backing file on first write, and uses v3
 * zero clusters for write-zeroes/discard. Metadata is written through immediately (data first, then the
 * refcount, then the L2 entry), so a crash can leak clusters but never corrupt the map. All operations are
 * serialized by one mutex; every file access is async. Discard (and write-zeroes with unmap) also punches a
 * hole under the host clusters that become zero clusters: they stay allocated in the map (a later write reuses
 * them) but stop taking space in the host file.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import type { NativeFallocate } from '../../kvm/native.js';
import { AsyncMutex, BlockBackendError, sliceBuffers, totalLength, type BlockBackend, type WriteZeroesOptions } from '../backend.js';
import { fallocateRange, nativeFallocate } from '../fallocate.js';
import {
  HI_COMPRESSED,
  HI_COPIED,
  INCOMPAT_COMPRESSION,
  INCOMPAT_CORRUPT,
  INCOMPAT_DATA_FILE,
  INCOMPAT_DIRTY,
  INCOMPAT_EXTL2,
  LO_ZERO,
  entryOffset,
  entryWords,
  parseHeader,
  type Qcow2Header,
} from './format.js';

export interface Qcow2OpenOptions {
  readOnly?: boolean;
  /** Opens a backing file (given the resolved path and the format from the header, if any). */
  openBacking?: (path: string, format: string | undefined) => Promise<BlockBackend>;
  /** fallocate used to free the host space of discarded clusters: default the addon's; null: never free it. */
  fallocate?: NativeFallocate | null;
  /** Where the one-time "this filesystem cannot punch holes" note goes (default console.warn). */
  log?: (line: string) => void;
}

/** Cap on loaded tables: L1 and refcount tables above this are refused (QEMU uses 32 MiB too). */
const MAX_TABLE_BYTES = 32 << 20;
/** Metadata caches are bounded in bytes (tables are one cluster each, up to 2 MiB). */
const L2_CACHE_BYTES = 32 << 20;
const REFBLOCK_CACHE_BYTES = 8 << 20;

type Mapping =
  | { kind: 'data'; host: number; copied: boolean }
  | { kind: 'zero'; host: number }
  | { kind: 'unallocated' }
  | { kind: 'compressed' };

export class Qcow2Backend implements BlockBackend {
  readonly size: number;
  readonly optimalIoSize: number;
  private readonly clusterSize: number;
  private readonly l2Entries: number;
  private readonly refcountBits: number;
  private readonly refsPerBlock: number;
  private readonly l2Cache = new Map<number, Uint8Array>();
  private readonly refCache = new Map<number, Uint8Array>();
  private readonly mutex = new AsyncMutex();
  private refTable: Uint8Array;
  private refTableOffset: number;
  private fileEnd: number;
  private closed = false;
  /** Null once the filesystem refused PUNCH_HOLE (noted once). */
  private fallocate: NativeFallocate | null = null;
  private log: (line: string) => void = (line) => console.warn(line);

  private constructor(
    readonly path: string,
    private readonly fh: FileHandle,
    readonly header: Qcow2Header,
    private readonly l1: Uint8Array,
    refTable: Uint8Array,
    fileSize: number,
    readonly readOnly: boolean,
    readonly backing: BlockBackend | undefined,
  ) {
    this.size = header.size;
    this.clusterSize = 2 ** header.clusterBits;
    this.optimalIoSize = this.clusterSize;
    this.l2Entries = this.clusterSize / 8;
    this.refcountBits = 2 ** header.refcountOrder;
    this.refsPerBlock = (this.clusterSize * 8) / this.refcountBits;
    this.refTable = refTable;
    this.refTableOffset = header.refcountTableOffset;
    this.fileEnd = Math.ceil(fileSize / this.clusterSize) * this.clusterSize;
  }

  static async open(path: string, options: Qcow2OpenOptions = {}): Promise<Qcow2Backend> {
    const readOnly = options.readOnly ?? false;
    let fh: FileHandle;
    try {
      fh = await open(path, readOnly ? 'r' : 'r+');
    } catch (e) {
      throw new BlockBackendError(path, `cannot open qcow2 image: ${(e as Error).message}`, (e as NodeJS.ErrnoException).code);
    }
    let backing: BlockBackend | undefined;
    try {
      const fileSize = (await fh.stat()).size;
      const probe = await readAt(fh, 0, Math.min(fileSize, 1 << 21));
      const h = parseHeader(probe, path);
      checkSupported(h, path, readOnly);
      const cs = 2 ** h.clusterBits;
      const first = probe.subarray(0, Math.min(cs, probe.length));
      const header = parseHeader(first, path); // extensions and backing name must lie in the first cluster
      if (header.l1Size * (cs / 8) * cs < header.size) {
        throw new BlockBackendError(path, `qcow2 L1 table of ${header.l1Size} entries cannot map ${header.size} bytes`);
      }
      const l1 = await readTable(fh, path, 'L1 table', header.l1TableOffset, header.l1Size * 8, cs);
      const refTable = await readTable(fh, path, 'refcount table', header.refcountTableOffset, header.refcountTableClusters * cs, cs);
      if (header.backingFile !== undefined) {
        if (!options.openBacking) throw new BlockBackendError(path, `backing file ${header.backingFile} given but no way to open it`);
        const bpath = isAbsolute(header.backingFile) ? header.backingFile : resolve(dirname(path), header.backingFile);
        backing = await options.openBacking(bpath, header.backingFormat);
      }
      const img = new Qcow2Backend(path, fh, header, l1, refTable, fileSize, readOnly, backing);
      img.fallocate = options.fallocate === undefined ? nativeFallocate() : options.fallocate;
      if (options.log) img.log = options.log;
      if (!readOnly && header.version === 3 && header.autoclearFeatures !== 0n) {
        // We do not maintain whatever the autoclear bits promise (e.g. bitmaps): clear them, as the spec asks.
        await writeAll(fh, new Uint8Array(8), 88);
      }
      return img;
    } catch (e) {
      await fh.close();
      await backing?.close();
      throw e;
    }
  }

  /**
   * Reads map the range under the lock, then move data without it, so several reads (and the backing file's
   * I/O) overlap. Clusters are never freed for reuse, so a mapping stays valid after the lock is released;
   * a read racing a write to the same sectors may see either contents, as on real disks.
   */
  async read(offset: number, buffers: readonly Uint8Array[]): Promise<void> {
    const transfers = await this.mutex.run(() => this.planRead(offset, buffers));
    await Promise.all(transfers.map((t) => t()));
  }

  write(offset: number, buffers: readonly Uint8Array[]): Promise<void> {
    if (this.readOnly) return Promise.reject(new BlockBackendError(this.path, 'write to a read-only image', 'EROFS'));
    return this.mutex.run(() => this.writeLocked(offset, buffers));
  }

  flush(): Promise<void> {
    if (this.readOnly) return Promise.resolve();
    return this.mutex.run(() => this.fh.datasync());
  }

  writeZeroes(offset: number, length: number, options: WriteZeroesOptions = {}): Promise<void> {
    if (this.readOnly) return Promise.reject(new BlockBackendError(this.path, 'write to a read-only image', 'EROFS'));
    return this.mutex.run(() => this.zeroLocked(offset, length, true, options.unmap ?? false));
  }

  discard(offset: number, length: number): Promise<void> {
    if (this.readOnly) return Promise.reject(new BlockBackendError(this.path, 'write to a read-only image', 'EROFS'));
    // Discard is a hint: whole clusters become zero clusters, partial ones keep their data.
    return this.mutex.run(() => this.zeroLocked(offset, length, false, true));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.mutex.run(async () => {
      await this.fh.close();
      await this.backing?.close();
    });
  }

  // ---- reading ----

  /** Map [offset, offset+length) to host transfers (zero ranges are filled right away). */
  private async planRead(offset: number, buffers: readonly Uint8Array[]): Promise<Array<() => Promise<void>>> {
    const total = totalLength(buffers);
    this.checkBounds(offset, total);
    const cs = this.clusterSize;
    const transfers: Array<() => Promise<void>> = [];
    let pos = 0;
    while (pos < total) {
      const guest = offset + pos;
      const m = await this.lookup(guest);
      let n = Math.min(cs - (guest % cs), total - pos);
      if (m.kind === 'data') {
        // Extend over following clusters that are contiguous on the host: one readv instead of many.
        let hostEnd = m.host + (guest % cs) + n;
        while (pos + n < total) {
          const next = await this.lookup(guest + n);
          if (next.kind !== 'data' || next.host !== hostEnd) break;
          const more = Math.min(cs, total - pos - n);
          n += more;
          hostEnd += more;
        }
        const parts = sliceBuffers(buffers, pos, n);
        const host = m.host + (guest % cs);
        transfers.push(() => readInto(this.fh, host, parts));
      } else if (m.kind === 'unallocated' && this.backing) {
        const parts = sliceBuffers(buffers, pos, n);
        const len = n;
        transfers.push(() => this.readBacking(guest, parts, len));
      } else if (m.kind === 'compressed') {
        throw new BlockBackendError(this.path, `compressed cluster at guest offset ${guest}: compressed qcow2 images are not supported`);
      } else {
        for (const b of sliceBuffers(buffers, pos, n)) b.fill(0);
      }
      pos += n;
    }
    return transfers;
  }

  /** Bytes of the backing file at `guest` (zeros past its end). */
  private async readBacking(guest: number, parts: Uint8Array[], n: number): Promise<void> {
    const backing = this.backing!;
    const inside = Math.max(0, Math.min(n, backing.size - guest));
    if (inside > 0) await backing.read(guest, sliceBuffers(parts, 0, inside));
    if (inside < n) for (const b of sliceBuffers(parts, inside, n - inside)) b.fill(0);
  }

  // ---- writing ----

  private async writeLocked(offset: number, buffers: readonly Uint8Array[]): Promise<void> {
    const total = totalLength(buffers);
    this.checkBounds(offset, total);
    const cs = this.clusterSize;
    let pos = 0;
    while (pos < total) {
      const guest = offset + pos;
      const within = guest % cs;
      const n = Math.min(cs - within, total - pos);
      const parts = sliceBuffers(buffers, pos, n);
      const m = await this.lookup(guest);
      if (m.kind === 'compressed') {
        throw new BlockBackendError(this.path, `compressed cluster at guest offset ${guest}: compressed qcow2 images are not supported`);
      }
      if (m.kind === 'data' && (m.copied || (await this.getRefcount(m.host / cs)) === 1)) {
        await writeFrom(this.fh, m.host + within, parts);
        if (!m.copied) await this.setL2Entry(guest, m.host, false);
      } else if (m.kind === 'data') {
        throw new BlockBackendError(this.path, `cluster at guest offset ${guest} is shared (snapshots); writing it is not supported`);
      } else {
        await this.writeNewCluster(guest - within, within, parts, n, m);
      }
      pos += n;
    }
  }

  /** First write to a cluster: build the whole cluster (old contents + new bytes) and map it. */
  private async writeNewCluster(
    clusterGuest: number,
    within: number,
    parts: Uint8Array[],
    n: number,
    m: { kind: 'zero'; host: number } | { kind: 'unallocated' },
  ): Promise<void> {
    const cs = this.clusterSize;
    // A preallocated zero cluster (refcount 1, the only kind we create) keeps its host cluster.
    const reuse = m.kind === 'zero' && m.host !== 0 && (await this.getRefcount(m.host / cs)) === 1;
    let content: Uint8Array[];
    if (n === cs) {
      content = parts;
    } else {
      const buf = new Uint8Array(cs);
      if (m.kind === 'unallocated' && this.backing) await this.readBacking(clusterGuest, [buf], cs);
      let o = within;
      for (const p of parts) {
        buf.set(p, o);
        o += p.length;
      }
      content = [buf];
    }
    const host = reuse ? (m as { host: number }).host : await this.allocateCluster();
    await writeFrom(this.fh, host, content);
    await this.setL2Entry(clusterGuest, host, false);
  }

  /**
   * Make a range read as zeros; `partial` decides whether partial clusters are zeroed too (write-zeroes).
   * With `unmap`, the host clusters under whole zeroed clusters are punched out of the file afterwards.
   */
  private async zeroLocked(offset: number, length: number, partial: boolean, unmap: boolean): Promise<void> {
    this.checkBounds(offset, length);
    const cs = this.clusterSize;
    const holes = new HostRanges();
    let pos = 0;
    while (pos < length) {
      const guest = offset + pos;
      const within = guest % cs;
      const n = Math.min(cs - within, length - pos);
      const m = await this.lookup(guest);
      const readsZero = m.kind === 'zero' || (m.kind === 'unallocated' && !this.backing);
      if (!readsZero) {
        if (n === cs && this.header.version >= 3) {
          const keep = m.kind === 'data' && (m.copied || (await this.getRefcount(m.host / cs)) === 1) ? m.host : 0;
          if (m.kind === 'data' && keep === 0) {
            throw new BlockBackendError(this.path, `cluster at guest offset ${guest} is shared (snapshots); zeroing it is not supported`);
          }
          await this.setL2Entry(guest, keep, true);
          if (keep !== 0) holes.add(keep, cs);
        } else if (partial) {
          await this.writeLocked(guest, [new Uint8Array(n)]);
        }
      } else if (unmap && n === cs && m.kind === 'zero' && m.host !== 0 && this.fallocate !== null) {
        // A preallocated zero cluster may still hold old bytes; free them unless a snapshot maps it as data.
        if ((await this.getRefcount(m.host / cs)) === 1) holes.add(m.host, cs);
      }
      pos += n;
    }
    // Only after the L2 entries say "zero": no map ever points at data that a hole replaced.
    if (unmap) await this.punchHoles(holes.ranges);
  }

  /** PUNCH_HOLE each host range; a filesystem that cannot is noted once and never asked again. */
  private async punchHoles(ranges: readonly (readonly [number, number])[]): Promise<void> {
    for (const [start, length] of ranges) {
      if (this.fallocate === null) return;
      let done: boolean;
      try {
        done = await fallocateRange(this.fallocate, this.fh.fd, 'punch-hole', start, length);
      } catch (e) {
        const err = e as NodeJS.ErrnoException;
        throw new BlockBackendError(this.path, `fallocate punch-hole of ${length} bytes at host offset ${start}: ${err.message}`, err.code ?? 'EIO');
      }
      if (!done) {
        this.fallocate = null;
        this.log(`${this.path}: the filesystem cannot punch holes (fallocate PUNCH_HOLE); discarded clusters keep their host space`);
      }
    }
  }

  // ---- cluster map ----

  private async lookup(guest: number): Promise<Mapping> {
    const cs = this.clusterSize;
    const cluster = Math.floor(guest / cs);
    const l1Index = Math.floor(cluster / this.l2Entries);
    const l1dv = new DataView(this.l1.buffer, this.l1.byteOffset, this.l1.byteLength);
    const l2Offset = entryOffset(l1dv.getUint32(l1Index * 8), l1dv.getUint32(l1Index * 8 + 4));
    if (l2Offset === 0) return { kind: 'unallocated' };
    const l2 = await this.loadL2(l2Offset);
    const dv = new DataView(l2.buffer, l2.byteOffset, l2.byteLength);
    const i = (cluster % this.l2Entries) * 8;
    const hi = dv.getUint32(i);
    const lo = dv.getUint32(i + 4);
    if (hi & HI_COMPRESSED) return { kind: 'compressed' };
    const host = entryOffset(hi, lo);
    if (this.header.version >= 3 && lo & LO_ZERO) return { kind: 'zero', host };
    if (host === 0) return { kind: 'unallocated' };
    return { kind: 'data', host, copied: (hi & HI_COPIED) !== 0 };
  }

  /** Point the L2 entry for `guest` at `host` (0 = none), optionally as a zero cluster; writes it to disk. */
  private async setL2Entry(guest: number, host: number, zero: boolean): Promise<void> {
    const cluster = Math.floor(guest / this.clusterSize);
    const l2Offset = await this.l2ForWrite(Math.floor(cluster / this.l2Entries));
    const l2 = await this.loadL2(l2Offset);
    const i = (cluster % this.l2Entries) * 8;
    const [hi, lo] = entryWords(host);
    const dv = new DataView(l2.buffer, l2.byteOffset, l2.byteLength);
    dv.setUint32(i, host !== 0 ? hi | HI_COPIED : hi);
    dv.setUint32(i + 4, zero ? lo | LO_ZERO : lo);
    await writeAll(this.fh, l2.subarray(i, i + 8), l2Offset + i);
  }

  /** Host offset of the L2 table for `l1Index`, allocating a zeroed one if needed. */
  private async l2ForWrite(l1Index: number): Promise<number> {
    const dv = new DataView(this.l1.buffer, this.l1.byteOffset, this.l1.byteLength);
    const hi = dv.getUint32(l1Index * 8);
    const existing = entryOffset(hi, dv.getUint32(l1Index * 8 + 4));
    if (existing !== 0) {
      if (!(hi & HI_COPIED) && (await this.getRefcount(existing / this.clusterSize)) !== 1) {
        throw new BlockBackendError(this.path, `L2 table at ${existing} is shared (snapshots); writing it is not supported`);
      }
      return existing;
    }
    const table = new Uint8Array(this.clusterSize);
    const host = await this.allocateCluster();
    await writeAll(this.fh, table, host);
    this.cacheL2(host, table);
    const [h, l] = entryWords(host);
    dv.setUint32(l1Index * 8, h | HI_COPIED);
    dv.setUint32(l1Index * 8 + 4, l);
    await writeAll(this.fh, this.l1.subarray(l1Index * 8, l1Index * 8 + 8), this.header.l1TableOffset + l1Index * 8);
    return host;
  }

  private async loadL2(offset: number): Promise<Uint8Array> {
    const hit = this.l2Cache.get(offset);
    if (hit) return hit;
    if (offset % this.clusterSize !== 0) throw new BlockBackendError(this.path, `L2 table offset ${offset} is not cluster-aligned (corrupt image)`);
    const t = await readAt(this.fh, offset, this.clusterSize);
    if (t.length !== this.clusterSize) throw new BlockBackendError(this.path, `L2 table at ${offset} lies past the end of the file`);
    this.cacheL2(offset, t);
    return t;
  }

  private cacheL2(offset: number, table: Uint8Array): void {
    if (this.l2Cache.size >= Math.max(4, L2_CACHE_BYTES / this.clusterSize)) this.l2Cache.delete(this.l2Cache.keys().next().value!);
    this.l2Cache.set(offset, table);
  }

  // ---- refcounts and allocation ----

  /** A new cluster at the end of the file, with refcount 1. The caller writes its contents. */
  private async allocateCluster(): Promise<number> {
    const host = this.fileEnd;
    this.fileEnd += this.clusterSize;
    await this.setRefcount(host / this.clusterSize, 1);
    return host;
  }

  private refTableEntries(): number {
    return this.refTable.length / 8;
  }

  private refBlockOffset(tableIndex: number): number {
    const dv = new DataView(this.refTable.buffer, this.refTable.byteOffset, this.refTable.byteLength);
    return entryOffset(dv.getUint32(tableIndex * 8), dv.getUint32(tableIndex * 8 + 4));
  }

  private async getRefcount(cluster: number): Promise<number> {
    const ti = Math.floor(cluster / this.refsPerBlock);
    if (ti >= this.refTableEntries()) return 0;
    const off = this.refBlockOffset(ti);
    if (off === 0) return 0;
    const block = await this.loadRefBlock(off);
    return this.refAt(block, cluster % this.refsPerBlock);
  }

  private async setRefcount(cluster: number, value: number): Promise<void> {
    const ti = Math.floor(cluster / this.refsPerBlock);
    if (ti >= this.refTableEntries()) await this.growRefTable(ti);
    let off = this.refBlockOffset(ti);
    if (off === 0) {
      off = this.fileEnd;
      this.fileEnd += this.clusterSize;
      const block = new Uint8Array(this.clusterSize);
      await writeAll(this.fh, block, off);
      this.cacheRefBlock(off, block);
      const [h, l] = entryWords(off);
      const dv = new DataView(this.refTable.buffer, this.refTable.byteOffset, this.refTable.byteLength);
      dv.setUint32(ti * 8, h);
      dv.setUint32(ti * 8 + 4, l);
      await writeAll(this.fh, this.refTable.subarray(ti * 8, ti * 8 + 8), this.refTableOffset + ti * 8);
      // The new refcount block is itself a cluster that needs a refcount.
      await this.setRefcount(off / this.clusterSize, 1);
    }
    const block = await this.loadRefBlock(off);
    const [start, end] = this.storeRef(block, cluster % this.refsPerBlock, value);
    await writeAll(this.fh, block.subarray(start, end), off + start);
  }

  /** Move the refcount table to a bigger place at the end of the file. */
  private async growRefTable(neededIndex: number): Promise<void> {
    const cs = this.clusterSize;
    const oldOffset = this.refTableOffset;
    const oldClusters = this.refTable.length / cs;
    const entries = Math.max(neededIndex + 1, this.refTableEntries() * 2);
    const clusters = Math.ceil((entries * 8) / cs);
    if (clusters * cs > MAX_TABLE_BYTES) throw new BlockBackendError(this.path, 'refcount table would exceed 32 MiB');
    const table = new Uint8Array(clusters * cs);
    table.set(this.refTable);
    const offset = this.fileEnd;
    this.fileEnd += clusters * cs;
    await writeAll(this.fh, table, offset);
    const hdr = new Uint8Array(12);
    const hdv = new DataView(hdr.buffer);
    hdv.setBigUint64(0, BigInt(offset));
    hdv.setUint32(8, clusters);
    await writeAll(this.fh, hdr, 48);
    this.refTable = table;
    this.refTableOffset = offset;
    for (let c = 0; c < clusters; c++) await this.setRefcount(offset / cs + c, 1);
    for (let c = 0; c < oldClusters; c++) await this.setRefcount(oldOffset / cs + c, 0);
  }

  private async loadRefBlock(offset: number): Promise<Uint8Array> {
    const hit = this.refCache.get(offset);
    if (hit) return hit;
    if (offset % this.clusterSize !== 0) throw new BlockBackendError(this.path, `refcount block offset ${offset} is not cluster-aligned (corrupt image)`);
    const b = await readAt(this.fh, offset, this.clusterSize);
    if (b.length !== this.clusterSize) throw new BlockBackendError(this.path, `refcount block at ${offset} lies past the end of the file`);
    this.cacheRefBlock(offset, b);
    return b;
  }

  private cacheRefBlock(offset: number, block: Uint8Array): void {
    if (this.refCache.size >= Math.max(4, REFBLOCK_CACHE_BYTES / this.clusterSize)) this.refCache.delete(this.refCache.keys().next().value!);
    this.refCache.set(offset, block);
  }

  private refAt(block: Uint8Array, i: number): number {
    const dv = new DataView(block.buffer, block.byteOffset, block.byteLength);
    switch (this.refcountBits) {
      case 8: return dv.getUint8(i);
      case 16: return dv.getUint16(i * 2);
      case 32: return dv.getUint32(i * 4);
      default: return dv.getUint32(i * 8) * 0x1_0000_0000 + dv.getUint32(i * 8 + 4);
    }
  }

  /** Store a refcount; returns the byte range of the block that changed. */
  private storeRef(block: Uint8Array, i: number, value: number): [number, number] {
    const dv = new DataView(block.buffer, block.byteOffset, block.byteLength);
    const bytes = this.refcountBits / 8;
    switch (this.refcountBits) {
      case 8: dv.setUint8(i, value); break;
      case 16: dv.setUint16(i * 2, value); break;
      case 32: dv.setUint32(i * 4, value); break;
      default: dv.setUint32(i * 8, 0); dv.setUint32(i * 8 + 4, value); break;
    }
    return [i * bytes, (i + 1) * bytes];
  }

  private checkBounds(offset: number, length: number): void {
    if (!Number.isSafeInteger(offset) || offset < 0 || length < 0 || offset + length > this.size) {
      throw new BlockBackendError(this.path, `access ${offset}+${length} outside the ${this.size}-byte disk`);
    }
  }
}

function checkSupported(h: Qcow2Header, path: string, readOnly: boolean): void {
  if (h.cryptMethod !== 0) throw new BlockBackendError(path, 'encrypted qcow2 images are not supported');
  const f = h.incompatibleFeatures;
  if (f & INCOMPAT_DATA_FILE) throw new BlockBackendError(path, 'qcow2 images with an external data file are not supported');
  if (f & INCOMPAT_COMPRESSION || h.compressionType !== 0) {
    throw new BlockBackendError(path, 'qcow2 images with a non-zlib compression type are not supported');
  }
  if (f & INCOMPAT_EXTL2) throw new BlockBackendError(path, 'qcow2 images with extended L2 entries are not supported');
  const known = INCOMPAT_DIRTY | INCOMPAT_CORRUPT | INCOMPAT_DATA_FILE | INCOMPAT_COMPRESSION | INCOMPAT_EXTL2;
  if (f & ~known) throw new BlockBackendError(path, `qcow2 incompatible feature bits 0x${(f & ~known).toString(16)} are unknown`);
  if (h.refcountOrder < 3 || h.refcountOrder > 6) {
    throw new BlockBackendError(path, `qcow2 refcount_order ${h.refcountOrder} (${2 ** h.refcountOrder}-bit refcounts) is not supported`);
  }
  if (readOnly) return;
  if (f & INCOMPAT_CORRUPT) throw new BlockBackendError(path, 'qcow2 image is marked corrupt; it can only be opened read-only');
  if (f & INCOMPAT_DIRTY) {
    throw new BlockBackendError(path, "qcow2 image is dirty (refcounts may be stale); repair it with 'qemu-img check -r all' or open read-only");
  }
  if (h.nbSnapshots !== 0) throw new BlockBackendError(path, 'qcow2 images with internal snapshots can only be opened read-only');
}

async function readTable(fh: FileHandle, path: string, what: string, offset: number, bytes: number, cs: number): Promise<Uint8Array> {
  if (bytes > MAX_TABLE_BYTES) throw new BlockBackendError(path, `qcow2 ${what} of ${bytes} bytes is too large`);
  if (offset % cs !== 0) throw new BlockBackendError(path, `qcow2 ${what} offset ${offset} is not cluster-aligned`);
  const t = await readAt(fh, offset, bytes);
  if (t.length !== bytes) throw new BlockBackendError(path, `qcow2 ${what} at ${offset} extends past the end of the file`);
  return t;
}

/** Up to `length` bytes at `position` (fewer at end of file). */
async function readAt(fh: FileHandle, position: number, length: number): Promise<Uint8Array> {
  const buf = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(buf, done, length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return buf.subarray(0, done);
}

/** Fill `parts` from the file; bytes past the end of the file read as zeros. */
async function readInto(fh: FileHandle, position: number, parts: Uint8Array[]): Promise<void> {
  let pending = parts.filter((p) => p.length > 0);
  let pos = position;
  while (pending.length > 0) {
    const { bytesRead } = await fh.readv(pending, pos);
    if (bytesRead === 0) {
      for (const b of pending) b.fill(0);
      return;
    }
    pos += bytesRead;
    pending = dropBytes(pending, bytesRead);
  }
}

async function writeFrom(fh: FileHandle, position: number, parts: Uint8Array[]): Promise<void> {
  let pending = parts.filter((p) => p.length > 0);
  let pos = position;
  while (pending.length > 0) {
    const { bytesWritten } = await fh.writev(pending, pos);
    if (bytesWritten === 0) throw new Error(`short write at ${pos}`);
    pos += bytesWritten;
    pending = dropBytes(pending, bytesWritten);
  }
}

function writeAll(fh: FileHandle, data: Uint8Array, position: number): Promise<void> {
  return writeFrom(fh, position, [data]);
}

function dropBytes(parts: Uint8Array[], n: number): Uint8Array[] {
  let i = 0;
  while (i < parts.length && n >= parts[i]!.length) n -= parts[i++]!.length;
  const rest = parts.slice(i);
  if (n > 0 && rest.length > 0) rest[0] = rest[0]!.subarray(n);
  return rest;
}

/** Host byte ranges, merged when each one starts where the previous ended (one fallocate per run). */
class HostRanges {
  readonly ranges: [number, number][] = [];

  add(start: number, length: number): void {
    const last = this.ranges[this.ranges.length - 1];
    if (last && last[0] + last[1] === start) last[1] += length;
    else this.ranges.push([start, length]);
  }
}
