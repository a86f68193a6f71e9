/**
 * Raw images really free and zero space: discard punches a hole, write-zeroes uses ZERO_RANGE (or a hole when
 * the guest allows unmapping), checked against the host filesystem's allocated-block count (stat st_blocks, what
 * `stat -c %b` prints) and the file's bytes. Also: the fallbacks (a filesystem that refuses ZERO_RANGE, an
 * addon without fallocate), read-only and out-of-range refusals, the native call's argument checks, and a
 * virtio-blk DISCARD request reaching the file.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlockBackendError } from '../../lib/block/backend.js';
import { nativeFallocate } from '../../lib/block/fallocate.js';
import { RawBackend } from '../../lib/block/raw.js';
import { T_DISCARD, T_WRITE_ZEROES, blkRequest, blkRig, pattern, segment } from '../virtio/blk-helpers.js';

const MiB = 1 << 20;
const IMAGE_BYTES = 64 * MiB;
/** The data region of every test image: [DATA_START, DATA_START + DATA_BYTES). */
const DATA_START = 8 * MiB;
const DATA_BYTES = 16 * MiB;
/** Slack for filesystem metadata (extent tree blocks) when comparing allocated sizes. */
const SLACK = 256 * 1024;

const fallocate = nativeFallocate();
const skip = fallocate === null ? 'the native addon has no fallocate (not built, or built before native/fallocate.cc)' : undefined;
if (skip) console.warn(`[raw-discard] skipped: ${skip}`);

/** Bytes the filesystem has allocated for `path`. */
function allocated(path: string): number {
  return statSync(path).blocks * 512;
}

describe.skipIf(skip !== undefined)('raw image discard / write-zeroes through fallocate', () => {
  let dir: string;
  let shmDir: string | undefined;
  const data = pattern(DATA_BYTES, 7);
  let seq = 0;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'nodevmm-raw-discard-'));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
    if (shmDir) rmSync(shmDir, { recursive: true, force: true });
  });

  /** A 64 MiB sparse file with 16 MiB of data at 8 MiB, synced so its blocks are really allocated. */
  async function sparseImage(inDir = dir): Promise<string> {
    const path = join(inDir, `disk-${seq++}.raw`);
    const fh = await open(path, 'w+');
    await fh.truncate(IMAGE_BYTES);
    await fh.write(data, 0, data.length, DATA_START);
    await fh.sync();
    await fh.close();
    return path;
  }

  /** The bytes of [offset, offset+length) of the file. */
  async function bytesOf(path: string, offset: number, length: number): Promise<Buffer> {
    return (await readFile(path)).subarray(offset, offset + length);
  }

  const isZero = (b: Uint8Array) => b.every((x) => x === 0);
  const dataAt = (fileOffset: number, length: number) => Buffer.from(data.subarray(fileOffset - DATA_START, fileOffset - DATA_START + length));

  it('the test image really has 16 MiB allocated in a 64 MiB file', async () => {
    const path = await sparseImage();
    expect(statSync(path).size).toBe(IMAGE_BYTES);
    expect(allocated(path)).toBeGreaterThanOrEqual(DATA_BYTES);
    expect(allocated(path)).toBeLessThan(DATA_BYTES + SLACK);
  });

  it('discard of 8 MiB frees 8 MiB of blocks; the range reads as zeros, the rest is untouched', async () => {
    const path = await sparseImage();
    const before = allocated(path);
    const disk = await RawBackend.open(path, { fallocate });
    await disk.discard(12 * MiB, 8 * MiB);
    await disk.flush();
    const back = new Uint8Array(8 * MiB);
    await disk.read(12 * MiB, [back]);
    await disk.close();
    const freed = before - allocated(path);
    console.log(`[raw-discard] discard 8 MiB: allocated ${before / MiB} MiB -> ${allocated(path) / MiB} MiB`);
    expect(freed).toBeGreaterThanOrEqual(8 * MiB - SLACK);
    expect(isZero(back)).toBe(true);
    expect(isZero(await bytesOf(path, 12 * MiB, 8 * MiB))).toBe(true);
    expect((await bytesOf(path, DATA_START, 4 * MiB)).equals(dataAt(DATA_START, 4 * MiB))).toBe(true);
    expect((await bytesOf(path, 20 * MiB, 4 * MiB)).equals(dataAt(20 * MiB, 4 * MiB))).toBe(true);
    expect(statSync(path).size).toBe(IMAGE_BYTES);
  });

  it('write-zeroes without unmap zeroes the range and keeps it allocated (ZERO_RANGE); size unchanged', async () => {
    const path = await sparseImage();
    const before = allocated(path);
    const disk = await RawBackend.open(path, { fallocate });
    await disk.writeZeroes(8 * MiB, 8 * MiB);
    await disk.close();
    console.log(`[raw-discard] write-zeroes 8 MiB (no unmap): allocated ${before / MiB} MiB -> ${allocated(path) / MiB} MiB`);
    expect(isZero(await bytesOf(path, 8 * MiB, 8 * MiB))).toBe(true);
    expect((await bytesOf(path, 16 * MiB, 8 * MiB)).equals(dataAt(16 * MiB, 8 * MiB))).toBe(true);
    expect(Math.abs(allocated(path) - before)).toBeLessThan(SLACK);
    expect(statSync(path).size).toBe(IMAGE_BYTES);
  });

  it('write-zeroes with unmap zeroes the range and frees its blocks', async () => {
    const path = await sparseImage();
    const before = allocated(path);
    const disk = await RawBackend.open(path, { fallocate });
    await disk.writeZeroes(8 * MiB, 8 * MiB, { unmap: true });
    await disk.close();
    expect(isZero(await bytesOf(path, 8 * MiB, 8 * MiB))).toBe(true);
    expect((await bytesOf(path, 16 * MiB, 8 * MiB)).equals(dataAt(16 * MiB, 8 * MiB))).toBe(true);
    expect(before - allocated(path)).toBeGreaterThanOrEqual(8 * MiB - SLACK);
    expect(statSync(path).size).toBe(IMAGE_BYTES);
  });

  it('ranges that are not filesystem-block aligned zero exactly their bytes', async () => {
    const path = await sparseImage();
    const disk = await RawBackend.open(path, { fallocate });
    const a = DATA_START + 512 * 3;
    const b = DATA_START + 3 * MiB + 512 * 5;
    await disk.discard(a, 512 * 9);
    await disk.writeZeroes(b, 1 * MiB + 512, { unmap: true });
    await disk.writeZeroes(b + 2 * MiB, 512 * 3);
    await disk.close();
    const file = await readFile(path);
    for (const [start, length] of [[a, 512 * 9], [b, MiB + 512], [b + 2 * MiB, 512 * 3]] as const) {
      expect(isZero(file.subarray(start, start + length))).toBe(true);
      expect(file.subarray(start - 512, start).equals(dataAt(start - 512, 512))).toBe(true);
      expect(file.subarray(start + length, start + length + 512).equals(dataAt(start + length, 512))).toBe(true);
    }
  });

  it('a read-only image refuses discard and write-zeroes (EROFS); out-of-range requests are refused (EINVAL)', async () => {
    const path = await sparseImage();
    const ro = await RawBackend.open(path, { readOnly: true, fallocate });
    await expect(ro.discard(DATA_START, MiB)).rejects.toMatchObject({ name: 'BlockBackendError', code: 'EROFS' });
    await expect(ro.writeZeroes(DATA_START, MiB, { unmap: true })).rejects.toMatchObject({ code: 'EROFS' });
    await ro.close();
    const rw = await RawBackend.open(path, { fallocate });
    await expect(rw.discard(IMAGE_BYTES - 512, 1024)).rejects.toBeInstanceOf(BlockBackendError);
    await expect(rw.writeZeroes(-512, 1024)).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(rw.writeZeroes(0, 0.5)).rejects.toMatchObject({ code: 'EINVAL' });
    await rw.close();
    expect((await bytesOf(path, DATA_START, DATA_BYTES)).equals(Buffer.from(data))).toBe(true);
    expect(allocated(path)).toBeGreaterThanOrEqual(DATA_BYTES);
  });

  it('an addon without fallocate keeps the old behaviour: discard keeps data, write-zeroes writes zeros', async () => {
    const path = await sparseImage();
    const before = allocated(path);
    const logs: string[] = [];
    const disk = await RawBackend.open(path, { fallocate: null, log: (l) => logs.push(l) });
    await disk.discard(DATA_START, 4 * MiB);
    await disk.writeZeroes(12 * MiB, 4 * MiB, { unmap: true });
    await disk.close();
    expect((await bytesOf(path, DATA_START, 4 * MiB)).equals(dataAt(DATA_START, 4 * MiB))).toBe(true);
    expect(isZero(await bytesOf(path, 12 * MiB, 4 * MiB))).toBe(true);
    expect(allocated(path)).toBeGreaterThanOrEqual(before - SLACK);
    expect(logs).toEqual([]);
  });

  it('a filesystem that refuses ZERO_RANGE (tmpfs): write-zeroes falls back to writing zeros, noted once; holes still work', async (ctx) => {
    try {
      shmDir = mkdtempSync('/dev/shm/nodevmm-raw-discard-');
    } catch (e) {
      console.warn(`[raw-discard] tmpfs case skipped: cannot create a directory in /dev/shm (${(e as Error).message})`);
      ctx.skip();
      return;
    }
    const path = await sparseImage(shmDir);
    const logs: string[] = [];
    const disk = await RawBackend.open(path, { fallocate, log: (l) => logs.push(l) });
    await disk.writeZeroes(8 * MiB, 2 * MiB);
    await disk.writeZeroes(10 * MiB, 2 * MiB);
    const before = allocated(path);
    await disk.discard(16 * MiB, 4 * MiB);
    await disk.close();
    expect(logs).toHaveLength(1);
    expect(logs[0]).toContain(path);
    expect(logs[0]).toMatch(/ZERO_RANGE/);
    expect(isZero(await bytesOf(path, 8 * MiB, 4 * MiB))).toBe(true);
    expect(isZero(await bytesOf(path, 16 * MiB, 4 * MiB))).toBe(true);
    expect((await bytesOf(path, 12 * MiB, 4 * MiB)).equals(dataAt(12 * MiB, 4 * MiB))).toBe(true);
    expect(before - allocated(path)).toBeGreaterThanOrEqual(4 * MiB - SLACK);
  });

  it('a virtio-blk DISCARD and an UNMAP write-zeroes request reach the file', async () => {
    const path = await sparseImage();
    const before = allocated(path);
    const disk = await RawBackend.open(path, { fallocate });
    const rig = blkRig(disk);
    const sectors = (4 * MiB) / 512;
    expect((await blkRequest(rig, T_DISCARD, 0, { out: segment(DATA_START / 512, sectors) })).status).toBe(0);
    expect((await blkRequest(rig, T_WRITE_ZEROES, 0, { out: segment((16 * MiB) / 512, sectors, 1) })).status).toBe(0);
    await disk.close();
    expect(isZero(await bytesOf(path, DATA_START, 4 * MiB))).toBe(true);
    expect(isZero(await bytesOf(path, 16 * MiB, 4 * MiB))).toBe(true);
    expect((await bytesOf(path, 12 * MiB, 4 * MiB)).equals(dataAt(12 * MiB, 4 * MiB))).toBe(true);
    // The discard frees its 4 MiB; the write-zeroes frees 4 more only if the device passes UNMAP on.
    const freed = before - allocated(path);
    console.log(`[raw-discard] virtio-blk discard 4 MiB + write-zeroes(UNMAP) 4 MiB freed ${(freed / MiB).toFixed(2)} MiB`);
    expect(freed).toBeGreaterThanOrEqual(4 * MiB - SLACK);
  });
});

describe.skipIf(skip !== undefined)('native fallocate contract', () => {
  it('checks its arguments synchronously and rejects with a Node-style error', async () => {
    const f = fallocate!;
    expect(f.KEEP_SIZE).toBe(1);
    expect(f.PUNCH_HOLE).toBe(2);
    expect(f.ZERO_RANGE).toBe(16);
    expect(() => f(0, 0x8, 0, 512)).toThrow(/only KEEP_SIZE, PUNCH_HOLE and ZERO_RANGE/);
    expect(() => f(0, f.KEEP_SIZE, 0, 0)).toThrow(/length must be greater than 0/);
    expect(() => f(0, f.KEEP_SIZE, -1, 512)).toThrow(RangeError);
    expect(() => f(-1, f.KEEP_SIZE, 0, 512)).toThrow(RangeError);
    // An fd number nothing has open: the kernel's EBADF comes back as a rejection.
    await expect(f(1_000_000, f.KEEP_SIZE | f.PUNCH_HOLE, 0, 512)).rejects.toMatchObject({ code: 'EBADF', syscall: 'fallocate', errno: -9 });
  });
});
